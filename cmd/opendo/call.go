package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/bus"
)

func runCall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("call", stderr, "call [flags] NS NAME [PATH] [BODY|-]")
	var nf natsFlags
	nf.register(fs, "nats")
	fs.StringVar(&nf.url, "server", "", "same as -nats (kept for older scripts)")
	byID := fs.Bool("id", false, "NAME is an object ID, not a name")
	method := fs.String("method", "", "request method (default POST)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the reply")
	prefix := fs.String("prefix", "opendo", "subject prefix of the deployment")
	partitions := fs.Int("partitions", 64, "partitions of the deployment")
	verbose := fs.Bool("v", false, "print the reply status and headers to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 || fs.NArg() > 4 {
		fs.Usage()
		return usageError{"call needs NS NAME [PATH] [BODY|-]"}
	}
	ns, name := fs.Arg(0), fs.Arg(1)
	req := &actor.Request{Method: *method, Path: fs.Arg(2)}
	if fs.NArg() == 4 {
		if fs.Arg(3) == "-" {
			b, err := io.ReadAll(os.Stdin)
			if err != nil {
				return err
			}
			req.Body = b
		} else {
			req.Body = []byte(fs.Arg(3))
		}
	}
	nc, err := bus.Connect(nf.config("opendo-call"))
	if err != nil {
		return err
	}
	defer nc.Close()
	c, err := actor.NewClient(nc, actor.ClientConfig{Prefix: *prefix, Partitions: *partitions, Timeout: *timeout})
	if err != nil {
		return err
	}
	var stub *actor.Stub
	if *byID {
		stub = c.Namespace(ns).ByID(actor.ID(name))
	} else {
		stub = c.Namespace(ns).Get(name)
	}
	resp, err := stub.Call(ctx, req)
	if err != nil {
		var e *actor.Error
		if errors.As(err, &e) {
			fmt.Fprintf(stderr, "opendo: %s (%d): %s\n", e.Code, e.Status, e.Message)
			return errSilent
		}
		return err
	}
	if *verbose {
		fmt.Fprintf(stderr, "status %d\n", resp.Status)
		for k, v := range resp.Header {
			fmt.Fprintf(stderr, "%s: %v\n", k, v)
		}
	}
	stdout.Write(resp.Body)
	if len(resp.Body) > 0 && !bytes.HasSuffix(resp.Body, []byte("\n")) {
		fmt.Fprintln(stdout)
	}
	if resp.Status >= 400 {
		fmt.Fprintf(stderr, "opendo: status %d\n", resp.Status)
		return errSilent
	}
	return nil
}

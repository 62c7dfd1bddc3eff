package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/opendo/opendo/bus"
	"github.com/opendo/opendo/examples"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr, "serve -nats URL [flags]")
	data := fs.String("data", "./.opendo/objects", "directory of the objects' SQLite files")
	var nf natsFlags
	nf.register(fs, "nats")
	var rf runtimeFlags
	rf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"serve takes no arguments"}
	}
	log, err := newLogger(stderr, rf.logLevel)
	if err != nil {
		return err
	}
	nc, err := bus.Connect(nf.config("opendo-serve"))
	if err != nil {
		return err
	}
	defer nc.Close()
	return host(ctx, nc, *data, rf, nil, log, func() {
		fmt.Fprintf(stdout, "opendo serve: connected to %s; namespaces: %s\nready\n", nc.ConnectedUrlRedacted(), strings.Join(examples.Namespaces(), ", "))
	})
}

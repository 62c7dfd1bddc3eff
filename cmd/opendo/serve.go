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
	var reply natsFlags
	fs.StringVar(&reply.creds, "reply-creds", "", "credentials of a second NATS user that publishes the replies (give it publish rights to inboxes only; docs/security.md)")
	fs.StringVar(&reply.user, "reply-user", "", "user of the reply connection (simple auth)")
	fs.StringVar(&reply.password, "reply-password", "", "password of the reply connection")
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
	cc := nf.config("opendo-serve")
	cc.Logger = log
	nc, err := bus.Connect(cc)
	if err != nil {
		return err
	}
	defer nc.Close()
	if reply.creds != "" || reply.user != "" {
		rc := cc
		rc.Name = "opendo-serve-replies"
		rc.CredsFile, rc.NKeyFile, rc.User, rc.Password, rc.Token = reply.creds, "", reply.user, reply.password, ""
		rnc, err := bus.Connect(rc)
		if err != nil {
			return fmt.Errorf("reply connection: %w", err)
		}
		defer rnc.Close()
		rf.replyNC = rnc
	}
	return host(ctx, nc, *data, rf, nil, log, func(node string) {
		fmt.Fprintf(stdout, "opendo serve: node %s connected to %s; namespaces: %s\nready\n", node, nc.ConnectedUrlRedacted(), strings.Join(examples.Namespaces(), ", "))
	})
}

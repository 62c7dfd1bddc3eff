package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "opendo:", err)
		}
		os.Exit(exitCode(err))
	}
}

// errSilent is an error already reported to the user.
var errSilent = errors.New("silent")

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `usage: opendo <command> [flags]

commands:
  dev       run an embedded NATS server with the runtime and the examples
  serve     run the runtime against an external NATS server
  gateway   serve objects over HTTP, in front of runtimes on NATS
  cluster   run a local NATS cluster and runtime nodes, to try failover by hand
  call      call an object: opendo call NS NAME [PATH] [BODY|-]
  journal   inspect journals: ls, show, replay, fork, verify, tail
  bench     measure throughput and latency against raw NATS/JetStream baselines
  version   print the version

Run 'opendo help <command>' (or 'opendo <command> -h') for the flags of a command.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return runDev(ctx, rest, stdout, stderr)
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "gateway":
		return runGateway(ctx, rest, stdout, stderr)
	case "cluster":
		return runCluster(ctx, rest, stdout, stderr)
	case "call":
		return runCall(ctx, rest, stdout, stderr)
	case "journal":
		return runJournal(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "opendo", version)
		return nil
	case "help", "-h", "-help", "--help":
		if cmd == "help" && len(rest) > 0 && rest[0] != "help" {
			// opendo help CMD: CMD's own usage, on stdout.
			err := run(ctx, []string{rest[0], "-h"}, stdout, stdout)
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/examples"
)

// runtimeFlags configure the runtime hosted by dev and serve.
type runtimeFlags struct {
	prefix         string
	partitions     int
	replicas       int
	idle           time.Duration
	logLevel       string
	replyPrefixes  string
	handlerTimeout time.Duration
	maxActive      int
	nodeID         string
	leaseTTL       time.Duration
	journalStreams int
	replyNC        *nats.Conn // set by serve's -reply-* flags
}

func (f *runtimeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.prefix, "prefix", "opendo", "first token of every subject")
	fs.IntVar(&f.partitions, "partitions", 64, "number of partitions (same for every node and client)")
	fs.IntVar(&f.replicas, "replicas", 1, "journal stream replicas (3 on a production cluster)")
	fs.DurationVar(&f.idle, "idle", 2*time.Minute, "evict objects idle this long")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.replyPrefixes, "reply-prefix", actor.DefaultReplyPrefix, "comma-separated subject prefixes replies may go to (requests with other reply subjects are refused)")
	fs.DurationVar(&f.handlerTimeout, "handler-timeout", 30*time.Second, "deadline of one handler run; past it the caller gets 'timeout'")
	fs.IntVar(&f.maxActive, "max-active", 0, "most objects with open files (default from the descriptor limit, at most 10000)")
	fs.StringVar(&f.nodeID, "node-id", "", "this node's name among the runtimes sharing the NATS (default: generated once and kept in the data directory)")
	fs.IntVar(&f.journalStreams, "journal-streams", 0, "spread a new journal over this many streams, so a NATS cluster's servers share its writes (0: the journal's recorded layout, 1 for a new one; docs/cluster.md)")
	fs.DurationVar(&f.leaseTTL, "lease-ttl", actor.DefaultLeaseTTL, "how long a node that stopped answering keeps its objects before others take them over (whole seconds; docs/cluster.md)")
}

// host runs a runtime with the example namespaces on nc until ctx ends.
// ready is called, with the runtime's node ID, once requests are served.
// syncFn, if set, is the runtime's Config.Sync.
func host(ctx context.Context, nc *nats.Conn, dataDir string, f runtimeFlags, syncFn func() error, log *slog.Logger, ready func(node string)) error {
	rt, err := actor.New(actor.Config{
		Conn:        nc,
		DataDir:     dataDir,
		Prefix:      f.prefix,
		Partitions:  f.partitions,
		Replicas:    f.replicas,
		IdleTimeout: f.idle,
		Logger:      log,
		Sync:        syncFn,

		ReplyPrefixes:  strings.Split(f.replyPrefixes, ","),
		ReplyConn:      f.replyNC,
		HandlerTimeout: f.handlerTimeout,
		MaxActive:      f.maxActive,
		NodeID:         f.nodeID,
		LeaseTTL:       f.leaseTTL,
		JournalStreams: f.journalStreams,
	})
	if err != nil {
		return err
	}
	if err := examples.Register(rt); err != nil {
		return err
	}
	if err := rt.Start(ctx); err != nil {
		return err
	}
	ready(rt.NodeID())
	<-ctx.Done()
	log.Info("shutting down")
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rt.Close(cctx); err != nil {
		return fmt.Errorf("close runtime: %w", err)
	}
	return nil
}

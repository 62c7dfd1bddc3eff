// Command linnode is one node of the linearizability test
// (e2e/linearizability_test.go): a runtime serving namespace "lin" on an
// external NATS cluster, with streams of 3 replicas.
//
//	linnode -nats nats://127.0.0.1:4222,nats://127.0.0.1:4223 -data DIR -node-id n1 -lease-ttl 1s -journal-streams 3
//
// It prints "ready" on stdout once it serves requests, and on SIGTERM or
// SIGINT closes the runtime (handing its objects over) and exits 0.
//
// Each object of "lin" holds a register (key "v") and a counter (key "n"):
//
//	put   body = value    store it in v; answers "ok"
//	get                   the value of v ("" if never put)
//	cas   body = old\nnew if v equals old, store new and answer "ok", else "fail"
//	incr                  add 1 to n; answers the new value
//	read                  the value of n ("0" if never incremented)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/bus"
	"github.com/opendo/opendo/storage"
)

// Namespace is the namespace linnode serves.
const Namespace = "lin"

// closeTimeout bounds the graceful shutdown.
const closeTimeout = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "linnode:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("linnode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urls := fs.String("nats", "", "comma-separated NATS server URLs (default $NATS_URL)")
	dataDir := fs.String("data", "", "data directory (required)")
	node := fs.String("node-id", "", "node ID among the runtimes (default: a random one)")
	streams := fs.Int("journal-streams", 0, "streams the journal is spread over (0: its recorded layout)")
	leaseTTL := fs.Duration("lease-ttl", actor.DefaultLeaseTTL, "how long a silent node keeps its objects")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		return errors.New("-data is required")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", *node)

	nc, err := bus.Connect(bus.ConnectConfig{URL: *urls, Name: "linnode-" + *node, Logger: log})
	if err != nil {
		return err
	}
	defer nc.Close()
	rt, err := actor.New(actor.Config{
		Conn:     nc,
		DataDir:  *dataDir,
		Replicas: 3,
		NodeID:   *node,
		LeaseTTL: *leaseTTL,
		Logger:   log,

		JournalStreams: *streams,
	})
	if err != nil {
		return err
	}
	if err := rt.Register(Namespace, newObject); err != nil {
		return err
	}
	if err := rt.Start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	log.Info("ready", "node_id", rt.NodeID())
	fmt.Fprintln(stdout, "ready")
	<-ctx.Done()

	log.Info("shutting down")
	cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := rt.Close(cctx); err != nil {
		return fmt.Errorf("close runtime: %w", err)
	}
	log.Info("closed")
	return nil
}

// object is the handler of one "lin" object.
type object struct {
	state *actor.State
}

func newObject(state *actor.State) actor.Handler { return &object{state: state} }

// Handle serves put, get, cas, incr and read (see the package doc).
func (o *object) Handle(ctx context.Context, req *actor.Request) (*actor.Response, error) {
	st := o.state.Storage()
	switch req.Path {
	case "put":
		if err := st.Put(ctx, "v", req.Body); err != nil {
			return nil, err
		}
		return actor.Text("ok"), nil
	case "get":
		v, _, err := st.Get(ctx, "v")
		if err != nil {
			return nil, err
		}
		return actor.Bytes(v), nil
	case "cas":
		old, repl, ok := strings.Cut(string(req.Body), "\n")
		if !ok {
			return &actor.Response{Status: http.StatusBadRequest, Body: []byte(`cas: body must be "old\nnew"`)}, nil
		}
		v, _, err := st.Get(ctx, "v")
		if err != nil {
			return nil, err
		}
		if string(v) != old {
			return actor.Text("fail"), nil
		}
		if err := st.Put(ctx, "v", []byte(repl)); err != nil {
			return nil, err
		}
		return actor.Text("ok"), nil
	case "incr":
		n, _, err := storage.GetInt(ctx, st, "n")
		if err != nil {
			return nil, err
		}
		n++
		if err := storage.PutInt(ctx, st, "n", n); err != nil {
			return nil, err
		}
		return actor.Text(strconv.FormatInt(n, 10)), nil
	case "read":
		n, _, err := storage.GetInt(ctx, st, "n")
		if err != nil {
			return nil, err
		}
		return actor.Text(strconv.FormatInt(n, 10)), nil
	default:
		return &actor.Response{Status: http.StatusNotFound, Body: []byte("unknown path " + strconv.Quote(req.Path))}, nil
	}
}

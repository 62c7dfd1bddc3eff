package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/opendo/opendo/bus"
	"github.com/opendo/opendo/examples"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", stderr, "dev [flags]")
	addr := fs.String("addr", "127.0.0.1:4222", "address of the embedded NATS server (port 0 = any free port)")
	data := fs.String("data", "./.opendo", "data directory (JetStream store and object files)")
	sync := fs.String("sync", "default", "durability: 'default' (fsync every 2 min; survives a process kill) or 'always' (fsync before every acknowledgement)")
	var rf runtimeFlags
	rf.register(fs)
	var hf httpFlags
	hf.register(fs, true)
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE` (for performance work)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"dev takes no arguments"}
	}
	if *sync != "default" && *sync != "always" {
		return usageError{fmt.Sprintf("bad -sync %q: want default or always", *sync)}
	}
	log, err := newLogger(stderr, rf.logLevel)
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if err := os.MkdirAll(*data, 0o755); err != nil {
		return err
	}
	// One NATS server per store: `opendo journal` takes the same lock.
	unlock, err := lockDataDir(*data)
	if err != nil {
		if errors.Is(err, errDataDirLocked) {
			return fmt.Errorf("%s is in use by another opendo dev or journal command: %w", *data, err)
		}
		return err
	}
	defer unlock()
	// -sync always: every reply waits for an fsync of the store after its
	// journal append; concurrent appends share one fsync (group commit),
	// which the server's own per-message SyncAlways cannot do.
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{
		Addr:     *addr,
		StoreDir: filepath.Join(*data, "nats"),
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	nc, err := srv.Connect("opendo-dev")
	if err != nil {
		return err
	}
	defer nc.Close()
	var syncFn func() error
	if *sync == "always" {
		syncFn = srv.Sync
	}
	httpURL := ""
	if hf.addr != "off" && hf.addr != "" {
		hnc, err := srv.Connect("opendo-dev-http")
		if err != nil {
			return err
		}
		defer hnc.Close()
		hf.prefix, hf.partitions = rf.prefix, rf.partitions
		var stop func()
		if httpURL, stop, err = startHTTP(hnc, hf, log); err != nil {
			return err
		}
		defer stop()
	}
	return host(ctx, nc, filepath.Join(*data, "objects"), rf, syncFn, log, func(node string) {
		url := srv.URL()
		fmt.Fprintf(stdout, "opendo dev: NATS listening on %s (data in %s, sync %s, node %s)\n", url, *data, *sync, node)
		if httpURL != "" {
			fmt.Fprintf(stdout, "opendo dev: HTTP listening on %s\n", httpURL)
		}
		fmt.Fprintf(stdout, "namespaces: %s\n", strings.Join(examples.Namespaces(), ", "))
		fmt.Fprintf(stdout, "try:\n  go run ./cmd/opendo call -server %s counter my-counter incr\n", url)
		fmt.Fprintf(stdout, "  nats --server %s req %s.name.counter '' -H 'Opendo-Name: my-counter' -H 'Opendo-Path: incr'\n", url, rf.prefix)
		if httpURL != "" {
			fmt.Fprintf(stdout, "  curl -X POST %s/counter/my-counter/incr\n", httpURL)
		}
		fmt.Fprintf(stdout, "ready\n")
	})
}

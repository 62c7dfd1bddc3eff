package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/bus"
	"github.com/opendo/opendo/storage"
)

// benchNamespace is the namespace of the bench objects.
const benchNamespace = "bench"

// benchObject is the bench namespace's handler: "incr" reads key "n", adds
// one and writes it back; "read" reads key "n".
func benchObject(state *actor.State) actor.Handler {
	return actor.HandlerFunc(func(ctx context.Context, req *actor.Request) (*actor.Response, error) {
		st := state.Storage()
		n, _, err := storage.GetInt(ctx, st, "n")
		if err != nil {
			return nil, err
		}
		switch req.Path {
		case "incr":
			n++
			if err := storage.PutInt(ctx, st, "n", n); err != nil {
				return nil, err
			}
		case "read":
		case "slow": // a handler that takes a while (the flood workload)
			time.Sleep(benchSlowDelay)
		default:
			return &actor.Response{Status: http.StatusNotFound, Body: []byte("unknown path " + strconv.Quote(req.Path))}, nil
		}
		return actor.Text(strconv.FormatInt(n, 10)), nil
	})
}

// benchEnv is what one mode's workloads run against: a NATS server (a fresh
// embedded one, or the external one), a runtime hosting the bench
// namespace on its own connection, an echo responder on another, and the
// callers' connections.
type benchEnv struct {
	mode    string
	o       *benchOptions
	stderr  io.Writer
	dir     string
	srv     *bus.Embedded
	baseSrv *bus.Embedded // -sync always: the baselines' server, with SyncAlways
	rtConn  *nats.Conn
	echoNC  *nats.Conn
	conns   []*nats.Conn
	clients []*actor.Client
	jss     []jetstream.JetStream
	rt      *actor.Runtime
	prefix  string // subject prefix, unique per run
	journal string // journal stream
	pub     string // jspub stream
	echo    string // echo subject
	closers []func() error
	dial    func(name string) (*nats.Conn, error) // a new connection to the server

	// alarmLog collects the firings of the benchalarm objects of every
	// runtime; rtLogs counts the runtimes' warnings and errors.
	alarmLog *benchAlarmLog
	rtLogs   benchLogCount
}

func newBenchEnv(ctx context.Context, mode string, o *benchOptions, stderr io.Writer) (_ *benchEnv, err error) {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	tag := hex.EncodeToString(rnd[:])
	e := &benchEnv{
		mode:    mode,
		o:       o,
		stderr:  stderr,
		prefix:  "opendobench" + tag,
		journal: "OPENDO_BENCH_" + tag + "_JOURNAL",
		pub:     "OPENDO_BENCH_" + tag + "_PUB",
	}
	e.alarmLog = newBenchAlarmLog()
	e.echo = e.prefix + ".echo"
	defer func() {
		if err != nil {
			_ = e.close()
		}
	}()
	e.dir, err = os.MkdirTemp(o.dataParent, "opendo-bench-")
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() error { return os.RemoveAll(e.dir) })

	connect := func(name string) (*nats.Conn, error) {
		if e.srv != nil {
			return e.srv.Connect(name)
		}
		return bus.Connect(o.nats.config(name))
	}
	e.dial = connect
	if mode == "server" {
		fmt.Fprintf(stderr, "opendo bench: NATS %s, objects in %s\n", bus.ResolveURL(o.nats.url), e.dir)
	} else {
		// In "always" mode the runtime's server does not fsync each message:
		// the runtime fsyncs the store once per group of acknowledged appends
		// (actor.Config.Sync), as `opendo dev -sync always` does. The raw
		// JetStream baselines run on a second server with SyncAlways: one
		// fsync per message.
		e.srv, err = bus.StartEmbedded(bus.EmbeddedConfig{
			Addr:     "127.0.0.1:0",
			StoreDir: filepath.Join(e.dir, "nats"),
		})
		if err != nil {
			return nil, err
		}
		e.closers = append(e.closers, func() error {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return e.srv.Shutdown(sctx)
		})
		if mode == "always" {
			e.baseSrv, err = bus.StartEmbedded(bus.EmbeddedConfig{
				Addr:       "127.0.0.1:0",
				StoreDir:   filepath.Join(e.dir, "nats-base"),
				SyncAlways: true,
			})
			if err != nil {
				return nil, err
			}
			e.closers = append(e.closers, func() error {
				sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				return e.baseSrv.Shutdown(sctx)
			})
		}
		fmt.Fprintf(stderr, "opendo bench: embedded NATS with JetStream (sync %s), in-process connections, data in %s\n", mode, e.dir)
	}
	fmt.Fprintf(stderr, "opendo bench: %d callers on %d connections; %v per workload after %v warmup\n", o.callers, o.conns, o.duration, o.warmup)

	// The runtime, on its own connection, with the default idle timeout:
	// objects stay active between calls (touch-100k has its own runtime).
	if e.rtConn, err = connect("opendo-bench-runtime"); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() error { e.rtConn.Close(); return nil })
	if e.rt, err = e.startRuntime(ctx, e.prefix, e.journal, 0); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() error { return closeBenchRuntime(e.rt) })

	// The echo responder, on its own connection.
	if e.echoNC, err = connect("opendo-bench-echo"); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() error { e.echoNC.Close(); return nil })
	sub, err := e.echoNC.Subscribe(e.echo, func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		return nil, err
	}
	_ = sub.SetPendingLimits(1<<20, 1<<30)
	if err := e.echoNC.Flush(); err != nil {
		return nil, err
	}

	// The callers' connections.
	for i := range o.conns {
		nc, err := connect("opendo-bench-" + strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		e.closers = append(e.closers, func() error { nc.Close(); return nil })
		c, err := actor.NewClient(nc, actor.ClientConfig{Prefix: e.prefix})
		if err != nil {
			return nil, err
		}
		jnc := nc
		if e.baseSrv != nil {
			if jnc, err = e.baseSrv.Connect("opendo-bench-base-" + strconv.Itoa(i)); err != nil {
				return nil, err
			}
			e.closers = append(e.closers, func() error { jnc.Close(); return nil })
		}
		js, err := jetstream.New(jnc)
		if err != nil {
			return nil, err
		}
		e.conns = append(e.conns, nc)
		e.clients = append(e.clients, c)
		e.jss = append(e.jss, js)
	}

	// The jspub stream, configured as the journal is (file, limits, R as asked).
	_, err = e.jss[0].CreateStream(ctx, jetstream.StreamConfig{
		Name:      e.pub,
		Subjects:  []string{e.prefix + ".pub.>"},
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
		Replicas:  o.replicas,
		Discard:   jetstream.DiscardNew,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", e.pub, err)
	}
	if e.srv == nil {
		// External server: leave nothing behind.
		js := e.jss[0]
		e.closers = append(e.closers, func() error {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return errors.Join(js.DeleteStream(dctx, e.pub), js.DeleteStream(dctx, e.journal))
		})
	}
	return e, nil
}

// startRuntime starts a runtime hosting the bench namespace on the
// runtime's connection.
func (e *benchEnv) startRuntime(ctx context.Context, prefix, journal string, idle time.Duration) (*actor.Runtime, error) {
	return e.startNode(ctx, e.rtConn, "", prefix, journal, idle)
}

// startNode starts a runtime on nc as node (default: one of its own).
func (e *benchEnv) startNode(ctx context.Context, nc *nats.Conn, node, prefix, journal string, idle time.Duration) (*actor.Runtime, error) {
	return e.startNodeWith(ctx, nc, node, prefix, journal, idle, 0)
}

// startNodeWith is startNode with the journal spread over streams.
func (e *benchEnv) startNodeWith(ctx context.Context, nc *nats.Conn, node, prefix, journal string, idle time.Duration, streams int) (*actor.Runtime, error) {
	rt, err := actor.New(actor.Config{
		JournalStreams: streams,
		Conn:           nc,
		NodeID:         node,
		DataDir:        filepath.Join(e.dir, "objects-"+prefix+node),
		Prefix:         prefix,
		JournalStream:  journal,
		Replicas:       e.o.replicas,
		IdleTimeout:    idle,
		AlarmStream:    journal + "_ALARMS",
		Logger:         e.runtimeLogger(),
		Sync:           e.syncFunc(),
	})
	if err != nil {
		return nil, err
	}
	if err := rt.Register(benchNamespace, benchObject); err != nil {
		return nil, err
	}
	if err := rt.Register(benchAlarmNamespace, e.alarmFactory()); err != nil {
		return nil, err
	}
	if err := rt.Start(ctx); err != nil {
		_ = closeBenchRuntime(rt)
		return nil, err
	}
	return rt, nil
}

// ownRuntime starts a runtime of a workload's own, under prefix
// e.prefix+tag and a journal stream named with suffix. done closes it and,
// on an external server, deletes its journal and alarm streams.
func (e *benchEnv) ownRuntime(ctx context.Context, tag, suffix string, idle time.Duration) (_ *actor.Runtime, done func() error, _ error) {
	prefix, journal := e.prefix+tag, strings.Replace(e.journal, "_JOURNAL", suffix, 1)
	rt, err := e.startRuntime(ctx, prefix, journal, idle)
	if err != nil {
		return nil, nil, err
	}
	return rt, func() error {
		err := closeBenchRuntime(rt)
		if e.srv == nil {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = errors.Join(err, e.jss[0].DeleteStream(dctx, journal), e.jss[0].DeleteStream(dctx, journal+"_ALARMS"))
		}
		return err
	}, nil
}

// syncFunc is the runtime's Config.Sync: in "always" mode, one fsync of
// the store per group of acknowledged appends.
func (e *benchEnv) syncFunc() func() error {
	if e.mode != "always" || e.srv == nil {
		return nil
	}
	return e.srv.Sync
}

func closeBenchRuntime(rt *actor.Runtime) error {
	cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return rt.Close(cctx)
}

// close undoes newBenchEnv in reverse order.
func (e *benchEnv) close() error {
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i]())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// conn returns the index of caller i's connection.
func (e *benchEnv) conn(i int) int { return i % len(e.conns) }

// call is one request to a bench object; a reply with status >= 400 is an
// error.
func benchCall(ctx context.Context, s *actor.Stub, path string) error {
	resp, err := s.Do(ctx, path, nil)
	if err != nil {
		return err
	}
	if resp.Status >= 400 {
		return fmt.Errorf("status %d: %s", resp.Status, resp.Body)
	}
	return nil
}

// run measures workload w.
func (e *benchEnv) run(ctx context.Context, w benchWorkload, profile string) (*benchResult, error) {
	o := e.o
	ns := make([]*actor.NamespaceClient, len(e.clients))
	for i, c := range e.clients {
		ns[i] = c.Namespace(benchNamespace)
	}
	payload := make([]byte, o.payload)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	callers := o.callers
	var mk func(i int) benchOp
	switch w.name {
	case "echo":
		mk = func(i int) benchOp {
			nc := e.conns[e.conn(i)]
			return func(ctx context.Context) error {
				_, err := nc.RequestWithContext(ctx, e.echo, payload)
				return err
			}
		}
	case "read", "incr-1":
		path, name := "read", "read-1"
		if w.name == "incr-1" {
			path, name = "incr", "incr-1"
		}
		// Activate the object (and give "read" a key to read).
		if err := benchCall(ctx, ns[0].Get(name), "incr"); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		mk = func(i int) benchOp {
			s := ns[e.conn(i)].Get(name)
			return func(ctx context.Context) error { return benchCall(ctx, s, path) }
		}
	case "incr-1000":
		var err error
		if mk, err = e.incr1000(ctx, ns, callers); err != nil {
			return nil, err
		}
	case "incr-1000-2n", "incr-1000-3n":
		return e.runNodes(ctx, w, profile)
	case "jspub-3s":
		return e.runSpreadPub(ctx, w, profile)
	case "incr-1000-3s":
		return e.runSpreadIncr(ctx, w, profile)
	case "jspub", "jspub-1":
		if w.name == "jspub-1" {
			callers = 1
		}
		mk = func(i int) benchOp {
			js := e.jss[e.conn(i)]
			subj := e.prefix + ".pub." + strconv.Itoa(i)
			return func(ctx context.Context) error {
				_, err := js.Publish(ctx, subj, payload)
				return err
			}
		}
	case "touch-100k":
		return e.touch(ctx, profile)
	case "alarm-1", "alarm-10k":
		return e.runAlarm(ctx, w, profile)
	case "burst", "flood":
		return e.runFlood(ctx, w)
	default:
		return nil, fmt.Errorf("unknown workload %q", w.name)
	}
	r, err := benchTimed(ctx, callers, o.warmup, o.duration, profile, mk)
	if err != nil {
		return nil, err
	}
	r.Workload, r.Sync, r.Callers, r.Conns = w.name, e.mode, callers, min(callers, len(e.conns))
	return r, nil
}

// incr1000Under prepares incr-1000 for runtimes under subject prefix, with
// a client of that prefix on each bench connection.
func (e *benchEnv) incr1000Under(ctx context.Context, prefix string) (func(i int) benchOp, error) {
	ns := make([]*actor.NamespaceClient, len(e.conns))
	for i, nc := range e.conns {
		c, err := actor.NewClient(nc, actor.ClientConfig{Prefix: prefix})
		if err != nil {
			return nil, err
		}
		ns[i] = c.Namespace(benchNamespace)
	}
	return e.incr1000(ctx, ns, e.o.callers)
}

// incr1000 prepares incr-1000 on the clients ns: increments spread over
// 1,000 objects, each caller going round-robin from its own start.
func (e *benchEnv) incr1000(ctx context.Context, ns []*actor.NamespaceClient, callers int) (func(i int) benchOp, error) {
	const objects = 1000
	stubs := make([][]*actor.Stub, len(ns))
	for c := range ns {
		stubs[c] = make([]*actor.Stub, objects)
		for k := range objects {
			stubs[c][k] = ns[c].Get("incr-1000-" + strconv.Itoa(k))
		}
	}
	// Activate every object first: activation is touch-100k's business.
	if err := benchParallel(ctx, callers, objects, func(ctx context.Context, i, k int) error {
		return benchCall(ctx, stubs[e.conn(i)][k], "incr")
	}); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return func(i int) benchOp {
		ss := stubs[e.conn(i)]
		k := i * objects / callers // callers start spread out, then go round-robin
		return func(ctx context.Context) error {
			k++
			if k == objects {
				k = 0
			}
			return benchCall(ctx, ss[k], "incr")
		}
	}, nil
}

// touch runs touch-100k: every object once, then waits for the idle
// timeout to evict them. It runs its own runtime, with IdleTimeout -idle,
// under its own prefix and journal stream.
func (e *benchEnv) touch(ctx context.Context, profile string) (_ *benchResult, err error) {
	o := e.o
	rt, done, err := e.ownRuntime(ctx, "t", "_TOUCH_JOURNAL", o.idle)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, done()) }()
	ns := make([]*actor.NamespaceClient, len(e.conns))
	for i, nc := range e.conns {
		c, err := actor.NewClient(nc, actor.ClientConfig{Prefix: rt.Subjects().Prefix})
		if err != nil {
			return nil, err
		}
		ns[i] = c.Namespace(benchNamespace)
	}
	rssReset := resetPeakRSS()
	fds0 := countFDs()
	samp := startBenchSampler(rt)
	var stop func() error
	if profile != "" {
		var err error
		if stop, err = benchProfile(profile); err != nil {
			return nil, err
		}
	}
	lat := newBenchLatencies(o.callers, o.objects/o.callers+1)
	errs := &benchErrors{}
	start := time.Now()
	_ = benchParallel(ctx, o.callers, o.objects, func(ctx context.Context, i, k int) error {
		s := ns[e.conn(i)].Get("touch-" + strconv.Itoa(k))
		t0 := time.Now()
		if err := benchCall(ctx, s, "read"); err != nil {
			errs.add(err)
			return nil // keep going: errors are counted, not fatal
		}
		lat.add(i, time.Since(t0))
		return nil
	})
	elapsed := time.Since(start)
	if stop != nil {
		if err := stop(); err != nil {
			return nil, err
		}
	}
	peakRSS := readPeakRSSMB()
	// Let the idle timeout evict the objects, then look at what is left.
	settle := time.Now()
	deadline := settle.Add(o.idle + 10*time.Second)
	for rt.ActiveObjects() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the last files close
	peak := samp.stop()
	r := lat.result(elapsed)
	r.Workload, r.Sync, r.Callers, r.Conns = "touch-100k", e.mode, o.callers, len(e.conns)
	r.Errors, r.FirstError = errs.get()
	r.Objects = o.objects
	r.PeakRSSMB = &peakRSS
	r.RSSNote = "bench process"
	if e.srv != nil {
		r.RSSNote += ", embedded server included"
	}
	if !rssReset {
		r.RSSNote += "; peak since process start"
	}
	peakFDs := max(peak.fds, fds0)
	r.PeakFDs = &peakFDs
	r.FDsBefore = fds0
	r.PeakActive = peak.active
	r.ActiveAfter = rt.ActiveObjects()
	r.FDsAfter = countFDs()
	r.SettleAfter = time.Since(settle).Round(100 * time.Millisecond).String()
	return r, ctx.Err()
}

package actortest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/bus"
	"github.com/opendo/opendo/internal/clocktest"
	"github.com/opendo/opendo/storage"
)

// Clock is the runtime's clock in a test: Now stands still; Advance moves
// it and runs the timers (alarms) it passes.
type Clock = clocktest.Clock

// Env is one test's runtime.
type Env struct {
	Runtime *actor.Runtime
	Client  *actor.Client
	Conn    *nats.Conn // a connection to the embedded server
	URL     string     // the embedded server's URL (127.0.0.1, a free port)
	Clock   *Clock
	t       testing.TB
}

// Option adjusts the runtime's configuration.
type Option func(*actor.Config)

// New starts an embedded server and a runtime whose namespaces register
// adds, and stops both when the test ends. The clock starts at the real
// time, truncated to the millisecond.
func New(t testing.TB, register func(rt *actor.Runtime) error, opts ...Option) *Env {
	t.Helper()
	dir := t.TempDir()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatalf("actortest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	nc, err := srv.Connect("actortest")
	if err != nil {
		t.Fatalf("actortest: %v", err)
	}
	t.Cleanup(nc.Close)
	clock := clocktest.New(time.Now().Truncate(time.Millisecond))
	cfg := actor.Config{Conn: nc, DataDir: filepath.Join(dir, "objects"), Clock: clock}
	for _, o := range opts {
		o(&cfg)
	}
	rt, err := actor.New(cfg)
	if err != nil {
		t.Fatalf("actortest: %v", err)
	}
	if err := register(rt); err != nil {
		t.Fatalf("actortest: register: %v", err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatalf("actortest: start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("actortest: close runtime: %v", err)
		}
	})
	c, err := actor.NewClient(nc, actor.ClientConfig{Prefix: cfg.Prefix, Partitions: cfg.Partitions})
	if err != nil {
		t.Fatalf("actortest: %v", err)
	}
	return &Env{Runtime: rt, Client: c, Conn: nc, URL: srv.URL(), Clock: clock, t: t}
}

// Get returns the stub of object name of namespace ns.
func (e *Env) Get(ns, name string) *actor.Stub { return e.Client.Namespace(ns).Get(name) }

// Run runs fn inside object name of namespace ns, with its storage, as one
// event of its own (actor.Runtime.RunInObject): read what a handler wrote,
// or set up state before a test. Its writes are durable when Run returns.
func (e *Env) Run(ns, name string, fn func(ctx context.Context, st storage.Storage) error) error {
	return e.Runtime.RunInObject(e.ctx(), ns, actor.NameID(ns, name), func(ctx context.Context, state *actor.State) error {
		return fn(ctx, state.Storage())
	})
}

// RunAlarm fires the alarm of object name of namespace ns now, if it has
// one: it moves the clock to the alarm's time and waits until the alarm
// handler ran (the alarm is then gone or set again). It reports whether
// there was an alarm.
func (e *Env) RunAlarm(ns, name string) (bool, error) {
	var at time.Time
	var ok bool
	err := e.Run(ns, name, func(ctx context.Context, st storage.Storage) (err error) {
		at, ok, err = st.Alarm(ctx)
		return err
	})
	if err != nil || !ok {
		return false, err
	}
	if d := at.Sub(e.Clock.Now()); d > 0 {
		e.Clock.Advance(d)
	} else {
		e.Clock.Advance(0)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var cur time.Time
		var still bool
		if err := e.Run(ns, name, func(ctx context.Context, st storage.Storage) (err error) {
			cur, still, err = st.Alarm(ctx)
			return err
		}); err != nil {
			return true, err
		}
		if !still || !cur.Equal(at) {
			return true, nil
		}
		if time.Now().After(deadline) {
			return true, fmt.Errorf("actortest: the alarm of %s/%s at %v did not run within 30 s", ns, name, at)
		}
		time.Sleep(5 * time.Millisecond) // the firing is queued behind this check; look again
	}
}

func (e *Env) ctx() context.Context {
	if t, ok := e.t.(interface{ Context() context.Context }); ok {
		return t.Context()
	}
	return context.Background()
}

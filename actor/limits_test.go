package actor_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/internal/clocktest"
)

// gated is a namespace whose "wait" requests write a key, tell entered,
// then block until the gate opens (or, for "wait-ctx", until their context
// ends). "ignore" blocks on the gate whatever its context says.
type gated struct {
	entered chan string
	gate    chan struct{}
	once    sync.Once
}

func newGated() *gated { return &gated{entered: make(chan string, 100), gate: make(chan struct{})} }

func (g *gated) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gated) factory(state *actor.State) actor.Handler {
	return actor.HandlerFunc(func(ctx context.Context, req *actor.Request) (*actor.Response, error) {
		st := state.Storage()
		switch req.Path {
		case "wait", "ignore", "wait-ctx":
			if err := st.Put(ctx, "k", []byte(req.Path)); err != nil {
				return nil, err
			}
			g.entered <- state.Name()
			switch req.Path {
			case "wait":
				select {
				case <-g.gate:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			case "ignore":
				<-g.gate
			case "wait-ctx":
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return actor.Text("done"), nil
		case "get":
			v, _, err := st.Get(ctx, "k")
			return actor.Bytes(v), err
		}
		return actor.Text("ok " + strconv.Itoa(len(req.Body))), nil
	})
}

func newGatedEnv(t *testing.T, mod func(*actor.Config)) (*env, *gated) {
	t.Helper()
	g := newGated()
	t.Cleanup(g.open)
	e := newEnvWith(t, nil, "", mod, func(rt *actor.Runtime) {
		if err := rt.Register("gated", g.factory); err != nil {
			t.Fatal(err)
		}
	})
	return e, g
}

// callAsync calls ns/name and sends the outcome on the returned channel.
func (e *env) callAsync(t *testing.T, ns, name, path string, body []byte) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := e.client.Namespace(ns).Get(name).Do(context.Background(), path, body)
		ch <- err
	}()
	return ch
}

func wantOverloaded(t *testing.T, err error, why string) {
	t.Helper()
	wantCode(t, err, actor.CodeOverloaded)
	if !strings.Contains(err.Error(), why) {
		t.Fatalf("got %v, want it to say %q", err, why)
	}
}

// TestQueuedBytesBounded: requests waiting at a busy object count by
// bytes; past the per-object and per-runtime limits callers get
// "overloaded" at once, and what was queued still runs.
func TestQueuedBytesBounded(t *testing.T) {
	const unit = 512 << 10 // a body unit; the test server takes at most 1 MiB a message
	e, g := newGatedEnv(t, func(c *actor.Config) {
		c.MaxQueuedBytes = 4*unit + 64<<10
		c.MaxQueuedBytesTotal = 6*unit + 64<<10
	})
	busy := e.callAsync(t, "gated", "a", "wait", nil)
	<-g.entered
	body := make([]byte, unit)
	var queued []<-chan error
	for range 4 {
		queued = append(queued, e.callAsync(t, "gated", "a", "big", body))
	}
	waitFor(t, func() bool { return e.rt.Stats().QueuedBytes >= 4*unit })
	_, err := e.client.Namespace("gated").Get("a").Do(t.Context(), "big", body)
	wantOverloaded(t, err, "too much data queued at object")

	// The runtime's total: object b may queue 2 MiB more, not 3.
	busyB := e.callAsync(t, "gated", "b", "wait", nil)
	<-g.entered
	for range 2 {
		queued = append(queued, e.callAsync(t, "gated", "b", "big", body))
	}
	waitFor(t, func() bool { return e.rt.Stats().QueuedBytes >= 6*unit })
	_, err = e.client.Namespace("gated").Get("b").Do(t.Context(), "big", body)
	wantOverloaded(t, err, "too much data queued in this runtime")
	if st := e.rt.Stats(); st.QueuedBytes > 6*unit+64<<10 || st.OverloadedBytes != 2 {
		t.Fatalf("stats %+v: queued bytes over the limit or refusals not counted", st)
	}

	g.open()
	for _, ch := range append(queued, busy, busyB) {
		if err := <-ch; err != nil {
			t.Fatalf("queued request: %v", err)
		}
	}
	if got := e.rt.Stats().QueuedBytes; got != 0 {
		t.Fatalf("QueuedBytes = %d after the queues drained", got)
	}
}

// TestQueuedTooLong: a request that waited in the mailbox longer than
// MaxQueueWait (on the runtime's clock) is not run.
func TestQueuedTooLong(t *testing.T) {
	clock := clocktest.New(time.Now())
	e, g := newGatedEnv(t, func(c *actor.Config) { c.Clock = clock; c.MaxQueueWait = 5 * time.Second })
	busy := e.callAsync(t, "gated", "a", "wait", nil)
	<-g.entered
	late := e.callAsync(t, "gated", "a", "wait", nil) // would write "wait" again
	waitFor(t, func() bool { return e.rt.Stats().QueuedBytes > 0 })
	clock.Advance(6 * time.Second)
	g.open()
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
	wantOverloaded(t, <-late, "queued too long")
	if got := e.rt.Stats().OverloadedWait; got != 1 {
		t.Fatalf("OverloadedWait = %d, want 1", got)
	}
	if got := e.mustCall(t, "gated", "a", "echo", ""); got != "ok 0" {
		t.Fatalf("after: %q", got)
	}
}

// TestTooManyRequestsQueued: the mailbox's count limit.
func TestTooManyRequestsQueued(t *testing.T) {
	e, g := newGatedEnv(t, func(c *actor.Config) { c.MailboxSize = 2 })
	busy := e.callAsync(t, "gated", "a", "wait", nil)
	<-g.entered
	q1, q2 := e.callAsync(t, "gated", "a", "echo", nil), e.callAsync(t, "gated", "a", "echo", nil)
	waitFor(t, func() bool { return e.rt.Stats().QueuedBytes > 0 && len(q1) == 0 })
	var err error
	for range 50 { // q1 and q2 may still be on their way
		if _, err = e.client.Namespace("gated").Get("a").Do(t.Context(), "echo", nil); err != nil {
			break
		}
	}
	wantOverloaded(t, err, "too many requests queued")
	g.open()
	for _, ch := range []<-chan error{busy, q1, q2} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
}

// TestHandlerTimeout: a handler that honours its context and one that
// ignores it both give the caller "timeout" at the deadline; their writes
// are rolled back and the object serves again afterwards.
func TestHandlerTimeout(t *testing.T) {
	e, g := newGatedEnv(t, func(c *actor.Config) { c.HandlerTimeout = 200 * time.Millisecond })

	_, err := e.client.Namespace("gated").Get("a").Do(t.Context(), "wait-ctx", nil)
	wantCode(t, err, actor.CodeTimeout)
	<-g.entered
	if got := e.mustCall(t, "gated", "a", "get", ""); got != "" {
		t.Fatalf("k = %q after a timed-out request, want it rolled back", got)
	}

	// A handler that ignores its context: the caller is answered at the
	// deadline; the object refuses requests until the handler returns.
	stuck := e.callAsync(t, "gated", "b", "ignore", nil)
	<-g.entered
	wantCode(t, <-stuck, actor.CodeTimeout)
	if st := e.rt.Stats(); st.StuckHandlers != 1 {
		t.Fatalf("stats %+v, want one stuck handler", st)
	}
	_, err = e.client.Namespace("gated").Get("b").Do(t.Context(), "get", nil)
	wantCode(t, err, actor.CodeUnavailable)
	if got := e.mustCall(t, "gated", "c", "echo", ""); got != "ok 0" {
		t.Fatalf("another object: %q", got)
	}
	g.open()
	waitFor(t, func() bool { return e.rt.Stats().StuckHandlers == 0 })
	if got := e.mustCall(t, "gated", "b", "get", ""); got != "" {
		t.Fatalf("k = %q after a stuck request, want it rolled back", got)
	}
	if st := e.rt.Stats(); st.HandlerTimeouts != 2 {
		t.Fatalf("HandlerTimeouts = %d, want 2", st.HandlerTimeouts)
	}
}

// TestActiveCapIsHard: no more than MaxActive objects hold files; an
// activation beyond it closes an idle object, or waits for a slot and then
// gets "overloaded"; at most MaxActivating wait.
func TestActiveCapIsHard(t *testing.T) {
	e, g := newGatedEnv(t, func(c *actor.Config) {
		c.MaxActive = 3
		c.ActivationWait = 300 * time.Millisecond
		c.MaxActivating = 1
	})
	// Idle objects make room.
	for i := range 10 {
		e.mustCall(t, "gated", "idle"+strconv.Itoa(i), "echo", "")
		if n := e.rt.Stats().Active; n > 3 {
			t.Fatalf("%d active objects, cap 3", n)
		}
	}
	// Busy ones do not.
	var busy []<-chan error
	for i := range 3 {
		busy = append(busy, e.callAsync(t, "gated", "busy"+strconv.Itoa(i), "wait", nil))
		<-g.entered
	}
	waiting := e.callAsync(t, "gated", "new1", "echo", nil)
	waitFor(t, func() bool { return e.rt.Stats().Activating == 1 })
	_, err := e.client.Namespace("gated").Get("new2").Do(t.Context(), "echo", nil)
	wantOverloaded(t, err, "too many objects active")
	wantOverloaded(t, <-waiting, "too many objects active")
	if st := e.rt.Stats(); st.Active != 3 || st.OverloadedActive != 2 {
		t.Fatalf("stats %+v", st)
	}
	g.open()
	for _, ch := range busy {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if got := e.mustCall(t, "gated", "new1", "echo", ""); got != "ok 0" {
		t.Fatalf("after the busy objects finished: %q", got)
	}
}

// TestBurstOfNewObjects: a burst of requests to new objects, all sent at
// once, past the active cap: every caller gets an answer, success or
// "overloaded"; no file is deleted; an object active before keeps
// answering. (`opendo bench -workloads burst` runs 20,000 with the default
// limits; see docs/operations.md.)
func TestBurstOfNewObjects(t *testing.T) {
	const n = 1500
	e, _ := newGatedEnv(t, func(c *actor.Config) {
		c.MaxActive = 40
		c.MaxActivating = 200
		c.ActivationWait = 3 * time.Second
	})
	for range 3 { // in steady use before the burst
		e.mustCall(t, "gated", "existing", "echo", "")
	}
	stop := make(chan struct{})
	existing := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				existing <- nil
				return
			default:
			}
			if _, err := e.client.Namespace("gated").Get("existing").Do(context.Background(), "echo", nil); err != nil {
				existing <- err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := e.client.Namespace("gated").Get("new-"+strconv.Itoa(k)).Do(ctx, "echo", nil)
			code := "ok"
			if err != nil {
				code = err.Error()
				var ae *actor.Error
				if errors.As(err, &ae) {
					code = ae.Code
				}
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-existing; err != nil {
		t.Fatalf("the existing object failed during the burst: %v", err)
	}
	if codes["ok"]+codes[actor.CodeOverloaded] != n || codes["ok"] == 0 {
		t.Fatalf("answers %v: want only ok and overloaded, some ok", codes)
	}
	files, err := filepath.Glob(filepath.Join(e.data, "gated", "*.db"))
	if err != nil {
		t.Fatal(err)
	}
	// Every object that answered ok has its file (plus "existing").
	if len(files) < codes["ok"]+1 {
		t.Fatalf("%d object files after %d successful activations", len(files), codes["ok"])
	}
	if st := e.rt.Stats(); st.Active > 40 {
		t.Fatalf("%d active objects, cap 40", st.Active)
	}
	t.Logf("burst of %d: %v", n, codes)
}

package actor_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/storage"
)

// room is an object with an Init hook, a log of what ran in it (kept in
// memory, so a reset shows), and background work.
type room struct {
	state *actor.State
	t     *testing.T
	k     *roomKit
	built int // handlers built for this object so far (from roomKit)
	mem   []string
}

// roomKit is what the test shares with the objects.
type roomKit struct {
	mu       sync.Mutex
	builds   map[string]int
	log      []string
	failInit atomic.Bool
	release  chan struct{} // background work waits on it
	started  chan struct{} // background work signals it is inside its section
	proceed  chan struct{} // the section waits on it
	bgErr    chan error    // background work's BlockConcurrencyWhile result
}

func (k *roomKit) add(s string) {
	k.mu.Lock()
	k.log = append(k.log, s)
	k.mu.Unlock()
}

func (k *roomKit) entries() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.log...)
}

func (k *roomKit) factory(t *testing.T) actor.Factory {
	return func(state *actor.State) actor.Handler {
		k.mu.Lock()
		k.builds[string(state.ID())]++
		n := k.builds[string(state.ID())]
		k.mu.Unlock()
		return &room{state: state, t: t, k: k, built: n}
	}
}

// Init counts its runs in storage, and fails while failInit is set.
func (r *room) Init(ctx context.Context) error {
	st := r.state.Storage()
	n, _, err := storage.GetInt(ctx, st, "inits")
	if err != nil {
		return err
	}
	if err := storage.PutInt(ctx, st, "inits", n+1); err != nil {
		return err
	}
	if r.k.failInit.Load() {
		return errors.New("init refuses")
	}
	r.mem = append(r.mem, "init")
	return nil
}

func (r *room) Handle(ctx context.Context, req *actor.Request) (*actor.Response, error) {
	st := r.state.Storage()
	switch req.Path {
	case "inits":
		n, _, err := storage.GetInt(ctx, st, "inits")
		return actor.Text(strconv.FormatInt(n, 10) + " " + strings.Join(r.mem, ",") + " built " + strconv.Itoa(r.built)), err
	case "get":
		v, _, err := st.Get(ctx, string(req.Body))
		return actor.Bytes(v), err
	case "mark": // in memory only
		r.mem = append(r.mem, string(req.Body))
		r.k.add("req " + string(req.Body))
		return actor.Text("ok"), nil
	case "section-fails":
		err := r.state.BlockConcurrencyWhile(ctx, func(ctx context.Context) error {
			if err := st.Put(ctx, "lost", []byte("x")); err != nil {
				return err
			}
			return errors.New("section refuses")
		})
		return actor.Text("handler went on"), err
	case "section-ok":
		err := r.state.BlockConcurrencyWhile(ctx, func(ctx context.Context) error {
			return st.Put(ctx, "inline", []byte("yes"))
		})
		return actor.Text("ok"), err
	case "background":
		r.state.WaitUntil(func(ctx context.Context) {
			select {
			case <-r.k.release:
			case <-ctx.Done():
				r.k.bgErr <- ctx.Err()
				return
			}
			r.k.bgErr <- r.state.BlockConcurrencyWhile(ctx, func(ctx context.Context) error {
				r.k.add("section start")
				close(r.k.started)
				<-r.k.proceed
				if err := r.state.Storage().Put(ctx, "bg", []byte("done")); err != nil {
					return err
				}
				r.k.add("section end")
				return nil
			})
		})
		return actor.Text("started"), nil
	}
	return &actor.Response{Status: http.StatusNotFound}, nil
}

func newRoomEnv(t *testing.T, mod func(*actor.Config)) (*env, *roomKit) {
	k := &roomKit{builds: map[string]int{}, release: make(chan struct{}), started: make(chan struct{}), proceed: make(chan struct{}), bgErr: make(chan error, 1)}
	e := newEnvWith(t, nil, "", mod, func(rt *actor.Runtime) {
		if err := rt.Register("room", k.factory(t)); err != nil {
			t.Fatal(err)
		}
	})
	return e, k
}

func (e *env) callRoom(t *testing.T, name, path, body string) (string, error) {
	t.Helper()
	resp, err := e.client.Namespace("room").Get(name).Do(t.Context(), path, []byte(body))
	if err != nil {
		return "", err
	}
	return string(resp.Body), nil
}

// TestInitHook: Init runs before the first event, with storage, once per
// handler: again after a panic, a timeout or a failed section rebuilt it.
// A failing Init fails the event that waited for it, keeps none of its
// writes, and runs again at the next event.
func TestInitHook(t *testing.T) {
	e, k := newRoomEnv(t, nil)
	if got, err := e.callRoom(t, "r1", "inits", ""); err != nil || got != "1 init built 1" {
		t.Fatalf("first call: %q, %v; want Init to have run once", got, err)
	}
	if got, _ := e.callRoom(t, "r1", "inits", ""); got != "1 init built 1" {
		t.Fatalf("second call: %q; Init ran again", got)
	}
	// A failed section resets the object: a new handler, Init again.
	if _, err := e.callRoom(t, "r1", "section-fails", ""); err == nil {
		t.Fatal("a failed BlockConcurrencyWhile did not fail its request")
	}
	if got, _ := e.callRoom(t, "r1", "inits", ""); got != "2 init built 2" {
		t.Fatalf("after a failed section: %q, want Init run by a second handler", got)
	}

	k.failInit.Store(true)
	var ae *actor.Error
	if _, err := e.callRoom(t, "r2", "inits", ""); !errors.As(err, &ae) || ae.Code != actor.CodeHandlerError || !strings.Contains(ae.Message, "init") {
		t.Fatalf("with a failing Init: %v, want handler_error from init", err)
	}
	k.failInit.Store(false)
	// Its writes were rolled back: the count starts again at 1.
	if got, err := e.callRoom(t, "r2", "inits", ""); err != nil || !strings.HasPrefix(got, "1 init") {
		t.Fatalf("after Init recovered: %q, %v", got, err)
	}
}

// TestBlockConcurrencyWhileInline: within a handler the section runs at
// once; if it fails, the request fails, its writes (the section's too) are
// rolled back and the object resets (in-memory state gone).
func TestBlockConcurrencyWhileInline(t *testing.T) {
	e, _ := newRoomEnv(t, nil)
	if _, err := e.callRoom(t, "r", "section-ok", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.callRoom(t, "r", "get", "inline"); got != "yes" {
		t.Fatalf("section's write: %q", got)
	}
	if _, err := e.callRoom(t, "r", "mark", "m1"); err != nil {
		t.Fatal(err)
	}
	_, err := e.callRoom(t, "r", "section-fails", "")
	var ae *actor.Error
	if !errors.As(err, &ae) || ae.Code != actor.CodeHandlerError {
		t.Fatalf("failed section: %v, want handler_error", err)
	}
	if got, _ := e.callRoom(t, "r", "get", "lost"); got != "" {
		t.Errorf("the failed section's write stayed: %q", got)
	}
	if got, _ := e.callRoom(t, "r", "inits", ""); strings.Contains(got, "m1") {
		t.Errorf("in-memory state survived the reset: %q", got)
	}
}

// TestWaitUntilAndSection: work started by WaitUntil keeps its object from
// eviction (IdleTimeout is short here) and writes through a section that
// runs alone: a request sent while the section runs is handled after it.
func TestWaitUntilAndSection(t *testing.T) {
	e, k := newRoomEnv(t, func(c *actor.Config) { c.IdleTimeout = 50 * time.Millisecond })
	if got, err := e.callRoom(t, "r", "background", ""); err != nil || got != "started" {
		t.Fatalf("background: %q, %v", got, err)
	}
	if _, err := e.callRoom(t, "r", "mark", "before"); err != nil {
		t.Fatal(err)
	}
	// The object stays active, idle, many idle timeouts long, while the work waits.
	builds := func() int { k.mu.Lock(); defer k.mu.Unlock(); return k.builds[string(actor.NameID("room", "r"))] }
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if e.rt.Stats().Active != 1 {
			t.Fatalf("the object was evicted while its WaitUntil work ran (active %d)", e.rt.Stats().Active)
		}
		time.Sleep(10 * time.Millisecond) // observation, not synchronization: the check runs throughout
	}

	// Let the work enter its section, send a request while it runs, and
	// let the section end once the request waits in the object's mailbox.
	close(k.release)
	<-k.started
	reply := make(chan error, 1)
	go func() {
		_, err := e.callRoom(t, "r", "mark", "during")
		reply <- err
	}()
	deadline = time.Now().Add(10 * time.Second)
	for e.rt.Stats().QueuedBytes == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never queued behind the section")
		}
		time.Sleep(time.Millisecond)
	}
	close(k.proceed)
	if err := <-k.bgErr; err != nil {
		t.Fatalf("section from WaitUntil: %v", err)
	}
	if err := <-reply; err != nil {
		t.Fatal(err)
	}
	if got, _ := e.callRoom(t, "r", "get", "bg"); got != "done" {
		t.Fatalf("section's write: %q", got)
	}
	log := strings.Join(k.entries(), "|")
	if want := "req before|section start|section end|req during"; log != want {
		t.Fatalf("order %q, want %q", log, want)
	}
	if builds() != 1 {
		t.Errorf("%d handlers built: the object was evicted or reset", builds())
	}
	// Once the work is done, the object may be evicted again.
	deadline = time.Now().Add(10 * time.Second)
	for e.rt.Stats().Active != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the object was never evicted after its work ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWaitUntilBounded: work that outlives WaitUntilTimeout has its
// context cancelled, and the object is free to close.
func TestWaitUntilBounded(t *testing.T) {
	e, k := newRoomEnv(t, func(c *actor.Config) {
		c.IdleTimeout = 50 * time.Millisecond
		c.WaitUntilTimeout = 200 * time.Millisecond
	})
	if _, err := e.callRoom(t, "r", "background", ""); err != nil {
		t.Fatal(err)
	}
	if err := <-k.bgErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("work past its bound: %v, want its context cancelled", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.rt.Stats().Active != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the object was never evicted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

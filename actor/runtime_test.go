package actor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/examples/counter"
	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
)

// env is a runtime with test namespaces on a real embedded server.
type env struct {
	srv    *natstest.Server
	nc     *nats.Conn
	rt     *actor.Runtime
	client *actor.Client
	data   string
}

// probe is a namespace whose handler does what the path says.
func probe(state *actor.State) actor.Handler {
	return actor.HandlerFunc(func(ctx context.Context, req *actor.Request) (*actor.Response, error) {
		st := state.Storage()
		switch req.Path {
		case "put": // body "k=v"
			k, v, _ := cut(string(req.Body))
			return nil, st.Put(ctx, k, []byte(v))
		case "get":
			v, ok, err := st.Get(ctx, string(req.Body))
			if err != nil {
				return nil, err
			}
			if !ok {
				return &actor.Response{Status: http.StatusNotFound}, nil
			}
			return actor.Bytes(v), nil
		case "put-then-fail":
			if err := st.Put(ctx, string(req.Body), []byte("x")); err != nil {
				return nil, err
			}
			return nil, errors.New("boom")
		case "put-then-panic":
			if err := st.Put(ctx, string(req.Body), []byte("x")); err != nil {
				return nil, err
			}
			panic("kaboom")
		case "big-key":
			return nil, st.Put(ctx, string(make([]byte, storage.MaxKeySize+1)), []byte("x"))
		case "whoami":
			return actor.Text(state.Namespace() + "/" + string(state.ID()) + "/" + state.Name()), nil
		case "custom-error":
			return nil, actor.Errorf(http.StatusTeapot, "teapot", "short and stout")
		}
		return &actor.Response{Status: http.StatusNotFound, Body: []byte("no path " + req.Path)}, nil
	})
}

func cut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func newEnv(t *testing.T, srv *natstest.Server, data string, mod func(*actor.Config)) *env {
	t.Helper()
	return newEnvWith(t, srv, data, mod, nil)
}

func newEnvWith(t *testing.T, srv *natstest.Server, data string, mod func(*actor.Config), register func(*actor.Runtime)) *env {
	t.Helper()
	if srv == nil {
		srv = natstest.Start(t)
	}
	if data == "" {
		data = t.TempDir()
	}
	nc := srv.Conn(t)
	cfg := actor.Config{Conn: nc, DataDir: data}
	if mod != nil {
		mod(&cfg)
	}
	rt, err := actor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Register(counter.Namespace, counter.New); err != nil {
		t.Fatal(err)
	}
	if err := rt.Register("probe", probe); err != nil {
		t.Fatal(err)
	}
	if register != nil {
		register(rt)
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeRuntime(t, rt) })
	c, err := actor.NewClient(nc, actor.ClientConfig{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, nc: nc, rt: rt, client: c, data: data}
}

func closeRuntime(t testing.TB, rt *actor.Runtime) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rt.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func (e *env) call(t *testing.T, ns, name, path, body string) (string, error) {
	t.Helper()
	resp, err := e.client.Namespace(ns).Get(name).Do(t.Context(), path, []byte(body))
	if err != nil {
		return "", err
	}
	if resp.Status != 200 {
		return string(resp.Body), fmt.Errorf("status %d", resp.Status)
	}
	return string(resp.Body), nil
}

func (e *env) mustCall(t *testing.T, ns, name, path, body string) string {
	t.Helper()
	got, err := e.call(t, ns, name, path, body)
	if err != nil {
		t.Fatalf("%s %s %s: %v", ns, name, path, err)
	}
	return got
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *actor.Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v, want an *actor.Error with code %q", err, code)
	}
	if e.Code != code {
		t.Fatalf("got code %q (%v), want %q", e.Code, e, code)
	}
}

func TestCounterSequential(t *testing.T) {
	e := newEnv(t, nil, "", nil)
	for i := 1; i <= 20; i++ {
		if got := e.mustCall(t, "counter", "a", "incr", ""); got != strconv.Itoa(i) {
			t.Fatalf("incr %d: got %q", i, got)
		}
	}
	if got := e.mustCall(t, "counter", "b", "get", ""); got != "0" {
		t.Fatalf("other object: got %q, want 0", got)
	}
}

func TestCounterConcurrentCallers(t *testing.T) {
	e := newEnv(t, nil, "", nil)
	const callers, each = 16, 40
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				got, err := e.call(t, "counter", "shared", "incr", "")
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				dup := seen[got]
				seen[got] = true
				mu.Unlock()
				if dup {
					errs <- fmt.Errorf("value %s returned twice", got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := e.mustCall(t, "counter", "shared", "get", ""); got != strconv.Itoa(callers*each) {
		t.Fatalf("final %s, want %d", got, callers*each)
	}
}

func TestReplyOnlyAfterJournal(t *testing.T) {
	e := newEnv(t, nil, "", nil)
	jr := openJournal(t, e)
	subject := e.rt.Subjects().Journal("counter", string(actor.NameID("counter", "gate")))
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				got, err := e.call(t, "counter", "gate", "incr", "")
				if err != nil {
					t.Error(err)
					return
				}
				// Every acknowledged increment is already in the journal.
				n, _ := strconv.Atoi(got)
				txns := 0
				err = jr.Read(context.Background(), subject, 0, 0, func(_ uint64, en *journal.Entry) error {
					txns += len(en.Txns)
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if txns < n {
					t.Errorf("reply %d while the journal holds %d transactions", n, txns)
				}
			}
		}()
	}
	wg.Wait()
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, nil, "", nil)
	ctx := t.Context()
	tests := []struct {
		name string
		send func() (*nats.Msg, error)
		code string
	}{
		{"invalid id", func() (*nats.Msg, error) {
			return e.nc.RequestWithContext(ctx, "opendo.req.counter.NOT-AN-ID", nil)
		}, actor.CodeInvalidID},
		{"missing name", func() (*nats.Msg, error) {
			return e.nc.RequestWithContext(ctx, "opendo.name.counter", nil)
		}, actor.CodeInvalidID},
		{"name with control character", func() (*nats.Msg, error) {
			return e.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "opendo.name.counter", Header: nats.Header{actor.HeaderName: {"a\x01b"}}})
		}, actor.CodeInvalidID},
		{"name does not match id", func() (*nats.Msg, error) {
			id := actor.NameID("counter", "a")
			return e.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "opendo.req.counter." + string(id), Header: nats.Header{actor.HeaderName: {"b"}}})
		}, actor.CodeInvalidID},
		{"path too long", func() (*nats.Msg, error) {
			return e.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "opendo.name.counter", Header: nats.Header{actor.HeaderName: {"a"}, actor.HeaderPath: {string(make([]byte, actor.MaxPathLen+1))}}})
		}, actor.CodeBadRequest},
	}
	// No runtime subscribes to a namespace it does not serve: a raw NATS
	// request there finds no responders.
	if _, err := e.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "opendo.name.nope", Header: nats.Header{actor.HeaderName: {"x"}}}); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("unknown namespace: got %v, want %v", err, nats.ErrNoResponders)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.send()
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Header.Get(actor.HeaderError); got != tt.code {
				t.Fatalf("got code %q (%s), want %q", got, m.Data, tt.code)
			}
		})
	}
	// Nothing above created state: the counter "a" is still 0.
	if got := e.mustCall(t, "counter", "a", "get", ""); got != "0" {
		t.Fatalf("counter a = %s after bad input, want 0", got)
	}
	// Client-side validation.
	_, err := e.client.Namespace("counter").ByID("zz").Do(ctx, "get", nil)
	if !errors.Is(err, actor.ErrInvalidID) {
		t.Fatalf("ByID(zz): %v, want ErrInvalidID", err)
	}
	_, err = e.client.Namespace("no.such").Get("x").Do(ctx, "get", nil)
	if !errors.Is(err, actor.ErrUnknownNamespace) {
		t.Fatalf("bad namespace: %v, want ErrUnknownNamespace", err)
	}
}

func TestHandlerErrorsRollBack(t *testing.T) {
	e := newEnv(t, nil, "", nil)
	e.mustCall(t, "probe", "p", "put", "keep=1")

	_, err := e.call(t, "probe", "p", "put-then-fail", "lost1")
	wantCode(t, err, actor.CodeHandlerError)
	_, err = e.call(t, "probe", "p", "put-then-panic", "lost2")
	wantCode(t, err, actor.CodeHandlerPanic)
	_, err = e.call(t, "probe", "p", "big-key", "")
	wantCode(t, err, actor.CodeLimitExceeded)
	_, err = e.call(t, "probe", "p", "custom-error", "")
	var ae *actor.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusTeapot || ae.Code != "teapot" {
		t.Fatalf("custom error: %v", err)
	}
	for _, k := range []string{"lost1", "lost2"} {
		if _, err := e.call(t, "probe", "p", "get", k); err == nil {
			t.Fatalf("key %s survived a failed request", k)
		}
	}
	if got := e.mustCall(t, "probe", "p", "get", "keep"); got != "1" {
		t.Fatalf("keep = %q", got)
	}
	// Other objects never noticed.
	if got := e.mustCall(t, "counter", "c", "incr", ""); got != "1" {
		t.Fatalf("counter: %s", got)
	}
}

func TestObjectKnowsItself(t *testing.T) {
	e := newEnv(t, nil, "", nil)
	id := actor.NameID("probe", "Ünïcode name.with*dots>")
	if got, want := e.mustCall(t, "probe", "Ünïcode name.with*dots>", "whoami", ""), "probe/"+string(id)+"/Ünïcode name.with*dots>"; got != want {
		t.Fatalf("whoami = %q, want %q", got, want)
	}
	uid := actor.NewUniqueID()
	resp, err := e.client.Namespace("probe").ByID(uid).Do(t.Context(), "whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(resp.Body), "probe/"+string(uid)+"/"; got != want {
		t.Fatalf("whoami by id = %q, want %q", got, want)
	}
}

func TestStateSurvivesRestartAndLostFiles(t *testing.T) {
	srv := natstest.Start(t)
	data := t.TempDir()
	e := newEnv(t, srv, data, nil)
	for i := 0; i < 5; i++ {
		e.mustCall(t, "counter", "durable", "incr", "")
	}
	closeRuntime(t, e.rt)

	// Same files: catch up (nothing to do).
	e2 := newEnv(t, srv, data, nil)
	if got := e2.mustCall(t, "counter", "durable", "incr", ""); got != "6" {
		t.Fatalf("after restart: %s, want 6", got)
	}
	closeRuntime(t, e2.rt)

	// Delete every object file: the journal rebuilds them.
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	e3 := newEnv(t, srv, data, nil)
	if got := e3.mustCall(t, "counter", "durable", "get", ""); got != "6" {
		t.Fatalf("after losing the files: %s, want 6", got)
	}
	files, _ := filepath.Glob(filepath.Join(data, "counter", "*.db"))
	if len(files) != 1 {
		t.Fatalf("object files: %v", files)
	}
}

func TestIdleEviction(t *testing.T) {
	e := newEnv(t, nil, "", func(c *actor.Config) { c.IdleTimeout = 20 * time.Millisecond })
	e.mustCall(t, "counter", "idle", "incr", "")
	deadline := time.Now().Add(10 * time.Second)
	for e.rt.ActiveObjects() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("object never evicted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := e.mustCall(t, "counter", "idle", "incr", ""); got != "2" {
		t.Fatalf("after reactivation: %s, want 2", got)
	}
}

func TestJournalUnavailable(t *testing.T) {
	e := newEnv(t, nil, "", nil)
	e.mustCall(t, "counter", "u", "incr", "")
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(t.Context(), "OPENDO_JOURNAL"); err != nil {
		t.Fatal(err)
	}
	_, err = e.call(t, "counter", "u", "incr", "")
	wantCode(t, err, actor.CodeUnavailable)
}

func TestDamagedFileIsRebuilt(t *testing.T) {
	srv := natstest.Start(t)
	data := t.TempDir()
	e := newEnv(t, srv, data, nil)
	for i := 0; i < 3; i++ {
		e.mustCall(t, "counter", "damaged", "incr", "")
	}
	closeRuntime(t, e.rt)
	path := filepath.Join(data, "counter", string(actor.NameID("counter", "damaged"))+".db")
	if err := os.WriteFile(path, []byte("this is not a database file, not at all, no"), 0o644); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, srv, data, nil)
	if got := e2.mustCall(t, "counter", "damaged", "get", ""); got != "3" {
		t.Fatalf("after damage: %s, want 3", got)
	}
}

// TestOpenErrorIsNotCorruption: a file that cannot be opened for a reason
// other than damage (here its WAL path is taken by a directory, so SQLite
// cannot open it; EMFILE, ENOMEM or a full disk fail the same way) is left
// alone: the activation fails with "unavailable", and once the cause is
// gone the object comes back with its data, without a rebuild.
func TestOpenErrorIsNotCorruption(t *testing.T) {
	srv := natstest.Start(t)
	data := t.TempDir()
	e := newEnv(t, srv, data, nil)
	for i := 0; i < 3; i++ {
		e.mustCall(t, "counter", "healthy", "incr", "")
	}
	closeRuntime(t, e.rt)
	path := filepath.Join(data, "counter", string(actor.NameID("counter", "healthy"))+".db")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(path + "-wal")
	if err := os.Mkdir(path+"-wal", 0o755); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, srv, data, nil)
	_, err = e2.call(t, "counter", "healthy", "get", "")
	wantCode(t, err, actor.CodeUnavailable)
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the object file is gone after an open error: %v", err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the object file changed after an open error")
	}
	if err := os.Remove(path + "-wal"); err != nil {
		t.Fatal(err)
	}
	if got := e2.mustCall(t, "counter", "healthy", "get", ""); got != "3" {
		t.Fatalf("after the cause is gone: %s, want 3", got)
	}
}

func TestMaxActiveEvictsUnderPressure(t *testing.T) {
	e := newEnv(t, nil, "", func(c *actor.Config) { c.MaxActive = 8 })
	for i := 0; i < 40; i++ {
		e.mustCall(t, "counter", "p"+strconv.Itoa(i), "incr", "")
		if n := e.rt.ActiveObjects(); n > 8 {
			t.Fatalf("%d active objects, cap 8", n)
		}
	}
	for i := 0; i < 40; i++ {
		if got := e.mustCall(t, "counter", "p"+strconv.Itoa(i), "incr", ""); got != "2" {
			t.Fatalf("p%d = %s after eviction, want 2", i, got)
		}
	}
}

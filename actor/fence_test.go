package actor

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/storage"
	"github.com/opendo/opendo/storage/sqlite"
)

func incrHandler(state *State) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		n, _, err := storage.GetInt(ctx, state.Storage(), "n")
		if err != nil {
			return nil, err
		}
		if req.Path == "incr" {
			n++
			if err := storage.PutInt(ctx, state.Storage(), "n", n); err != nil {
				return nil, err
			}
		}
		return Text(strconv.FormatInt(n, 10)), nil
	})
}

func startRuntime(t *testing.T, srv *natstest.Server) *Runtime {
	t.Helper()
	rt, err := New(Config{Conn: srv.Conn(t), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rt.solo = true // two runtimes on one object: the journal fence alone
	if err := rt.Register("counter", incrHandler); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rt.Close(ctx)
	})
	return rt
}

// TestFencingTwoRuntimes drives one object through two runtimes that share
// a NATS server: a runtime whose view of the journal is stale gets a
// conflict, stops serving the object, and serves it again only after
// catching up. No increment is lost or applied twice.
func TestFencingTwoRuntimes(t *testing.T) {
	srv := natstest.Start(t)
	a, b := startRuntime(t, srv), startRuntime(t, srv)
	nc := srv.Conn(t)
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	id := NameID("counter", "fenced")
	call := func(rt *Runtime, path string) (string, string) {
		t.Helper()
		m := &nats.Msg{Subject: rt.subj.Request("counter", string(id)), Reply: inbox, Header: nats.Header{HeaderPath: {path}}}
		rt.deliver("counter", id, "", m)
		r, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return string(r.Data), r.Header.Get(HeaderError)
	}
	steps := []struct {
		rt       *Runtime
		name     string
		want     string
		wantCode string
	}{
		{a, "a", "1", ""},
		{b, "b", "2", ""},
		{a, "a (stale)", "", CodeConflict},
		{a, "a (caught up)", "3", ""},
		{b, "b (stale)", "", CodeConflict},
		{b, "b (caught up)", "4", ""},
	}
	for _, s := range steps {
		body, code := call(s.rt, "incr")
		if code != s.wantCode || (s.wantCode == "" && body != s.want) {
			t.Fatalf("%s: got %q code %q, want %q code %q", s.name, body, code, s.want, s.wantCode)
		}
	}
	// (A read on a would be stale: fencing guards writes; keeping a single
	// owner per object is the job of ownership, not of the journal.)
	if body, _ := call(b, "get"); body != "4" {
		t.Fatalf("final value %q, want 4", body)
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{storage.ErrKeyTooLarge, http.StatusBadRequest, CodeLimitExceeded},
		{storage.ErrInvalidArgument, http.StatusBadRequest, CodeInvalidArgument},
		{storage.ErrTransactionTooLarge, http.StatusRequestEntityTooLarge, CodeTooLarge},
		{ErrUnknownNamespace, http.StatusNotFound, CodeUnknownNamespace},
		{ErrInvalidID, http.StatusBadRequest, CodeInvalidID},
		{context.Canceled, http.StatusInternalServerError, CodeHandlerError},
	}
	for _, tt := range tests {
		e := toError(tt.err)
		if e.Status != tt.status || e.Code != tt.code {
			t.Errorf("%v: got %d %s, want %d %s", tt.err, e.Status, e.Code, tt.status, tt.code)
		}
	}
}

// TestDirtyFileAdopted: a file with local commits that are all in the
// journal (a crash after the appends, before the sequence was recorded) is
// kept and caught up, not rebuilt.
func TestDirtyFileAdopted(t *testing.T) {
	srv := natstest.Start(t)
	a := startRuntime(t, srv)
	nc := srv.Conn(t)
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	id := NameID("counter", "adopt")
	call := func(rt *Runtime, path string) string {
		t.Helper()
		rt.deliver("counter", id, "", &nats.Msg{Subject: "x", Reply: inbox, Header: nats.Header{HeaderPath: {path}}})
		r, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return string(r.Data)
	}
	for i := 0; i < 5; i++ {
		call(a, "incr")
	}
	// Copy the object's files as a crash would leave them: dirty (the
	// sequence is recorded every markEvery entries or on close).
	src := a.objectPath("counter", id)
	dataB := t.TempDir()
	dst := filepath.Join(dataB, "counter", string(id)+".db")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(src + suffix)
		if err != nil && suffix == "" {
			t.Fatal(err)
		}
		if err == nil {
			if err := os.WriteFile(dst+suffix, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	db, err := sqlite.Open(t.Context(), dst, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, dirty := db.Seq(); !dirty {
		t.Fatal("copied file is clean; the test needs a dirty one")
	}
	db.Close()
	// A marker the journal does not know: it survives only if the file is
	// kept.
	raw, err := sql.Open("sqlite", dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO _cf_KV (key, value) VALUES (CAST('marker' AS BLOB), CAST('x' AS BLOB))`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	b, err := New(Config{Conn: srv.Conn(t), DataDir: dataB})
	if err != nil {
		t.Fatal(err)
	}
	b.solo = true
	if err := b.Register("counter", incrHandler); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := call(b, "get"); got != "5" {
		t.Fatalf("get = %s, want 5", got)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err = sqlite.Open(t.Context(), dst, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Begin(t.Context(), storage.TxContext{Time: time.Now()}, false); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := db.Storage().Get(t.Context(), "marker"); err != nil || !ok {
		t.Fatalf("marker: %v %v: the file was rebuilt, not adopted", ok, err)
	}
	_ = db.Rollback(t.Context())
}

package actor

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/storage"
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

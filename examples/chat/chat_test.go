package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/examples/chat"
	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/storage/sqlite"
)

// runtime starts an opendo runtime serving the chat namespace on nc, with
// its object files in dataDir, and returns a client.
func runtime(t *testing.T, nc *nats.Conn, dataDir string) (*actor.Runtime, *actor.Client) {
	t.Helper()
	rt, err := actor.New(actor.Config{Conn: nc, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Register(chat.Namespace, chat.New); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeRuntime(t, rt) }) // Close is idempotent
	c, err := actor.NewClient(nc, actor.ClientConfig{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return rt, c
}

func closeRuntime(t *testing.T, rt *actor.Runtime) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rt.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

// call sends body (JSON-encoded unless nil) to room's path and decodes the
// reply into out.
func call(t *testing.T, c *actor.Client, room, path string, body, out any) error {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := c.Namespace(chat.Namespace).Get(room).Do(t.Context(), path, b)
	if err != nil {
		return err
	}
	if resp.Status != http.StatusOK && resp.Status != 0 {
		return fmt.Errorf("status %d: %s", resp.Status, resp.Body)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			t.Fatalf("%s reply %q: %v", path, resp.Body, err)
		}
	}
	return nil
}

func mustCall(t *testing.T, c *actor.Client, room, path string, body, out any) {
	t.Helper()
	if err := call(t, c, room, path, body, out); err != nil {
		t.Fatalf("%s %s: %v", room, path, err)
	}
}

func count(t *testing.T, c *actor.Client, room string) int64 {
	t.Helper()
	var got struct{ Count int64 }
	mustCall(t, c, room, "count", nil, &got)
	return got.Count
}

func ids(p chat.Page) []int64 {
	out := []int64{}
	for _, m := range p.Messages {
		out = append(out, m.ID)
	}
	return out
}

func TestChat(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Conn(t)
	_, c := runtime(t, nc, t.TempDir())

	if n := count(t, c, "lobby"); n != 0 {
		t.Fatalf("count of a new room = %d", n)
	}
	var empty chat.Page
	mustCall(t, c, "lobby", "messages", nil, &empty)
	if len(empty.Messages) != 0 || empty.Next != nil {
		t.Fatalf("messages of a new room = %+v", empty)
	}

	var posted []chat.Message
	for i, u := range []string{"ann", "bob", "ann", "cy", "bob"} {
		var m chat.Message
		mustCall(t, c, "lobby", "post", map[string]string{"user": u, "text": fmt.Sprintf("message %d", i+1)}, &m)
		if m.ID != int64(i+1) || m.User != u || m.Text != fmt.Sprintf("message %d", i+1) {
			t.Fatalf("post %d = %+v", i, m)
		}
		if _, err := time.Parse(time.RFC3339Nano, m.Time); err != nil {
			t.Fatalf("post %d: time %q: %v", i, m.Time, err)
		}
		posted = append(posted, m)
	}
	if n := count(t, c, "lobby"); n != 5 {
		t.Fatalf("count = %d, want 5", n)
	}
	if n := count(t, c, "kitchen"); n != 0 {
		t.Fatalf("another room sees %d messages", n)
	}

	// Page backwards, newest first.
	var pages [][]int64
	var before *int64
	for {
		var p chat.Page
		mustCall(t, c, "lobby", "messages", map[string]any{"before": before, "limit": 2}, &p)
		pages = append(pages, ids(p))
		if p.Next == nil {
			break
		}
		before = p.Next
	}
	if want := [][]int64{{5, 4}, {3, 2}, {1}}; !reflect.DeepEqual(pages, want) {
		t.Fatalf("pages = %v, want %v", pages, want)
	}
	var all chat.Page
	mustCall(t, c, "lobby", "messages", map[string]any{}, &all)
	if len(all.Messages) != 5 || all.Messages[0] != posted[4] || all.Messages[4] != posted[0] || all.Next != nil {
		t.Fatalf("default page = %+v", all)
	}

	for _, bad := range []struct {
		path string
		body any
	}{
		{"post", map[string]string{"user": " ", "text": "hi"}},
		{"post", map[string]string{"user": "ann", "text": ""}},
		{"post", "not an object"},
		{"messages", map[string]int{"limit": 0}},
		{"messages", map[string]int{"limit": chat.MaxLimit + 1}},
	} {
		err := call(t, c, "lobby", bad.path, bad.body, nil)
		var e *actor.Error
		if !errors.As(err, &e) || e.Code != actor.CodeBadRequest {
			t.Errorf("%s %v = %v, want %s", bad.path, bad.body, err, actor.CodeBadRequest)
		}
	}
	if err := call(t, c, "lobby", "nope", nil, nil); err == nil {
		t.Error("unknown path succeeded")
	}
	if n := count(t, c, "lobby"); n != 5 {
		t.Fatalf("count after bad requests = %d, want 5", n)
	}
}

// TestChatRebuiltFromJournal serves a room from a second runtime with an
// empty data folder: the room is rebuilt from its journal, with the same
// ids, times and file content.
func TestChatRebuiltFromJournal(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Conn(t)
	first, second := t.TempDir(), t.TempDir()

	rt, c := runtime(t, nc, first)
	var want chat.Page
	for i := range 30 {
		mustCall(t, c, "r", "post", map[string]string{"user": "u", "text": fmt.Sprint(i)}, nil)
	}
	mustCall(t, c, "r", "messages", nil, &want)
	closeRuntime(t, rt)

	rt2, c2 := runtime(t, nc, second)
	var got chat.Page
	mustCall(t, c2, "r", "messages", nil, &got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rebuilt room:\n got %+v\nwant %+v", got, want)
	}
	closeRuntime(t, rt2)

	hash := func(dir string) string {
		files, err := filepath.Glob(filepath.Join(dir, chat.Namespace, "*.db"))
		if err != nil || len(files) != 1 {
			t.Fatalf("object files in %s: %v %v", dir, files, err)
		}
		db, err := sqlite.Open(t.Context(), files[0], sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		h, err := db.ContentHash(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if a, b := hash(first), hash(second); a != b {
		t.Errorf("content hash of the original %s, of the rebuilt file %s", a, b)
	}
}

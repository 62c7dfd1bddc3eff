package actor_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/examples/counter"
	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/journal"
)

// TestJournalStreams: a runtime with JournalStreams 3 journals each object
// in its partition's stream; runtimes started later take the recorded
// layout (JournalStreams 0) and find every object's state, and a runtime
// asking for another layout does not start.
func TestJournalStreams(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Conn(t)
	start := func(streams int) (*actor.Runtime, error) {
		rt, err := actor.New(actor.Config{Conn: nc, DataDir: t.TempDir(), JournalStreams: streams})
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Register(counter.Namespace, counter.New); err != nil {
			t.Fatal(err)
		}
		return rt, rt.Start(t.Context())
	}
	rt, err := start(3)
	if err != nil {
		t.Fatal(err)
	}
	c, err := actor.NewClient(nc, actor.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ns := c.Namespace(counter.Namespace)
	const objects = 12
	for i := range objects {
		for range i + 1 {
			if _, err := ns.Get("c"+strconv.Itoa(i)).Do(t.Context(), "incr", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	js := srv.JetStream(t)
	var total uint64
	for _, name := range []string{"OPENDO_JOURNAL", "OPENDO_JOURNAL_1", "OPENDO_JOURNAL_2"} {
		s, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if s.CachedInfo().State.Msgs == 0 {
			t.Errorf("stream %s holds no entry", name)
		}
		total += s.CachedInfo().State.Msgs
	}
	if want := uint64(objects * (objects + 1) / 2); total < want {
		t.Errorf("%d entries in the journal's streams, want at least %d", total, want)
	}
	closeRuntime(t, rt)

	// Another node (a fresh data directory: every object replays from its
	// stream) with the recorded layout.
	rt, err = start(0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range objects {
		r, err := ns.Get("c"+strconv.Itoa(i)).Do(t.Context(), "get", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(r.Body), strconv.Itoa(i+1); got != want {
			t.Errorf("c%d = %s, want %s", i, got, want)
		}
	}
	closeRuntime(t, rt)

	rt, err = start(2)
	if !errors.Is(err, journal.ErrLayout) {
		t.Fatalf("start with 2 streams over a journal of 3: %v, want journal.ErrLayout", err)
	}
	_ = rt.Close(t.Context())
}

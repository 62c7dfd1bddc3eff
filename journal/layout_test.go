package journal_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/journal"
)

// TestSpreadOverStreams: with Streams 3, partition p's objects are journaled
// in stream p mod 3 (OPENDO_JOURNAL, OPENDO_JOURNAL_1, OPENDO_JOURNAL_2),
// and every read, fence, count and purge finds each object's stream.
func TestSpreadOverStreams(t *testing.T) {
	srv := natstest.Start(t)
	j, js := openJournal(t, srv, journal.Config{Streams: 3, Partitions: 8})
	if n := len(j.Streams()); n != 3 {
		t.Fatalf("%d streams, want 3", n)
	}
	want := map[string]uint64{}
	for p := range 8 {
		subj := j.Subject(p, "ns", "obj")
		s1, err := j.Append(t.Context(), subj, 0, entry("k", "a"))
		if err != nil {
			t.Fatalf("append %s: %v", subj, err)
		}
		if _, err := j.Append(t.Context(), subj, s1, entry("k", "b")); err != nil {
			t.Fatalf("append %s: %v", subj, err)
		}
		// The fence holds in each stream.
		if _, err := j.Append(t.Context(), subj, s1, entry("k", "c")); !errors.Is(err, journal.ErrConflict) {
			t.Fatalf("stale append to %s: %v, want a conflict", subj, err)
		}
		want[subj] = 2
		name := j.StreamOf(subj).CachedInfo().Config.Name
		if wantName := []string{"OPENDO_JOURNAL", "OPENDO_JOURNAL_1", "OPENDO_JOURNAL_2"}[p%3]; name != wantName {
			t.Errorf("partition %d in %s, want %s", p, name, wantName)
		}
		if got := readAll(t, j, subj, 0, 0); len(got) != 2 || got[1].value != "b" {
			t.Errorf("read %s: %v", subj, got)
		}
		if last, err := j.LastSeq(t.Context(), subj); err != nil || last <= s1 {
			t.Errorf("last of %s: %d, %v", subj, last, err)
		}
	}
	got, err := j.Subjects(t.Context(), "")
	if err != nil || !equalMaps(got, want) {
		t.Fatalf("subjects: %v, %v; want %v", got, err, want)
	}
	for i, s := range j.Streams() {
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		// Partitions i, i+3, i+6 (< 8): 2 entries each.
		var n uint64
		for p := i; p < 8; p += 3 {
			n += 2
		}
		if info.State.Msgs != n {
			t.Errorf("stream %s holds %d entries, want %d", info.Config.Name, info.State.Msgs, n)
		}
	}

	// Purge reaches the object's own stream.
	subj := j.Subject(4, "ns", "obj")
	last, _ := j.LastSeq(t.Context(), subj)
	if _, err := j.Purge(t.Context(), subj, last, journal.Retention{}, time.Now()); err != nil {
		t.Fatalf("purge %s: %v", subj, err)
	}
	if got := readAll(t, j, subj, 0, 0); len(got) != 1 {
		t.Errorf("after purge, %s holds %v, want its last entry", subj, got)
	}

	// Reopened with the recorded layout (Streams and Partitions 0), as the
	// journal tools do; another layout is refused.
	j2, err := journal.Open(t.Context(), js, journal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(j2.Streams()); n != 3 {
		t.Fatalf("reopened: %d streams, want 3", n)
	}
	if got := readAll(t, j2, j.Subject(5, "ns", "obj"), 0, 0); len(got) != 2 {
		t.Errorf("reopened: read %v", got)
	}
	for _, cfg := range []journal.Config{{Streams: 1}, {Streams: 4, Partitions: 8}, {Streams: 3, Partitions: 64}} {
		if _, err := journal.Open(t.Context(), js, cfg); !errors.Is(err, journal.ErrLayout) {
			t.Errorf("open with %d streams for %d partitions: %v, want ErrLayout", cfg.Streams, cfg.Partitions, err)
		}
	}
}

// TestLayoutOfExistingJournal: a journal of one stream created before
// layouts existed keeps working as it is (read where it is); it cannot be
// spread once it holds entries, and may be while it holds none.
func TestLayoutOfExistingJournal(t *testing.T) {
	srv := natstest.Start(t)
	_, js := openJournal(t, srv, journal.Config{})
	if _, err := journal.Open(t.Context(), js, journal.Config{Streams: 2}); err != nil {
		t.Fatalf("spreading an empty journal: %v", err)
	}
	j, err := journal.Open(t.Context(), js, journal.Config{})
	if err != nil || len(j.Streams()) != 2 {
		t.Fatalf("reopened after spreading: %v", err)
	}

	srv2 := natstest.Start(t)
	j, js = openJournal(t, srv2, journal.Config{})
	subj := j.Subject(1, "ns", "obj")
	if _, err := j.Append(t.Context(), subj, 0, entry("k", "v")); err != nil {
		t.Fatal(err)
	}
	if _, err := journal.Open(t.Context(), js, journal.Config{Streams: 2}); !errors.Is(err, journal.ErrLayout) {
		t.Fatalf("spreading a journal with entries: %v, want ErrLayout", err)
	}
	j, err = journal.Open(t.Context(), js, journal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, j, subj, 0, 0); len(got) != 1 {
		t.Fatalf("existing journal: %v", got)
	}
}

// TestBalanceLeaders: on a 3-server cluster, the leaders of a journal
// spread over 3 streams end on 3 distinct servers.
func TestBalanceLeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-server cluster")
	}
	cl := natstest.StartCluster(t, 3)
	cl.WaitJetStream(t)
	js, err := jetstream.New(cl.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(t.Context(), js, journal.Config{Streams: 3, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	cl.WaitJetStream(t, j.StreamNames()...)
	leaders, err := journal.BalanceLeaders(t.Context(), js, j.StreamNames())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range leaders {
		seen[l] = true
	}
	if len(seen) != 3 || seen[""] {
		t.Fatalf("leaders %v, want 3 distinct servers", leaders)
	}
	// Appends go on in every stream.
	for p := range 3 {
		if _, err := j.Append(t.Context(), j.Subject(p, "ns", "o"), 0, entry("k", "v")); err != nil {
			t.Errorf("append in stream %d: %v", p, err)
		}
	}
}

package journal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
)

func openJournal(t testing.TB, srv *natstest.Server, cfg journal.Config) (*journal.Journal, jetstream.JetStream) {
	t.Helper()
	js := srv.JetStream(t)
	j, err := journal.Open(t.Context(), js, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return j, js
}

// entry returns an entry with one put of value under key.
func entry(key, value string) *journal.Entry {
	return &journal.Entry{
		CommitID: ulid.Make(),
		Time:     time.Now(),
		Txns: []storage.Txn{{
			RequestID: "req-" + key,
			Context:   storage.TxContext{Time: time.Now(), Seed: 7},
			Mutations: []storage.Mutation{{Op: storage.OpPut, Key: key, Value: []byte(value)}},
		}},
	}
}

// appended is an entry as stored: its sequence and its value.
type appended struct {
	seq   uint64
	value string
}

func (a appended) String() string { return fmt.Sprintf("%d:%s", a.seq, a.value) }

// readAll reads subject's entries in (after, upto].
func readAll(t testing.TB, j *journal.Journal, subject string, after, upto uint64) []appended {
	t.Helper()
	var got []appended
	err := j.Read(t.Context(), subject, after, upto, func(seq uint64, e *journal.Entry) error {
		got = append(got, appended{seq, string(e.Txns[0].Mutations[0].Value)})
		return nil
	})
	if err != nil {
		t.Fatalf("read %s (%d, %d]: %v", subject, after, upto, err)
	}
	return got
}

func TestAppendReadManySubjects(t *testing.T) {
	srv := natstest.Start(t)
	j, _ := openJournal(t, srv, journal.Config{})
	subjects := []string{j.Subject(0, "counter", "a"), j.Subject(0, "counter", "b"), j.Subject(63, "chat", "c")}
	want := map[string][]appended{}
	last := map[string]uint64{}
	for i := range 60 {
		subj := subjects[i%len(subjects)]
		v := fmt.Sprintf("v%d", i)
		seq, err := j.Append(t.Context(), subj, last[subj], entry("k", v))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if seq <= last[subj] {
			t.Fatalf("append %d: seq %d after %d", i, seq, last[subj])
		}
		last[subj] = seq
		want[subj] = append(want[subj], appended{seq, v})
	}
	for _, subj := range subjects {
		if got := readAll(t, j, subj, 0, 0); !slices.Equal(got, want[subj]) {
			t.Errorf("read %s\ngot  %v\nwant %v", subj, got, want[subj])
		}
		got, err := j.LastSeq(t.Context(), subj)
		if err != nil || got != last[subj] {
			t.Errorf("LastSeq(%s) = %d, %v; want %d", subj, got, err, last[subj])
		}
	}
	counts, err := j.Subjects(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if wantCounts := map[string]uint64{subjects[0]: 20, subjects[1]: 20, subjects[2]: 20}; !equalMaps(counts, wantCounts) {
		t.Errorf("Subjects = %v, want %v", counts, wantCounts)
	}
	counts, err = j.Subjects(t.Context(), "opendo.journal.63.>")
	if err != nil || !equalMaps(counts, map[string]uint64{subjects[2]: 20}) {
		t.Errorf("Subjects(partition 63) = %v, %v", counts, err)
	}
}

func equalMaps(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestReadRanges(t *testing.T) {
	srv := natstest.Start(t)
	j, _ := openJournal(t, srv, journal.Config{})
	subj, other := j.Subject(1, "ns", "obj"), j.Subject(1, "ns", "other")
	var all []appended
	var last, otherLast uint64
	for i := range 10 {
		seq, err := j.Append(t.Context(), subj, last, entry("k", fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		last = seq
		all = append(all, appended{seq, fmt.Sprint(i)})
		// Interleave another subject so that the object's sequences have gaps.
		if otherLast, err = j.Append(t.Context(), other, otherLast, entry("x", "noise")); err != nil {
			t.Fatal(err)
		}
	}
	seq := func(i int) uint64 { return all[i].seq }
	tests := []struct {
		name        string
		after, upto uint64
		want        []appended
	}{
		{"all", 0, 0, all},
		{"after first", seq(0), 0, all[1:]},
		{"up to fifth", 0, seq(4), all[:5]},
		{"middle", seq(1), seq(4), all[2:5]},
		{"upto in a gap", seq(1), seq(4) + 1, all[2:5]},
		{"after in a gap", seq(1) + 1, seq(4), all[2:5]},
		{"one", seq(6), seq(7), all[7:8]},
		{"upto equals after", seq(3), seq(3), nil},
		{"upto before after", seq(5), seq(3), nil},
		{"after the last", last, 0, nil},
		{"upto past the last", seq(8), last + 100, all[9:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readAll(t, j, subj, tt.after, tt.upto); !slices.Equal(got, tt.want) {
				t.Errorf("Read(%d, %d)\ngot  %v\nwant %v", tt.after, tt.upto, got, tt.want)
			}
		})
	}
	t.Run("empty subject", func(t *testing.T) {
		if got := readAll(t, j, j.Subject(1, "ns", "nobody"), 0, 0); len(got) != 0 {
			t.Errorf("got %v", got)
		}
	})
	t.Run("fn error stops", func(t *testing.T) {
		stop := errors.New("stop")
		var n int
		err := j.Read(t.Context(), subj, 0, 0, func(uint64, *journal.Entry) error {
			n++
			return stop
		})
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("got %v after %d entries, want stop after 1", err, n)
		}
	})
}

// TestReadManyBatches reads more entries than one direct get batch holds.
func TestReadManyBatches(t *testing.T) {
	srv := natstest.Start(t)
	j, js := openJournal(t, srv, journal.Config{})
	subj := j.Subject(0, "ns", "big")
	const n = 2500
	futures := make([]jetstream.PubAckFuture, n)
	for i := range futures {
		b, err := entry("k", fmt.Sprint(i)).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if futures[i], err = js.PublishAsync(subj, b); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishing timed out")
	}
	got := readAll(t, j, subj, 0, 0)
	if len(got) != n {
		t.Fatalf("read %d entries, want %d", len(got), n)
	}
	for i, a := range got {
		if a.seq != uint64(i+1) || a.value != fmt.Sprint(i) {
			t.Fatalf("entry %d = %v", i, a)
		}
	}
	if got := readAll(t, j, subj, 1000, 2200); len(got) != 1200 || got[0].seq != 1001 || got[1199].seq != 2200 {
		t.Fatalf("read (1000, 2200]: %d entries from %v to %v", len(got), got[0], got[len(got)-1])
	}
}

func TestFencing(t *testing.T) {
	srv := natstest.Start(t)
	j, _ := openJournal(t, srv, journal.Config{})
	subj := j.Subject(3, "counter", "x")

	// Two owners both believe they own the empty subject.
	first, err := j.Append(t.Context(), subj, 0, entry("k", "first"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Append(t.Context(), subj, 0, entry("k", "stale"))
	var conflict *journal.ConflictError
	if !errors.Is(err, journal.ErrConflict) || !errors.As(err, &conflict) {
		t.Fatalf("stale append: got %v, want ErrConflict", err)
	}
	if want := (journal.ConflictError{Subject: subj, Expected: 0, Actual: first}); *conflict != want {
		t.Errorf("conflict = %+v, want %+v", *conflict, want)
	}
	// The winner goes on; a stale expectation in the middle fails too.
	second, err := j.Append(t.Context(), subj, first, entry("k", "second"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(t.Context(), subj, first, entry("k", "stale2")); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("stale append after %d: got %v", first, err)
	}
	want := []appended{{first, "first"}, {second, "second"}}
	if got := readAll(t, j, subj, 0, 0); !slices.Equal(got, want) {
		t.Fatalf("journal holds %v, want %v", got, want)
	}
}

// TestFencingRace has many writers race for the same position: exactly one
// wins each round.
func TestFencingRace(t *testing.T) {
	srv := natstest.Start(t)
	j, _ := openJournal(t, srv, journal.Config{})
	subj := j.Subject(0, "ns", "race")
	var last uint64
	for round := range 5 {
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []uint64
		)
		for w := range 8 {
			wg.Go(func() {
				seq, err := j.Append(t.Context(), subj, last, entry("k", fmt.Sprintf("r%dw%d", round, w)))
				switch {
				case err == nil:
					mu.Lock()
					winners = append(winners, seq)
					mu.Unlock()
				case !errors.Is(err, journal.ErrConflict):
					t.Errorf("round %d writer %d: %v", round, w, err)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("round %d: %d winners, want 1", round, len(winners))
		}
		last = winners[0]
	}
	if got := readAll(t, j, subj, 0, 0); len(got) != 5 {
		t.Fatalf("journal holds %v, want 5 entries", got)
	}
}

// TestAppendRetry: appending the same entry again (after an ambiguous
// failure) returns its sequence and writes nothing.
func TestAppendRetry(t *testing.T) {
	srv := natstest.Start(t)
	j, _ := openJournal(t, srv, journal.Config{})
	subj := j.Subject(0, "ns", "retry")
	e := entry("k", "once")
	first, err := j.Append(t.Context(), subj, 0, e)
	if err != nil {
		t.Fatal(err)
	}
	again, err := j.Append(t.Context(), subj, 0, e)
	if err != nil || again != first {
		t.Fatalf("retry = %d, %v; want %d", again, err, first)
	}
	if got := readAll(t, j, subj, 0, 0); len(got) != 1 {
		t.Fatalf("journal holds %v, want one entry", got)
	}
}

func TestLastSeqEmpty(t *testing.T) {
	srv := natstest.Start(t)
	j, _ := openJournal(t, srv, journal.Config{})
	if seq, err := j.LastSeq(t.Context(), j.Subject(0, "ns", "new")); seq != 0 || err != nil {
		t.Fatalf("LastSeq = %d, %v; want 0, nil", seq, err)
	}
}

func TestTooLarge(t *testing.T) {
	srv := natstest.Start(t)
	j, _ := openJournal(t, srv, journal.Config{})
	subj := j.Subject(0, "ns", "big")
	max := j.MaxEntrySize()
	if max < 1<<20-200 {
		t.Fatalf("MaxEntrySize = %d, want about 1 MiB", max)
	}
	// sized returns an entry whose encoding is exactly n bytes.
	sized := func(n int) *journal.Entry {
		e := entry("k", "")
		b, _ := e.MarshalBinary()
		e.Txns[0].Mutations[0].Value = bytes.Repeat([]byte{'v'}, n-len(b)-2) // 2 more bytes of length
		if b, _ := e.MarshalBinary(); len(b) != n {
			t.Fatalf("entry of %d bytes, want %d", len(b), n)
		}
		return e
	}
	_, err := j.Append(t.Context(), subj, 0, sized(max+1))
	if !errors.Is(err, journal.ErrTooLarge) {
		t.Fatalf("append of %d bytes: got %v, want ErrTooLarge", max+1, err)
	}
	if seq, _ := j.LastSeq(t.Context(), subj); seq != 0 {
		t.Fatalf("oversize entry was stored at %d", seq)
	}
	// The largest entry fits, even with the longest possible headers.
	if _, err := j.Append(t.Context(), subj, 0, sized(max)); err != nil {
		t.Fatalf("append of %d bytes: %v", max, err)
	}
}

func TestRestartKeepsEntries(t *testing.T) {
	srv := natstest.Start(t, natstest.WithSyncAlways())
	j, js := openJournal(t, srv, journal.Config{})
	subj := j.Subject(0, "ns", "durable")
	var want []appended
	var last uint64
	for i := range 20 {
		seq, err := j.Append(t.Context(), subj, last, entry("k", fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		last = seq
		want = append(want, appended{seq, fmt.Sprint(i)})
	}
	srv.Restart(t)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Opening again is idempotent; the old connection has reconnected.
	j, err := journal.Open(ctx, js, journal.Config{})
	if err != nil {
		t.Fatalf("open after restart: %v", err)
	}
	if got := readAll(t, j, subj, 0, 0); !slices.Equal(got, want) {
		t.Fatalf("after restart\ngot  %v\nwant %v", got, want)
	}
	if _, err := j.Append(ctx, subj, last, entry("k", "after")); err != nil {
		t.Fatalf("append after restart: %v", err)
	}
}

func TestReadCorrupt(t *testing.T) {
	srv := natstest.Start(t)
	j, js := openJournal(t, srv, journal.Config{})
	subj := j.Subject(0, "ns", "bad")
	good, err := j.Append(t.Context(), subj, 0, entry("k", "good"))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(t.Context(), subj, []byte("OJ\x01\x00 definitely not an entry"))
	if err != nil {
		t.Fatal(err)
	}
	var delivered []uint64
	err = j.Read(t.Context(), subj, 0, 0, func(seq uint64, _ *journal.Entry) error {
		delivered = append(delivered, seq)
		return nil
	})
	if !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	if msg := err.Error(); !strings.Contains(msg, subj) || !strings.Contains(msg, fmt.Sprintf("seq %d", ack.Sequence)) {
		t.Errorf("error %q does not name subject and sequence %d", msg, ack.Sequence)
	}
	if !slices.Equal(delivered, []uint64{good}) {
		t.Errorf("delivered %v before the corrupt entry, want [%d]", delivered, good)
	}
	// An empty message is corrupt too.
	if _, err := js.Publish(t.Context(), subj, nil); err != nil {
		t.Fatal(err)
	}
	if err := j.Read(t.Context(), subj, ack.Sequence, 0, func(uint64, *journal.Entry) error { return nil }); !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("empty message: got %v, want ErrCorrupt", err)
	}
}

func TestOpenExistingStream(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	// Someone created the stream with settings that would lose entries, and
	// another subject (say, alarms) that must be kept.
	_, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name:              "J",
		Subjects:          []string{"app.alarms.>"},
		Storage:           jetstream.FileStorage,
		MaxAge:            time.Hour,
		MaxMsgsPerSubject: 10,
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(t.Context(), js, journal.Config{Prefix: "app", Stream: "J", MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	got := j.Stream().CachedInfo().Config
	if !slices.Equal(got.Subjects, []string{"app.alarms.>", "app.journal.>"}) || got.MaxAge != 0 ||
		got.MaxMsgsPerSubject != -1 || got.Discard != jetstream.DiscardNew || !got.DenyDelete ||
		!got.AllowDirect || got.MaxBytes != 1<<30 {
		t.Errorf("stream config after Open: %+v", got)
	}
	if s := j.Subject(5, "ns", "id"); s != "app.journal.5.ns.id" {
		t.Errorf("Subject = %q", s)
	}
	// A stream covering the journal's subjects already is left as it is.
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "ALL", Subjects: []string{"all.>"}}); err != nil {
		t.Fatal(err)
	}
	j, err = journal.Open(t.Context(), js, journal.Config{Prefix: "all", Stream: "ALL"})
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Stream().CachedInfo().Config.Subjects; !slices.Equal(got, []string{"all.>"}) {
		t.Errorf("subjects = %v, want [all.>]", got)
	}
	// A memory stream cannot hold a journal.
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "MEM", Subjects: []string{"mem.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := journal.Open(t.Context(), js, journal.Config{Prefix: "mem", Stream: "MEM"}); !errors.Is(err, journal.ErrInvalidArgument) {
		t.Errorf("open on a memory stream: got %v, want ErrInvalidArgument", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	for name, cfg := range map[string]journal.Config{
		"wildcard prefix": {Prefix: "a.*"},
		"empty token":     {Prefix: "a..b"},
		"dotted stream":   {Stream: "A.B"},
		"replicas":        {Replicas: -1},
		"max bytes":       {MaxBytes: -5},
	} {
		if _, err := journal.Open(t.Context(), js, cfg); !errors.Is(err, journal.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
		}
	}
	j, err := journal.Open(t.Context(), js, journal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"opendo.journal.>", "opendo.journal.0.ns.*", "other.journal.0.ns.id", "opendo.journal.0..id", ""} {
		if _, err := j.Append(t.Context(), subj, 0, entry("k", "v")); !errors.Is(err, journal.ErrInvalidArgument) {
			t.Errorf("Append(%q): got %v, want ErrInvalidArgument", subj, err)
		}
		if err := j.Read(t.Context(), subj, 0, 0, nil); !errors.Is(err, journal.ErrInvalidArgument) {
			t.Errorf("Read(%q): got %v, want ErrInvalidArgument", subj, err)
		}
	}
	if _, err := j.Append(t.Context(), j.Subject(0, "ns", "id"), 0, &journal.Entry{}); !errors.Is(err, journal.ErrInvalidEntry) {
		t.Errorf("append of an empty entry: got %v, want ErrInvalidEntry", err)
	}
}

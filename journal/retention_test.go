package journal_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/journal"
)

// appendN appends n entries with values "v0".."v<n-1>" to subject, each
// followed by noise entries on another subject (so that the subject's
// sequences are sparse), and returns their sequences.
func appendN(t testing.TB, j *journal.Journal, subject, noise string, n int) []uint64 {
	t.Helper()
	ctx := t.Context()
	last, err := j.LastSeq(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	noiseLast, err := j.LastSeq(ctx, noise)
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([]uint64, n)
	for i := range n {
		if last, err = j.Append(ctx, subject, last, entry("k", fmt.Sprint("v", i))); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		seqs[i] = last
		for range i % 3 {
			if noiseLast, err = j.Append(ctx, noise, noiseLast, entry("noise", "x")); err != nil {
				t.Fatalf("append noise: %v", err)
			}
		}
	}
	return seqs
}

// remaining returns the indexes (into seqs) of subject's entries left.
func remaining(t testing.TB, j *journal.Journal, subject string, seqs []uint64) []int {
	t.Helper()
	var left []int
	for _, a := range readAll(t, j, subject, 0, 0) {
		i := slices.Index(seqs, a.seq)
		if i < 0 || a.value != fmt.Sprint("v", i) {
			t.Fatalf("read %v, not one of the entries appended", a)
		}
		left = append(left, i)
	}
	return left
}

func span(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestPurgeCoveredAndKeepEntries(t *testing.T) {
	srv := natstest.Start(t)
	j, _ := openJournal(t, srv, journal.Config{})
	ctx := t.Context()
	noise := j.Subject(1, "noise", "n")
	tests := []struct {
		name    string
		covered int // index of the covered entry; -1: 0, 99: math.MaxUint64
		plusOne bool
		r       journal.Retention
		want    []int
	}{
		{"nothing covered", -1, false, journal.Retention{}, span(0, 9)},
		{"first covered", 0, false, journal.Retention{}, span(1, 9)},
		{"half covered", 4, false, journal.Retention{}, span(5, 9)},
		{"covered between entries", 4, true, journal.Retention{}, span(5, 9)},
		{"all covered keeps the last", 9, false, journal.Retention{}, span(9, 9)},
		{"covered beyond the last", 99, false, journal.Retention{}, span(9, 9)},
		{"keep 1", 9, false, journal.Retention{KeepEntries: 1}, span(9, 9)},
		{"keep 3", 9, false, journal.Retention{KeepEntries: 3}, span(7, 9)},
		{"keep 9", 9, false, journal.Retention{KeepEntries: 9}, span(1, 9)},
		{"keep all", 9, false, journal.Retention{KeepEntries: 10}, span(0, 9)},
		{"keep more than all", 9, false, journal.Retention{KeepEntries: 1000}, span(0, 9)},
		{"keep fewer than uncovered", 4, false, journal.Retention{KeepEntries: 3}, span(5, 9)},
		{"keep as many as uncovered", 4, false, journal.Retention{KeepEntries: 5}, span(5, 9)},
		{"keep more than uncovered", 4, false, journal.Retention{KeepEntries: 7}, span(3, 9)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject := j.Subject(0, "purge", fmt.Sprint("o", i))
			seqs := appendN(t, j, subject, noise, 10)
			noiseBefore, err := j.Subjects(ctx, noise)
			if err != nil {
				t.Fatal(err)
			}
			var covered uint64
			switch tt.covered {
			case -1:
			case 99:
				covered = math.MaxUint64
			default:
				covered = seqs[tt.covered]
			}
			if tt.plusOne {
				covered++
			}
			n, err := j.Purge(ctx, subject, covered, tt.r, time.Now())
			if err != nil {
				t.Fatalf("purge: %v", err)
			}
			if got := remaining(t, j, subject, seqs); !slices.Equal(got, tt.want) {
				t.Errorf("left %v, want %v", got, tt.want)
			}
			if want := uint64(10 - len(tt.want)); n != want {
				t.Errorf("purged %d, want %d", n, want)
			}
			if last, err := j.LastSeq(ctx, subject); err != nil || last != seqs[9] {
				t.Errorf("LastSeq = %d, %v; want %d", last, err, seqs[9])
			}
			if first, err := j.FirstSeq(ctx, subject); err != nil || first != seqs[tt.want[0]] {
				t.Errorf("FirstSeq = %d, %v; want %d", first, err, seqs[tt.want[0]])
			}
			if noiseAfter, err := j.Subjects(ctx, noise); err != nil || !equalMaps(noiseAfter, noiseBefore) {
				t.Errorf("other subject: %v, %v; want %v", noiseAfter, err, noiseBefore)
			}
			if n, err := j.Purge(ctx, subject, covered, tt.r, time.Now()); err != nil || n != 0 {
				t.Errorf("second purge = %d, %v; want 0, nil", n, err)
			}
		})
	}
}

// TestPurgeKeepEntriesSearch checks the binary search for the k-th newest
// entry on a longer, sparse subject.
func TestPurgeKeepEntriesSearch(t *testing.T) {
	srv := natstest.Start(t)
	j, _ := openJournal(t, srv, journal.Config{})
	ctx := t.Context()
	const n, covered = 300, 199 // 100 entries after the covered one
	for _, k := range []uint64{2, 50, 100, 101, 150, 257, 299, 300, 301} {
		t.Run(fmt.Sprint("keep", k), func(t *testing.T) {
			subject := j.Subject(0, "search", fmt.Sprint("k", k))
			seqs := appendN(t, j, subject, j.Subject(1, "noise", fmt.Sprint("k", k)), n)
			if _, err := j.Purge(ctx, subject, seqs[covered], journal.Retention{KeepEntries: k}, time.Now()); err != nil {
				t.Fatal(err)
			}
			want := span(covered+1, n-1)
			if k > uint64(len(want)) {
				want = span(n-int(min(k, n)), n-1)
			}
			if got := remaining(t, j, subject, seqs); !slices.Equal(got, want) {
				t.Errorf("left %d entries from %d, want %d from %d", len(got), got[0], len(want), want[0])
			}
		})
	}
}

func TestPurgeKeepFor(t *testing.T) {
	srv := natstest.Start(t)
	j, js := openJournal(t, srv, journal.Config{})
	ctx := t.Context()
	stream, err := js.Stream(ctx, journal.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	const hour = time.Hour
	tests := []struct {
		name string
		at   int           // now is the time of entry at, plus offset
		plus time.Duration // offset
		r    journal.Retention
		want []int
	}{
		{"everything old", 9, 100 * 365 * 24 * hour, journal.Retention{KeepFor: hour}, span(9, 9)},
		{"everything new", 0, 0, journal.Retention{KeepFor: hour}, span(0, 9)},
		{"newer than the sixth", 6, hour, journal.Retention{KeepFor: hour}, span(6, 9)},
		{"just after the sixth", 6, hour + time.Nanosecond, journal.Retention{KeepFor: hour}, span(7, 9)},
		{"zero KeepFor", 0, 0, journal.Retention{}, span(9, 9)},
		{"more by count", 6, hour, journal.Retention{KeepFor: hour, KeepEntries: 6}, span(4, 9)},
		{"more by age", 6, hour, journal.Retention{KeepFor: hour, KeepEntries: 2}, span(6, 9)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject := j.Subject(0, "age", fmt.Sprint("o", i))
			seqs := appendN(t, j, subject, j.Subject(1, "noise", "n"), 10)
			var times []time.Time
			for _, seq := range seqs {
				m, err := stream.GetMsg(ctx, seq)
				if err != nil {
					t.Fatal(err)
				}
				if len(times) > 0 && !m.Time.After(times[len(times)-1]) {
					t.Fatalf("stream timestamps not increasing: %v then %v", times[len(times)-1], m.Time)
				}
				times = append(times, m.Time)
			}
			now := times[tt.at].Add(tt.plus)
			n, err := j.Purge(ctx, subject, seqs[9], tt.r, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := remaining(t, j, subject, seqs); !slices.Equal(got, tt.want) {
				t.Errorf("left %v, want %v", got, tt.want)
			}
			if want := uint64(10 - len(tt.want)); n != want {
				t.Errorf("purged %d, want %d", n, want)
			}
		})
	}
}

// TestPurgeKeepsFencing: the last entry survives every purge, so the
// subject's last sequence, fencing and append retries work on, also after
// a server restart.
func TestPurgeKeepsFencing(t *testing.T) {
	srv := natstest.Start(t)
	j, _ := openJournal(t, srv, journal.Config{})
	ctx := t.Context()
	subject := j.Subject(0, "fence", "a")
	seqs := appendN(t, j, subject, j.Subject(0, "fence", "noise"), 5)
	last := seqs[4]
	if n, err := j.Purge(ctx, subject, math.MaxUint64, journal.Retention{}, time.Now().Add(time.Hour)); err != nil || n != 4 {
		t.Fatalf("purge = %d, %v; want 4, nil", n, err)
	}
	srv.Restart(t)
	for _, step := range []string{"after purge", "after restart"} {
		if got, err := j.LastSeq(ctx, subject); err != nil || got != last {
			t.Fatalf("%s: LastSeq = %d, %v; want %d", step, got, err, last)
		}
		if got := readAll(t, j, subject, 0, 0); len(got) != 1 || got[0].seq != last {
			t.Fatalf("%s: read %v, want only %d", step, got, last)
		}
		if got := readAll(t, j, subject, 0, seqs[2]); len(got) != 0 {
			t.Fatalf("%s: read up to a purged entry: %v, want nothing", step, got)
		}
	}

	var cerr *journal.ConflictError
	for _, stale := range []uint64{0, seqs[0], seqs[3]} {
		_, err := j.Append(ctx, subject, stale, entry("k", "stale"))
		if !errors.As(err, &cerr) || cerr.Actual != last {
			t.Errorf("append expecting %d: %v, want a conflict with actual %d", stale, err, last)
		}
	}
	e := entry("k", "next")
	seq, err := j.Append(ctx, subject, last, e)
	if err != nil {
		t.Fatalf("append after purge: %v", err)
	}
	if again, err := j.Append(ctx, subject, last, e); err != nil || again != seq {
		t.Errorf("append retry = %d, %v; want %d", again, err, seq)
	}
	if n, err := j.Purge(ctx, subject, seq, journal.Retention{}, time.Now()); err != nil || n != 1 {
		t.Errorf("purge again = %d, %v; want 1", n, err)
	}
	if got := readAll(t, j, subject, 0, 0); len(got) != 1 || got[0].seq != seq {
		t.Errorf("read %v, want only %d", got, seq)
	}
}

func TestPurgeEmptyAndInvalid(t *testing.T) {
	srv := natstest.Start(t)
	j, _ := openJournal(t, srv, journal.Config{})
	ctx := t.Context()
	if n, err := j.Purge(ctx, j.Subject(0, "none", "x"), 10, journal.Retention{}, time.Now()); err != nil || n != 0 {
		t.Errorf("purge of an empty subject = %d, %v", n, err)
	}
	if seq, err := j.FirstSeq(ctx, j.Subject(0, "none", "x")); err != nil || seq != 0 {
		t.Errorf("FirstSeq of an empty subject = %d, %v", seq, err)
	}
	for _, tc := range []struct {
		name    string
		subject string
		r       journal.Retention
	}{
		{"wildcard", "opendo.journal.0.ns.*", journal.Retention{}},
		{"outside the journal", "other.0.ns.x", journal.Retention{}},
		{"negative KeepFor", j.Subject(0, "ns", "x"), journal.Retention{KeepFor: -time.Second}},
	} {
		if _, err := j.Purge(ctx, tc.subject, 10, tc.r, time.Now()); !errors.Is(err, journal.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", tc.name, err)
		}
	}
}

// TestPurgeDenied: a stream created with DenyPurge (which can never be
// lifted) keeps it through Open, and Purge reports the server's refusal.
func TestPurgeDenied(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	ctx := t.Context()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: journal.DefaultStream, Subjects: []string{"opendo.journal.>"},
		Storage: jetstream.FileStorage, DenyPurge: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(ctx, js, journal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	subject := j.Subject(0, "ns", "x")
	seqs := appendN(t, j, subject, j.Subject(0, "ns", "noise"), 3)
	_, err = j.Purge(ctx, subject, seqs[2], journal.Retention{}, time.Now())
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("purge on a deny-purge stream: %v, want an API error", err)
	}
	t.Logf("purge refused: %v", err)
	if got := remaining(t, j, subject, seqs); len(got) != 3 {
		t.Errorf("left %v, want all", got)
	}
}

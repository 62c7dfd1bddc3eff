package journal_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
)

// commitID is a fixed, valid ULID of the bookmark tests.
var commitID = ulid.MustParse("01JQ0000000000000000000001")

func TestBookmarkRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		b    journal.Bookmark
		want string
	}{
		{"zero", journal.Bookmark{}, "0000000000000000-00000000000000000000000000"},
		{"doc example", journal.Bookmark{Seq: 1234, CommitID: commitID}, "00000000000004d2-01JQ0000000000000000000001"},
		{"seq 1", journal.Bookmark{Seq: 1, CommitID: commitID}, "0000000000000001-01JQ0000000000000000000001"},
		{"all hex letters", journal.Bookmark{Seq: 0xabcdef, CommitID: commitID}, "0000000000abcdef-01JQ0000000000000000000001"},
		{"max seq, max ULID", journal.Bookmark{Seq: math.MaxUint64, CommitID: ulid.ULID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
			"ffffffffffffffff-7ZZZZZZZZZZZZZZZZZZZZZZZZZ"},
		{"min non-zero ULID", journal.Bookmark{Seq: 7, CommitID: ulid.ULID{15: 1}}, "0000000000000007-00000000000000000000000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.b.String()
			if s != tt.want {
				t.Errorf("String() = %q, want %q", s, tt.want)
			}
			got, err := journal.ParseBookmark(s)
			if err != nil || got != tt.b {
				t.Errorf("ParseBookmark(%q) = %+v, %v; want %+v", s, got, err, tt.b)
			}
		})
	}
	t.Run("random", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for range 1000 {
			b := journal.Bookmark{Seq: r.Uint64() >> r.IntN(64), CommitID: randomULID(r)}
			if b.Seq == 0 {
				b.Seq = 1
			}
			s := b.String()
			got, err := journal.ParseBookmark(s)
			if err != nil || got != b || len(s) != 43 {
				t.Fatalf("ParseBookmark(%q) = %+v, %v; want %+v", s, got, err, b)
			}
		}
	})
}

// randomULID returns a ULID from r whose bytes are not all zero.
func randomULID(r *rand.Rand) ulid.ULID {
	var id ulid.ULID
	for id == (ulid.ULID{}) {
		for i := range id {
			id[i] = byte(r.Uint32())
		}
	}
	return id
}

func TestParseBookmarkInvalid(t *testing.T) {
	const good = "00000000000004d2-01JQ0000000000000000000001"
	if _, err := journal.ParseBookmark(good); err != nil {
		t.Fatalf("the valid bookmark the cases derive from: %v", err)
	}
	tests := []struct{ name, s string }{
		{"empty", ""},
		{"one short", good[:len(good)-1]},
		{"one long", good + "1"},
		{"short seq", "4d2-01JQ0000000000000000000001"},
		{"no dash", "00000000000004d2_01JQ0000000000000000000001"},
		{"dash misplaced", "0000000000004d2-001JQ0000000000000000000001"},
		{"uppercase hex", "00000000000004D2-01JQ0000000000000000000001"},
		{"not hex", "00000000000004g2-01JQ0000000000000000000001"},
		{"sign", "+0000000000004d2-01JQ0000000000000000000001"},
		{"space in seq", " 0000000000004d2-01JQ0000000000000000000001"},
		{"non-ASCII in seq", "00000000000004\u00e9-01JQ0000000000000000000001"},
		{"ULID with invalid letter U", "00000000000004d2-01JQ000000000000000000000U"},
		{"ULID with punctuation", "00000000000004d2-01JQ00000000000000000000-1"},
		{"ULID overflow", "00000000000004d2-81JQ0000000000000000000001"},
		{"lowercase ULID", "00000000000004d2-01jq0000000000000000000001"},
		{"Crockford alias O for 0", "00000000000004d2-O1JQ0000000000000000000001"},
		{"Crockford alias I for 1", "00000000000004d2-0IJQ0000000000000000000001"},
		{"seq 0, non-zero ULID", "0000000000000000-01JQ0000000000000000000001"},
		{"seq 1, zero ULID", "0000000000000001-00000000000000000000000000"},
		{"all dashes", strings.Repeat("-", len(good))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := journal.ParseBookmark(tt.s)
			if !errors.Is(err, journal.ErrInvalidBookmark) {
				t.Fatalf("ParseBookmark(%q) = %+v, %v; want ErrInvalidBookmark", tt.s, b, err)
			}
			if b != (journal.Bookmark{}) {
				t.Errorf("ParseBookmark(%q) returned %+v with its error, want the zero Bookmark", tt.s, b)
			}
		})
	}
}

// TestBookmarkOrder: the bookmarks of one object sort as strings in the
// order of their sequences, including across hex digit counts.
func TestBookmarkOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	seqs := []uint64{0, 1, 2, 9, 10, 15, 16, 17, 255, 256, 4095, 4096, 1 << 32, 1<<32 + 1, 1 << 60, math.MaxUint64 - 1, math.MaxUint64}
	for range 200 {
		seqs = append(seqs, r.Uint64()>>r.IntN(64))
	}
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	strs := make([]string, len(seqs))
	for i, seq := range seqs {
		b := journal.Bookmark{Seq: seq}
		if seq != 0 {
			b.CommitID = randomULID(r) // commit IDs of one object are not ordered
		}
		strs[i] = b.String()
	}
	shuffled := slices.Clone(strs)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	slices.Sort(shuffled)
	for i, s := range shuffled {
		b, err := journal.ParseBookmark(s)
		if err != nil {
			t.Fatal(err)
		}
		if b.Seq != seqs[i] {
			t.Fatalf("sorted bookmark %d is %q (seq %d), want seq %d", i, s, b.Seq, seqs[i])
		}
	}
}

func FuzzParseBookmark(f *testing.F) {
	for _, s := range []string{
		"",
		"0000000000000000-00000000000000000000000000",
		"00000000000004d2-01JQ0000000000000000000001",
		"ffffffffffffffff-7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
		"00000000000004D2-01JQ0000000000000000000001",
		"00000000000004d2-01jq0000000000000000000001",
		"00000000000004d2-81JQ0000000000000000000001",
		"0000000000000000-01JQ0000000000000000000001",
		"0000000000000001-00000000000000000000000000",
		"00000000000004d2_01JQ0000000000000000000001",
		"4d2-01JQ0000000000000000000001",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := journal.ParseBookmark(s)
		if err != nil {
			if !errors.Is(err, journal.ErrInvalidBookmark) {
				t.Fatalf("ParseBookmark(%q): error %v does not wrap ErrInvalidBookmark", s, err)
			}
			if b != (journal.Bookmark{}) {
				t.Fatalf("ParseBookmark(%q) returned %+v with its error", s, b)
			}
			return
		}
		if got := b.String(); got != s {
			t.Fatalf("ParseBookmark(%q) = %+v, which prints as %q", s, b, got)
		}
		if (b.Seq == 0) != (b.CommitID == ulid.ULID{}) {
			t.Fatalf("ParseBookmark(%q) accepted %+v: only seq 0 has the zero commit ID", s, b)
		}
	})
}

// bookmarkJournal returns a journal with entries on subject interleaved
// with noise on another subject, and the sequences and entries of subject.
func bookmarkJournal(t *testing.T) (j *journal.Journal, subject, noise string, seqs []uint64, entries []*journal.Entry) {
	t.Helper()
	srv := natstest.Start(t)
	j, _ = openJournal(t, srv, journal.Config{})
	ctx := t.Context()
	subject, noise = j.Subject(0, "bm", "a"), j.Subject(0, "bm", "noise")
	var last, noiseLast uint64
	for i := range 5 {
		e := entry("k", fmt.Sprint("v", i))
		seq, err := j.Append(ctx, subject, last, e)
		if err != nil {
			t.Fatal(err)
		}
		last = seq
		seqs, entries = append(seqs, seq), append(entries, e)
		if noiseLast, err = j.Append(ctx, noise, noiseLast, entry("noise", "x")); err != nil {
			t.Fatal(err)
		}
	}
	return j, subject, noise, seqs, entries
}

func TestEntryAt(t *testing.T) {
	j, subject, noise, seqs, entries := bookmarkJournal(t)
	ctx := t.Context()
	for i, seq := range seqs {
		e, ok, err := j.EntryAt(ctx, subject, seq)
		if err != nil || !ok {
			t.Fatalf("EntryAt(%d) = %v, %v, %v; want entry %d", seq, e, ok, err, i)
		}
		if !sameEncoding(t, e, entries[i]) {
			t.Errorf("EntryAt(%d) =\n%s\nwant\n%s", seq, e, entries[i])
		}
	}
	// The noise entries sit right after each entry of subject.
	notThere := map[string]uint64{
		"seq 0":                     0,
		"another subject's entry":   seqs[1] + 1,
		"the last noise entry":      seqs[4] + 1,
		"after the stream's last":   seqs[4] + 2,
		"far beyond":                1 << 40,
		"max":                       math.MaxUint64,
		"another subject's (first)": seqs[0] + 1,
	}
	for name, seq := range notThere {
		e, ok, err := j.EntryAt(ctx, subject, seq)
		if err != nil || ok || e != nil {
			t.Errorf("%s: EntryAt(%d) = %v, %v, %v; want nothing", name, seq, e, ok, err)
		}
	}
	// The other way round: the noise subject has nothing at subject's seqs.
	if e, ok, err := j.EntryAt(ctx, noise, seqs[2]); err != nil || ok || e != nil {
		t.Errorf("EntryAt(noise, %d) = %v, %v, %v; want nothing", seqs[2], e, ok, err)
	}
	// A purged entry is gone.
	if _, err := j.Purge(ctx, subject, seqs[1], journal.Retention{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, seq := range seqs[:2] {
		if e, ok, err := j.EntryAt(ctx, subject, seq); err != nil || ok || e != nil {
			t.Errorf("EntryAt(%d) after its purge = %v, %v, %v; want nothing", seq, e, ok, err)
		}
	}
	if _, ok, err := j.EntryAt(ctx, subject, seqs[2]); err != nil || !ok {
		t.Errorf("EntryAt(%d) after the purge of earlier entries = %v, %v; want it", seqs[2], ok, err)
	}
	for _, bad := range []string{"opendo.journal.0.bm.*", "other.0.bm.a", ""} {
		if _, _, err := j.EntryAt(ctx, bad, seqs[2]); !errors.Is(err, journal.ErrInvalidArgument) {
			t.Errorf("EntryAt(%q): %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestEntryAtCorrupt(t *testing.T) {
	srv := natstest.Start(t)
	j, js := openJournal(t, srv, journal.Config{})
	ctx := t.Context()
	subject := j.Subject(0, "bm", "corrupt")
	ack, err := js.Publish(ctx, subject, []byte("not an entry"))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok, err := j.EntryAt(ctx, subject, ack.Sequence); !errors.Is(err, journal.ErrCorrupt) || ok || e != nil {
		t.Errorf("EntryAt(a message that is not an entry) = %v, %v, %v; want ErrCorrupt", e, ok, err)
	}
	b := journal.Bookmark{Seq: ack.Sequence, CommitID: commitID}
	if err := j.Check(ctx, subject, b); !errors.Is(err, journal.ErrCorrupt) {
		t.Errorf("Check(%s) = %v, want ErrCorrupt", b, err)
	}
}

// sameEncoding reports whether a and b encode to the same bytes (decoding
// is canonical, so this compares every field).
func sameEncoding(t *testing.T, a, b *journal.Entry) bool {
	t.Helper()
	x, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	y, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

func TestCheckBookmark(t *testing.T) {
	j, subject, noise, seqs, entries := bookmarkJournal(t)
	ctx := t.Context()
	bm := func(i int) journal.Bookmark { return journal.Bookmark{Seq: seqs[i], CommitID: entries[i].CommitID} }
	for i := range seqs {
		if err := j.Check(ctx, subject, bm(i)); err != nil {
			t.Errorf("Check(%s) = %v, want nil", bm(i), err)
		}
	}
	if err := j.Check(ctx, subject, journal.Bookmark{}); err != nil {
		t.Errorf("Check(zero bookmark) = %v, want nil", err)
	}
	invalid := []struct {
		name string
		b    journal.Bookmark
	}{
		{"wrong commit ID", journal.Bookmark{Seq: seqs[2], CommitID: entries[3].CommitID}},
		{"fresh commit ID", journal.Bookmark{Seq: seqs[2], CommitID: ulid.Make()}},
		{"zero commit ID", journal.Bookmark{Seq: seqs[2]}},
		{"other object's seq", journal.Bookmark{Seq: seqs[2] + 1, CommitID: entries[2].CommitID}},
		{"after the last entry", journal.Bookmark{Seq: seqs[4] + 100, CommitID: entries[4].CommitID}},
		{"seq 0 with a commit ID", journal.Bookmark{CommitID: entries[0].CommitID}},
	}
	for _, tt := range invalid {
		if err := j.Check(ctx, subject, tt.b); !errors.Is(err, journal.ErrInvalidBookmark) {
			t.Errorf("%s: Check(%s) = %v, want ErrInvalidBookmark", tt.name, tt.b, err)
		}
	}
	// Another object's bookmark: the noise subject's entry at seqs[2]+1.
	var noiseEntry *journal.Entry
	err := j.Read(ctx, noise, seqs[2], seqs[2]+1, func(_ uint64, e *journal.Entry) error { noiseEntry = e; return nil })
	if err != nil || noiseEntry == nil {
		t.Fatalf("read the noise entry: %v", err)
	}
	other := journal.Bookmark{Seq: seqs[2] + 1, CommitID: noiseEntry.CommitID}
	if err := j.Check(ctx, noise, other); err != nil {
		t.Errorf("Check(noise, %s) = %v, want nil", other, err)
	}
	if err := j.Check(ctx, subject, other); !errors.Is(err, journal.ErrInvalidBookmark) {
		t.Errorf("Check(subject, another object's bookmark %s) = %v, want ErrInvalidBookmark", other, err)
	}
	// A purged entry's bookmark no longer checks.
	if _, err := j.Purge(ctx, subject, seqs[1], journal.Retention{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := j.Check(ctx, subject, bm(1)); !errors.Is(err, journal.ErrInvalidBookmark) {
		t.Errorf("Check(%s) after its purge = %v, want ErrInvalidBookmark", bm(1), err)
	}
	if err := j.Check(ctx, subject, bm(2)); err != nil {
		t.Errorf("Check(%s) after the purge of earlier entries = %v, want nil", bm(2), err)
	}
	for _, b := range []journal.Bookmark{bm(2), {}} {
		if err := j.Check(ctx, "opendo.journal.0.bm.*", b); !errors.Is(err, journal.ErrInvalidArgument) {
			t.Errorf("Check(wildcard subject, %s) = %v, want ErrInvalidArgument", b, err)
		}
	}
}

func TestOrigin(t *testing.T) {
	srv := natstest.Start(t)
	j, js := openJournal(t, srv, journal.Config{})
	ctx := t.Context()
	origin := func(subject string) (uint64, bool) {
		t.Helper()
		first, fromStart, err := j.Origin(ctx, subject)
		if err != nil {
			t.Fatalf("Origin(%s): %v", subject, err)
		}
		return first, fromStart
	}

	t.Run("no entries", func(t *testing.T) {
		if first, fromStart := origin(j.Subject(0, "origin", "none")); first != 0 || fromStart {
			t.Errorf("Origin = %d, %v; want 0, false", first, fromStart)
		}
	})
	t.Run("from the start, then purged", func(t *testing.T) {
		subject := j.Subject(0, "origin", "purged")
		seqs := appendN(t, j, subject, j.Subject(0, "origin", "noise"), 6)
		if first, fromStart := origin(subject); first != seqs[0] || !fromStart {
			t.Errorf("Origin = %d, %v; want %d, true", first, fromStart, seqs[0])
		}
		if _, err := j.Purge(ctx, subject, seqs[2], journal.Retention{}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if first, fromStart := origin(subject); first != seqs[3] || fromStart {
			t.Errorf("after purge: Origin = %d, %v; want %d, false", first, fromStart, seqs[3])
		}
	})
	t.Run("fork", func(t *testing.T) {
		subject := j.Subject(0, "origin", "fork")
		e := entry("k", "forked")
		e.FromSnapshot = true
		seq, err := j.Append(ctx, subject, 0, e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.Append(ctx, subject, seq, entry("k", "next")); err != nil {
			t.Fatal(err)
		}
		if first, fromStart := origin(subject); first != seq || fromStart {
			t.Errorf("Origin = %d, %v; want %d, false", first, fromStart, seq)
		}
	})
	t.Run("restore first", func(t *testing.T) {
		// A restore to the empty state is still the object's very first
		// entry: Origin looks at how it was appended and FromSnapshot only.
		subject := j.Subject(0, "origin", "restore")
		e := entry("k", "x")
		e.Txns[0].Mutations = []storage.Mutation{{Op: storage.OpRestore, Target: 0}}
		seq, err := j.Append(ctx, subject, 0, e)
		if err != nil {
			t.Fatal(err)
		}
		if first, fromStart := origin(subject); first != seq || !fromStart {
			t.Errorf("Origin = %d, %v; want %d, true", first, fromStart, seq)
		}
	})
	t.Run("not appended by Append", func(t *testing.T) {
		// A message published without the fencing header (not by this
		// package) cannot be shown to be the object's first.
		subject := j.Subject(0, "origin", "raw")
		data, err := entry("k", "raw").MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.Publish(ctx, subject, data)
		if err != nil {
			t.Fatal(err)
		}
		if first, fromStart := origin(subject); first != ack.Sequence || fromStart {
			t.Errorf("Origin = %d, %v; want %d, false", first, fromStart, ack.Sequence)
		}
	})
	t.Run("corrupt first entry", func(t *testing.T) {
		subject := j.Subject(0, "origin", "corrupt")
		msg := &nats.Msg{Subject: subject, Data: []byte("not an entry"), Header: nats.Header{}}
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
		if _, _, err := j.Origin(ctx, subject); !errors.Is(err, journal.ErrCorrupt) {
			t.Errorf("Origin = %v, want ErrCorrupt", err)
		}
	})
	t.Run("invalid subject", func(t *testing.T) {
		if _, _, err := j.Origin(ctx, "opendo.journal.>"); !errors.Is(err, journal.ErrInvalidArgument) {
			t.Errorf("Origin(wildcard) = %v, want ErrInvalidArgument", err)
		}
	})
}

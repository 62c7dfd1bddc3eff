package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/storage"
)

// smallEntry is a typical entry: one transaction with one put of an 8-byte
// key and an 8-byte value.
func smallEntry() *Entry {
	return &Entry{
		CommitID: ulid.MustParse("01JQ0000000000000000000001"),
		Time:     time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC),
		Txns: []storage.Txn{{
			RequestID: "req-0001",
			Context:   storage.TxContext{Time: time.Date(2025, 3, 1, 12, 0, 0, 100000000, time.UTC), Seed: 42},
			Mutations: []storage.Mutation{{Op: storage.OpPut, Key: "counter1", Value: []byte("00000007")}},
		}},
	}
}

// bigEntry is a group commit of n small transactions.
func bigEntry(n int) *Entry {
	e := smallEntry()
	e.Txns = make([]storage.Txn, n)
	for i := range e.Txns {
		e.Txns[i] = storage.Txn{
			RequestID: fmt.Sprintf("01JQ00000000000000000%05d", i),
			Context:   storage.TxContext{Time: e.Time.Add(time.Duration(i) * time.Microsecond), Seed: uint64(i) * 0x9e3779b97f4a7c15},
			Mutations: []storage.Mutation{{Op: storage.OpPut, Key: fmt.Sprintf("key%05d", i), Value: []byte("value000")}},
		}
	}
	return e
}

// allOpsEntry uses every op and every SQL argument type.
func allOpsEntry() *Entry {
	return &Entry{
		CommitID: ulid.MustParse("01JQ0000000000000000000002"),
		Time:     time.Date(2025, 3, 1, 12, 0, 1, 0, time.UTC),
		Txns: []storage.Txn{{
			RequestID: "req-all-ops",
			Context:   storage.TxContext{Time: time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), Seed: math.MaxUint64},
			Mutations: []storage.Mutation{
				{Op: storage.OpPut, Key: "k", Value: []byte{0, 1, 2, 0xff}},
				{Op: storage.OpPut, Key: "", Value: []byte{}},
				{Op: storage.OpDelete, Key: "gone"},
				{Op: storage.OpDeleteAll},
				{Op: storage.OpSQL, SQL: "INSERT INTO t(a, b, c, d, e, f, g) VALUES (?, ?, ?, ?, ?, ?, ?)", Args: []any{
					nil, int64(-42), int64(math.MaxInt64), 3.25, math.Inf(-1), "héllo", []byte{},
				}},
				{Op: storage.OpSQL, SQL: "DELETE FROM t"},
				{Op: storage.OpSetAlarm, Alarm: 1740830401500},
				{Op: storage.OpDeleteAlarm},
			},
		}},
	}
}

// restoreEntry is a bookmark restore: one transaction with one restore
// mutation (format version 2).
func restoreEntry() *Entry {
	return &Entry{
		CommitID: ulid.MustParse("01JQ0000000000000000000004"),
		Time:     time.Date(2025, 3, 1, 12, 0, 3, 0, time.UTC),
		Txns: []storage.Txn{{
			RequestID: "req-restore",
			Context:   storage.TxContext{Time: time.Date(2025, 3, 1, 12, 0, 3, 0, time.UTC), Seed: 7},
			Mutations: []storage.Mutation{{Op: storage.OpRestore, Target: 300}},
		}},
	}
}

// forkEntry is a fork's first entry: a marker transaction on the state of
// the snapshot tagged with the entry's sequence (format version 2).
func forkEntry() *Entry {
	return &Entry{
		CommitID:     ulid.MustParse("01JQ0000000000000000000005"),
		Time:         time.Date(2025, 3, 1, 12, 0, 4, 0, time.UTC),
		FromSnapshot: true,
		Txns: []storage.Txn{{
			RequestID: "fork-of counter/0123456789abcdef0123456789abcdef@12",
			Context:   storage.TxContext{Time: time.Date(2025, 3, 1, 12, 0, 4, 0, time.UTC), Seed: 8},
		}},
	}
}

// multiTxnEntry has several transactions, one without mutations, and
// fields that need multi-byte varints.
func multiTxnEntry() *Entry {
	return &Entry{
		CommitID: ulid.MustParse("01JQ0000000000000000000003"),
		Time:     time.Date(2025, 3, 1, 12, 0, 2, 0, time.UTC),
		Txns: []storage.Txn{
			{RequestID: "a", Context: storage.TxContext{Seed: 1}, Mutations: []storage.Mutation{
				{Op: storage.OpPut, Key: "日本語", Value: bytes.Repeat([]byte{'x'}, 300)},
			}},
			{RequestID: "", Context: storage.TxContext{Time: time.Date(2025, 3, 1, 12, 0, 2, 0, time.UTC)}},
			{RequestID: "c", Mutations: []storage.Mutation{
				{Op: storage.OpSQL, SQL: "UPDATE t SET n = n + ?", Args: []any{int64(1)}},
				{Op: storage.OpSetAlarm, Alarm: -1},
			}},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		want := randomEntry(rng)
		b, err := want.MarshalBinary()
		if err != nil {
			t.Fatalf("entry %d: marshal: %v", i, err)
		}
		if appended, err := want.AppendBinary([]byte("prefix")); err != nil || !bytes.Equal(appended[6:], b) {
			t.Fatalf("entry %d: AppendBinary differs from MarshalBinary (err %v)", i, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("entry %d: decode: %v\n%s", i, err, want)
		}
		if !sameEntry(got, want) {
			t.Fatalf("entry %d: round trip\ngot:\n%s\nwant:\n%s", i, got, want)
		}
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	b, err := allOpsEntry().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if want := allOpsEntry(); !sameEntry(got, want) {
		t.Fatalf("decoded entry changed with its input\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good, err := allOpsEntry().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("every truncation", func(t *testing.T) {
		for n := range len(good) {
			if _, err := Decode(good[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%d of %d bytes: got %v, want ErrCorrupt", n, len(good), err)
			}
		}
	})
	t.Run("every bit flip", func(t *testing.T) {
		b := bytes.Clone(good)
		for i := range len(b) * 8 {
			b[i/8] ^= 1 << (i % 8)
			if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("bit %d flipped: got %v, want ErrCorrupt", i, err)
			}
			b[i/8] ^= 1 << (i % 8)
		}
	})
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"version 3", withCRC(patch(good, 2, 3)), ErrVersion},
		{"needless version 2", withCRC(patch(good, 2, 2)), ErrCorrupt},
		{"version 0", withCRC(patch(good, 2, 0)), ErrVersion},
		{"non-minimal varint", nonMinimal(), ErrCorrupt},
		{"huge txn count", hugeCount(), ErrCorrupt},
		{"unknown arg type", withCRC(bytes.ReplaceAll(good, []byte{argFloat, 0x40, 0x0a}, []byte{7, 0x40, 0x0a})), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncodeInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(e *Entry)
	}{
		{"no txns", func(e *Entry) { e.Txns = nil }},
		{"restore beside a put", func(e *Entry) {
			e.Txns[0].Mutations = append(e.Txns[0].Mutations, storage.Mutation{Op: storage.OpRestore, Target: 1})
		}},
		{"restore beside a txn", func(e *Entry) {
			e.Txns = append(e.Txns, restoreEntry().Txns...)
		}},
		{"unknown op", func(e *Entry) { e.Txns[0].Mutations[0].Op = 9 }},
		{"int arg", func(e *Entry) { e.Txns[0].Mutations[4].Args[1] = 7 }},
		{"bool arg", func(e *Entry) { e.Txns[0].Mutations[4].Args[1] = true }},
		{"time too late", func(e *Entry) { e.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"context time too early", func(e *Entry) { e.Txns[0].Context.Time = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := allOpsEntry()
			tt.edit(e)
			prefix := []byte("keep")
			got, err := e.AppendBinary(prefix)
			if !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("got %v, want ErrInvalidEntry", err)
			}
			if string(got) != "keep" {
				t.Fatalf("AppendBinary returned %q on error, want the input", got)
			}
		})
	}
}

func TestZeroTimes(t *testing.T) {
	e := smallEntry()
	e.Time, e.Txns[0].Context.Time = time.Time{}, time.Time{}
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint64(b[20:28]); got != 0 {
		t.Fatalf("zero entry time encoded as %d, want 0", got)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.IsZero() || !got.Txns[0].Context.Time.IsZero() {
		t.Fatalf("zero times decoded as %v and %v", got.Time, got.Txns[0].Context.Time)
	}
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// re-encodes to the same bytes. Each input is also tried with its checksum
// fixed, so that mutations reach the parser behind the CRC check.
func FuzzDecode(f *testing.F) {
	for _, name := range fixtureNames(f) {
		f.Add(readFixture(f, name+".bin"))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		if len(b) >= crcSize {
			checkDecode(t, withCRC(b))
		}
	})
}

func checkDecode(t *testing.T, b []byte) {
	e, err := Decode(b)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	out, err := e.MarshalBinary()
	if err != nil {
		t.Fatalf("decoded entry does not encode: %v\n%s", err, e)
	}
	if !bytes.Equal(out, b) {
		t.Fatalf("re-encoding differs\nin:  %x\nout: %x", b, out)
	}
	again, err := Decode(out)
	if err != nil || !sameEntry(again, e) {
		t.Fatalf("second decode: %v", err)
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, bc := range benchEntries() {
		b.Run(bc.name, func(b *testing.B) {
			buf, _ := bc.e.MarshalBinary()
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = bc.e.AppendBinary(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range benchEntries() {
		b.Run(bc.name, func(b *testing.B) {
			buf, _ := bc.e.MarshalBinary()
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchEntries() []struct {
	name string
	e    *Entry
} {
	return []struct {
		name string
		e    *Entry
	}{{"small", smallEntry()}, {"64txn", bigEntry(64)}}
}

// randomEntry returns an entry in canonical form (what Decode returns).
func randomEntry(rng *rand.Rand) *Entry {
	randTime := func() time.Time {
		if rng.IntN(4) == 0 {
			return time.Time{}
		}
		return time.Unix(0, rng.Int64()-rng.Int64()).UTC()
	}
	randBytes := func(max int) []byte {
		b := make([]byte, rng.IntN(max+1))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	e := &Entry{Time: randTime()}
	for i := range e.CommitID {
		e.CommitID[i] = byte(rng.Uint32())
	}
	e.Txns = make([]storage.Txn, 1+rng.IntN(4))
	for i := range e.Txns {
		tx := &e.Txns[i]
		tx.RequestID = string(randBytes(30))
		tx.Context = storage.TxContext{Time: randTime(), Seed: rng.Uint64()}
		if n := rng.IntN(8); n > 0 {
			tx.Mutations = make([]storage.Mutation, n)
		}
		for j := range tx.Mutations {
			m := storage.Mutation{Op: storage.Op(1 + rng.IntN(6))}
			switch m.Op {
			case storage.OpPut:
				m.Key, m.Value = string(randBytes(20)), randBytes(200)
			case storage.OpDelete:
				m.Key = string(randBytes(20))
			case storage.OpSQL:
				m.SQL = string(randBytes(60))
				if n := rng.IntN(6); n > 0 {
					m.Args = make([]any, n)
				}
				for k := range m.Args {
					switch rng.IntN(5) {
					case 1:
						m.Args[k] = rng.Int64() - rng.Int64()
					case 2:
						m.Args[k] = rng.NormFloat64() * 1e6
					case 3:
						m.Args[k] = string(randBytes(20))
					case 4:
						m.Args[k] = randBytes(20)
					}
				}
			case storage.OpSetAlarm:
				m.Alarm = rng.Int64() - rng.Int64()
			}
			tx.Mutations[j] = m
		}
	}
	switch rng.IntN(8) {
	case 0: // a restore entry
		e.Txns = e.Txns[:1]
		e.Txns[0].Mutations = []storage.Mutation{{Op: storage.OpRestore, Target: rng.Uint64() >> rng.IntN(64)}}
	case 1:
		e.FromSnapshot = true
	}
	return e
}

// sameEntry compares entries, floats by their bits (so NaN equals itself)
// and times with Equal.
func sameEntry(a, b *Entry) bool {
	if a.CommitID != b.CommitID || !a.Time.Equal(b.Time) || len(a.Txns) != len(b.Txns) || a.FromSnapshot != b.FromSnapshot {
		return false
	}
	for i := range a.Txns {
		x, y := &a.Txns[i], &b.Txns[i]
		if x.RequestID != y.RequestID || !x.Context.Time.Equal(y.Context.Time) ||
			x.Context.Seed != y.Context.Seed || len(x.Mutations) != len(y.Mutations) {
			return false
		}
		for j := range x.Mutations {
			m, n := &x.Mutations[j], &y.Mutations[j]
			if m.Op != n.Op || m.Key != n.Key || !bytes.Equal(m.Value, n.Value) || m.SQL != n.SQL ||
				m.Alarm != n.Alarm || m.Target != n.Target || len(m.Args) != len(n.Args) {
				return false
			}
			for k := range m.Args {
				if !sameArg(m.Args[k], n.Args[k]) {
					return false
				}
			}
		}
	}
	return true
}

func sameArg(a, b any) bool {
	switch v := a.(type) {
	case float64:
		w, ok := b.(float64)
		return ok && math.Float64bits(v) == math.Float64bits(w)
	case []byte:
		w, ok := b.([]byte)
		return ok && bytes.Equal(v, w) && (v == nil) == (w == nil)
	}
	return a == b
}

// withCRC returns a copy of b with its last 4 bytes set to the checksum of
// the others.
func withCRC(b []byte) []byte {
	b = bytes.Clone(b)
	n := len(b) - crcSize
	binary.BigEndian.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli))
	return b
}

// patch returns a copy of b with b[i] = v.
func patch(b []byte, i int, v byte) []byte {
	b = bytes.Clone(b)
	b[i] = v
	return b
}

// nonMinimal encodes the small entry with its txn count as 0x81 0x00.
func nonMinimal() []byte {
	b, _ := smallEntry().MarshalBinary()
	out := append(bytes.Clone(b[:headerSize]), 0x81, 0x00)
	return withCRC(append(out, b[headerSize+1:]...))
}

// hugeCount claims 2^62 transactions.
func hugeCount() []byte {
	b, _ := smallEntry().MarshalBinary()
	out := binary.AppendUvarint(bytes.Clone(b[:headerSize]), 1<<62)
	return withCRC(append(out, b[headerSize+1:]...))
}

func TestString(t *testing.T) {
	s := allOpsEntry().String()
	for _, want := range []string{"put key=\"k\" value=0x000102ff", "deleteAll", "args=[null, int -42", "blob <empty>]", "setAlarm at=2025-03-01T12:00:01.5Z"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
}

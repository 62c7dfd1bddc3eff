package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/opendo/opendo/storage"
)

func TestLimitsChangeNothing(t *testing.T) {
	big := strings.Repeat("k", storage.MaxKeySize+1)
	maxKey := strings.Repeat("k", storage.MaxKeySize)
	bigValue := make([]byte, storage.MaxValueSize+1)
	keys := func(n int) []string {
		k := make([]string, n)
		for i := range k {
			k[i] = fmt.Sprintf("k%03d", i%3) // existing keys, duplicated
		}
		return k
	}
	entries := func(n int) []storage.Entry {
		e := make([]storage.Entry, n)
		for i := range e {
			e[i] = storage.Entry{Key: fmt.Sprintf("n%03d", i), Value: []byte("v")}
		}
		return e
	}
	for _, tc := range []struct {
		name string
		call func(ctx context.Context, s storage.Storage) error
		want error
	}{
		{"put key too large", func(ctx context.Context, s storage.Storage) error {
			return s.Put(ctx, big, []byte("v"))
		}, storage.ErrKeyTooLarge},
		{"put value too large", func(ctx context.Context, s storage.Storage) error {
			return s.Put(ctx, "k000", bigValue)
		}, storage.ErrValueTooLarge},
		{"get key too large", func(ctx context.Context, s storage.Storage) error {
			_, _, err := s.Get(ctx, big)
			return err
		}, storage.ErrKeyTooLarge},
		{"delete key too large", func(ctx context.Context, s storage.Storage) error {
			_, err := s.Delete(ctx, big)
			return err
		}, storage.ErrKeyTooLarge},
		{"put 129 entries", func(ctx context.Context, s storage.Storage) error {
			return s.PutMulti(ctx, entries(storage.MaxBatch+1))
		}, storage.ErrTooManyKeys},
		{"put entries, last key too large", func(ctx context.Context, s storage.Storage) error {
			return s.PutMulti(ctx, append(entries(5), storage.Entry{Key: big}))
		}, storage.ErrKeyTooLarge},
		{"put entries, a value too large", func(ctx context.Context, s storage.Storage) error {
			e := entries(5)
			e[3].Value = bigValue
			return s.PutMulti(ctx, e)
		}, storage.ErrValueTooLarge},
		{"get 129 keys", func(ctx context.Context, s storage.Storage) error {
			_, err := s.GetMulti(ctx, keys(storage.MaxBatch+1))
			return err
		}, storage.ErrTooManyKeys},
		{"get keys, one too large", func(ctx context.Context, s storage.Storage) error {
			_, err := s.GetMulti(ctx, append(keys(3), big))
			return err
		}, storage.ErrKeyTooLarge},
		{"delete 129 keys", func(ctx context.Context, s storage.Storage) error {
			_, err := s.DeleteMulti(ctx, keys(storage.MaxBatch+1))
			return err
		}, storage.ErrTooManyKeys},
		{"delete keys, last too large", func(ctx context.Context, s storage.Storage) error {
			_, err := s.DeleteMulti(ctx, append(keys(3), big))
			return err
		}, storage.ErrKeyTooLarge},
		{"list start and startAfter", func(ctx context.Context, s storage.Storage) error {
			_, err := s.List(ctx, storage.ListOptions{Start: "a", StartAfter: "b", HasStartAfter: true})
			return err
		}, storage.ErrInvalidArgument},
		{"list negative limit", func(ctx context.Context, s storage.Storage) error {
			_, err := s.List(ctx, storage.ListOptions{Limit: -1})
			return err
		}, storage.ErrInvalidArgument},
		// At the limits, calls succeed.
		{"put max key and value", func(ctx context.Context, s storage.Storage) error {
			return s.Put(ctx, maxKey, bigValue[:storage.MaxValueSize])
		}, nil},
		{"put 128 entries", func(ctx context.Context, s storage.Storage) error {
			return s.PutMulti(ctx, entries(storage.MaxBatch))
		}, nil},
		{"get 128 keys", func(ctx context.Context, s storage.Storage) error {
			_, err := s.GetMulti(ctx, keys(storage.MaxBatch))
			return err
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			db := openTest(t)
			s := begin(t, db)
			if err := s.PutMulti(ctx, []storage.Entry{{Key: "k000", Value: []byte("0")}, {Key: "k001", Value: []byte("1")}, {Key: "k002"}}); err != nil {
				t.Fatal(err)
			}
			before, logLen := dump(t, db), len(db.log)
			err := tc.call(ctx, s)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				return
			}
			if !strings.Contains(err.Error(), tc.want.Error()+": ") {
				t.Errorf("error %q does not explain itself", err)
			}
			if after := dump(t, db); after != before {
				t.Errorf("state changed:\n%s\nwant\n%s", after, before)
			}
			if len(db.log) != logLen {
				t.Errorf("failed call recorded %d mutations", len(db.log)-logLen)
			}
		})
	}
}

// oddKeys are keys whose byte order differs from naive expectations.
var oddKeys = []string{
	"", "\x00", "\x00\x00", "\x01", "a", "a\x00", "a\x00b", "a b", "aa", "ab", "b", "B", "Z",
	"~", "\x7f", "é", "\u00ff", "\u0100", "\ud7ff", "\ue000", "\ufb01", "\uffff", "😀", "\U00010000",
	"\U0010ffff", "\xff", "\xff\xff", "p\xff", "p\xffz", "q",
}

func TestKeyOrder(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	s := begin(t, db)
	shuffled := slices.Clone(oddKeys)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, k := range shuffled {
		if err := s.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	want := slices.Sorted(slices.Values(oddKeys)) // Go compares strings bytewise
	got, err := s.List(ctx, storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keysOf(got), want) {
		t.Errorf("List order:\n got %q\nwant %q", keysOf(got), want)
	}
	for _, e := range got {
		if string(e.Value) != e.Key {
			t.Errorf("value of %q = %q", e.Key, e.Value)
		}
	}
	rev, err := s.List(ctx, storage.ListOptions{Reverse: true})
	if err != nil {
		t.Fatal(err)
	}
	wantRev := slices.Clone(want)
	slices.Reverse(wantRev)
	if r := keysOf(rev); !slices.Equal(r, wantRev) {
		t.Errorf("reverse List: got %q", r)
	}
	multi, err := s.GetMulti(ctx, append(slices.Clone(shuffled[:20]), shuffled[:5]...))
	if err != nil {
		t.Fatal(err)
	}
	wantMulti := slices.Sorted(slices.Values(shuffled[:20]))
	if !slices.Equal(keysOf(multi), wantMulti) {
		t.Errorf("GetMulti:\n got %q\nwant %q", keysOf(multi), wantMulti)
	}
}

// listRef is List by definition: filter every key, sort, cut.
func listRef(keys []string, o storage.ListOptions) []string {
	var out []string
	for _, k := range keys {
		switch {
		case o.Start != "" && k < o.Start,
			o.HasStartAfter && k <= o.StartAfter,
			o.HasEnd && k >= o.End,
			!strings.HasPrefix(k, o.Prefix):
			continue
		}
		out = append(out, k)
	}
	slices.Sort(out)
	if o.Reverse {
		slices.Reverse(out)
	}
	if o.Limit > 0 && len(out) > o.Limit {
		out = out[:o.Limit]
	}
	return out
}

func TestListOptions(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	s := begin(t, db)
	for _, k := range oddKeys {
		if err := s.Put(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		opts storage.ListOptions
		want []string
	}{
		{"all", storage.ListOptions{}, nil},
		{"start", storage.ListOptions{Start: "a"}, nil},
		{"startAfter empty skips only the empty key", storage.ListOptions{HasStartAfter: true}, nil},
		{"startAfter", storage.ListOptions{StartAfter: "a", HasStartAfter: true}, nil},
		{"end", storage.ListOptions{End: "a\x00", HasEnd: true}, nil},
		{"empty end selects nothing", storage.ListOptions{HasEnd: true}, []string{}},
		{"inverted range", storage.ListOptions{Start: "b", End: "a", HasEnd: true}, []string{}},
		{"prefix", storage.ListOptions{Prefix: "a"}, []string{"a", "a\x00", "a\x00b", "a b", "aa", "ab"}},
		{"prefix NUL", storage.ListOptions{Prefix: "\x00"}, []string{"\x00", "\x00\x00"}},
		{"prefix ending in 0xff", storage.ListOptions{Prefix: "p\xff"}, []string{"p\xff", "p\xffz"}},
		{"prefix of 0xff bytes has no successor", storage.ListOptions{Prefix: "\xff"}, []string{"\xff", "\xff\xff"}},
		{"prefix U+10FFFF", storage.ListOptions{Prefix: "\U0010ffff"}, []string{"\U0010ffff"}},
		{"prefix with start inside", storage.ListOptions{Prefix: "a", Start: "a b"}, []string{"a b", "aa", "ab"}},
		{"prefix with start before", storage.ListOptions{Prefix: "a", Start: "0"}, nil},
		{"prefix with startAfter equal", storage.ListOptions{Prefix: "a", StartAfter: "a", HasStartAfter: true}, nil},
		{"prefix with end inside", storage.ListOptions{Prefix: "a", End: "aa", HasEnd: true}, nil},
		{"prefix with end after", storage.ListOptions{Prefix: "a", End: "z", HasEnd: true}, nil},
		{"prefix reverse limit", storage.ListOptions{Prefix: "a", Reverse: true, Limit: 2}, []string{"ab", "aa"}},
		{"reverse keeps lower bound", storage.ListOptions{Start: "\ufb01", Reverse: true}, nil},
		{"limit", storage.ListOptions{Limit: 3}, []string{"", "\x00", "\x00\x00"}},
		{"huge limit", storage.ListOptions{Limit: 1 << 30}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == nil {
				want = listRef(oddKeys, tc.opts)
			}
			got, err := s.List(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if g := keysOf(got); !slices.Equal(g, want) {
				t.Errorf("List(%+v):\n got %q\nwant %q", tc.opts, g, want)
			}
		})
	}
}

// TestListRandom compares List with listRef for random options.
func TestListRandom(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	s := begin(t, db)
	rng := rand.New(rand.NewPCG(7, 7))
	alphabet := []string{"", "\x00", "a", "b", "é", "\xff", "😀"}
	word := func() string {
		var b strings.Builder
		for range rng.IntN(4) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	var keys []string
	for range 200 {
		k := word()
		if err := s.Put(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for i := range 2000 {
		var o storage.ListOptions
		switch rng.IntN(3) {
		case 1:
			o.Start = word()
		case 2:
			o.StartAfter, o.HasStartAfter = word(), true
		}
		if rng.IntN(2) == 0 {
			o.End, o.HasEnd = word(), true
		}
		if rng.IntN(2) == 0 {
			o.Prefix = word()
		}
		o.Reverse = rng.IntN(2) == 0
		if rng.IntN(2) == 0 {
			o.Limit = rng.IntN(5)
		}
		got, err := s.List(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if g, want := keysOf(got), listRef(keys, o); !slices.Equal(g, want) {
			t.Fatalf("#%d List(%+v):\n got %q\nwant %q", i, o, g, want)
		}
	}
}

func TestEmptyValue(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	s := begin(t, db)
	if err := s.Put(ctx, "nil", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMulti(ctx, []storage.Entry{{Key: "empty", Value: []byte{}}, {Key: "", Value: nil}}); err != nil {
		t.Fatal(err)
	}
	check := func(s storage.Storage) {
		t.Helper()
		for _, k := range []string{"nil", "empty", ""} {
			v, ok, err := s.Get(ctx, k)
			if err != nil || !ok || v == nil || len(v) != 0 {
				t.Errorf("Get(%q) = %q (nil %v), %v, %v; want empty, true", k, v, v == nil, ok, err)
			}
		}
		if _, ok, _ := s.Get(ctx, "missing"); ok {
			t.Error("Get(missing) found")
		}
		got, err := s.GetMulti(ctx, []string{"nil", "empty", "", "missing"})
		if err != nil || !slices.Equal(keysOf(got), []string{"", "empty", "nil"}) {
			t.Errorf("GetMulti = %q, %v", keysOf(got), err)
		}
		for _, e := range got {
			if e.Value == nil {
				t.Errorf("GetMulti value of %q is nil", e.Key)
			}
		}
	}
	check(s)
	muts := commit(t, db)
	for _, m := range muts {
		if m.Value == nil || len(m.Value) != 0 {
			t.Errorf("mutation %+v: want an empty non-nil value", m)
		}
	}
	db2 := openTest(t)
	if err := db2.Apply(ctx, 1, []storage.Txn{{Mutations: muts}}); err != nil {
		t.Fatal(err)
	}
	if a, b := dump(t, db), dump(t, db2); a != b {
		t.Errorf("replayed state differs:\n%s\nwant\n%s", b, a)
	}
	check(begin(t, db))
	commit(t, db)
	check(begin(t, db2))
}

func TestMultiCalls(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	s := begin(t, db)
	if err := s.PutMulti(ctx, []storage.Entry{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("3")}}); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := s.Get(ctx, "a"); !bytes.Equal(v, []byte("3")) {
		t.Errorf("later entry must win: a = %q", v)
	}
	for _, tc := range []struct {
		keys []string
		want int
	}{
		{nil, 0}, {[]string{"x"}, 0}, {[]string{"b", "b", "x", "a", "a"}, 2}, {[]string{"a", "b"}, 0},
	} {
		mark := len(db.log)
		n, err := s.DeleteMulti(ctx, tc.keys)
		if err != nil || n != tc.want {
			t.Errorf("DeleteMulti(%q) = %d, %v; want %d", tc.keys, n, err, tc.want)
		}
		if got := len(db.log) - mark; got != tc.want {
			t.Errorf("DeleteMulti(%q) recorded %d mutations, want %d", tc.keys, got, tc.want)
		}
	}
	want := []storage.Mutation{
		{Op: storage.OpPut, Key: "a", Value: []byte("1")},
		{Op: storage.OpPut, Key: "b", Value: []byte("2")},
		{Op: storage.OpPut, Key: "a", Value: []byte("3")},
		{Op: storage.OpDelete, Key: "a"},
		{Op: storage.OpDelete, Key: "b"},
	}
	if got := commit(t, db); !mutationsEqual(got, want) {
		t.Errorf("mutations:\n got %+v\nwant %+v", got, want)
	}
}

func TestPutCopiesValue(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	s := begin(t, db)
	buf := []byte("before")
	if err := s.Put(ctx, "k", buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "AFTER!")
	muts := commit(t, db)
	if string(muts[0].Value) != "before" {
		t.Errorf("mutation value = %q: Put must copy the caller's slice", muts[0].Value)
	}
}

func mutationsEqual(a, b []storage.Mutation) bool {
	return slices.EqualFunc(a, b, func(x, y storage.Mutation) bool {
		return x.Op == y.Op && x.Key == y.Key && bytes.Equal(x.Value, y.Value) && x.Alarm == y.Alarm && x.SQL == y.SQL
	})
}

package sqlite

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/opendo/opendo/storage"
)

var errAbort = errors.New("abort")

func listKeys(t *testing.T, s storage.Tx) []string {
	t.Helper()
	entries, err := s.List(t.Context(), storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return keysOf(entries)
}

func put(t *testing.T, s storage.Tx, key string) {
	t.Helper()
	if err := s.Put(t.Context(), key, []byte(key)); err != nil {
		t.Fatal(err)
	}
}

func TestTransactionNesting(t *testing.T) {
	for _, tc := range []struct {
		name      string
		run       func(t *testing.T, s storage.Storage) error
		wantKeys  []string
		wantMuts  []string // keys of the recorded puts, in order
		wantError error
	}{
		{
			name: "commit",
			run: func(t *testing.T, s storage.Storage) error {
				return s.Transaction(t.Context(), func(tx storage.Tx) error {
					put(t, tx, "a")
					if got := listKeys(t, tx); !slices.Equal(got, []string{"a", "pre"}) {
						t.Errorf("inside: %q", got)
					}
					return nil
				})
			},
			wantKeys: []string{"a", "pre"}, wantMuts: []string{"pre", "a"},
		},
		{
			name: "error rolls back",
			run: func(t *testing.T, s storage.Storage) error {
				return s.Transaction(t.Context(), func(tx storage.Tx) error {
					put(t, tx, "a")
					if _, err := tx.Delete(t.Context(), "pre"); err != nil {
						t.Fatal(err)
					}
					return errAbort
				})
			},
			wantKeys: []string{"pre"}, wantMuts: []string{"pre"}, wantError: errAbort,
		},
		{
			name: "nested rollback keeps outer writes",
			run: func(t *testing.T, s storage.Storage) error {
				return s.Transaction(t.Context(), func(tx storage.Tx) error {
					put(t, tx, "outer")
					err := tx.Transaction(t.Context(), func(tx storage.Tx) error {
						put(t, tx, "inner")
						return errAbort
					})
					if !errors.Is(err, errAbort) {
						t.Errorf("nested error = %v", err)
					}
					put(t, tx, "after")
					return nil
				})
			},
			wantKeys: []string{"after", "outer", "pre"}, wantMuts: []string{"pre", "outer", "after"},
		},
		{
			name: "outer rollback undoes committed nested",
			run: func(t *testing.T, s storage.Storage) error {
				return s.Transaction(t.Context(), func(tx storage.Tx) error {
					put(t, tx, "outer")
					if err := tx.Transaction(t.Context(), func(tx storage.Tx) error {
						put(t, tx, "inner")
						return tx.Transaction(t.Context(), func(tx storage.Tx) error {
							put(t, tx, "innermost")
							return nil
						})
					}); err != nil {
						t.Fatal(err)
					}
					return errAbort
				})
			},
			wantKeys: []string{"pre"}, wantMuts: []string{"pre"}, wantError: errAbort,
		},
		{
			name: "three levels, innermost fails",
			run: func(t *testing.T, s storage.Storage) error {
				return s.Transaction(t.Context(), func(tx storage.Tx) error {
					put(t, tx, "n1")
					return tx.Transaction(t.Context(), func(tx storage.Tx) error {
						put(t, tx, "n2")
						tx.Transaction(t.Context(), func(tx storage.Tx) error {
							put(t, tx, "n3")
							return errAbort
						})
						put(t, tx, "n4")
						return nil
					})
				})
			},
			wantKeys: []string{"n1", "n2", "n4", "pre"}, wantMuts: []string{"pre", "n1", "n2", "n4"},
		},
		{
			name: "panic rolls back and goes on",
			run: func(t *testing.T, s storage.Storage) (err error) {
				defer func() {
					if r := recover(); r != "boom" {
						t.Errorf("recovered %v, want the handler's panic", r)
					}
					err = errAbort
				}()
				return s.Transaction(t.Context(), func(tx storage.Tx) error {
					put(t, tx, "a")
					tx.Transaction(t.Context(), func(tx storage.Tx) error {
						put(t, tx, "b")
						panic("boom")
					})
					return nil
				})
			},
			wantKeys: []string{"pre"}, wantMuts: []string{"pre"}, wantError: errAbort,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t)
			s := begin(t, db)
			put(t, s, "pre")
			if err := tc.run(t, s); !errors.Is(err, tc.wantError) {
				t.Errorf("Transaction = %v, want %v", err, tc.wantError)
			}
			if db.depth != 0 {
				t.Errorf("depth = %d after the transaction", db.depth)
			}
			// The storage stays usable, DeleteAll included (depth is back to 0).
			if got := listKeys(t, s); !slices.Equal(got, tc.wantKeys) {
				t.Errorf("keys = %q, want %q", got, tc.wantKeys)
			}
			muts := commit(t, db)
			var keys []string
			for _, m := range muts {
				keys = append(keys, m.Key)
			}
			if !slices.Equal(keys, tc.wantMuts) {
				t.Errorf("mutations of keys %q, want %q", keys, tc.wantMuts)
			}
			// Replaying the mutations gives the same state.
			db2 := openTest(t)
			if err := db2.Apply(t.Context(), 1, []storage.Txn{{Mutations: muts}}); err != nil {
				t.Fatal(err)
			}
			if a, b := dump(t, db), dump(t, db2); a != b {
				t.Errorf("replay differs:\n%s\nwant\n%s", b, a)
			}
		})
	}
}

func TestDeleteAllInTransaction(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	s := begin(t, db)
	put(t, s, "a")
	if err := s.SetAlarm(ctx, testNow.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	before := dump(t, db)
	err := s.Transaction(ctx, func(tx storage.Tx) error {
		if err := tx.DeleteAll(ctx); !errors.Is(err, storage.ErrInvalidState) {
			t.Errorf("DeleteAll in a transaction = %v, want ErrInvalidState", err)
		}
		return tx.Transaction(ctx, func(tx storage.Tx) error {
			if err := tx.DeleteAll(ctx); !errors.Is(err, storage.ErrInvalidState) {
				t.Errorf("DeleteAll in a nested transaction = %v, want ErrInvalidState", err)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := dump(t, db); after != before {
		t.Errorf("state changed:\n%s\nwant\n%s", after, before)
	}
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, db); got != "alarm=0,false\n" {
		t.Errorf("after DeleteAll: %q", got)
	}
}

func TestCommitMutations(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	s := begin(t, db)
	put(t, s, "a")
	put(t, s, "b")
	s.Delete(ctx, "missing")
	s.Delete(ctx, "a")
	s.DeleteAlarm(ctx) // no alarm: nothing recorded
	s.SetAlarm(ctx, testNow.Add(-time.Hour))
	s.SetAlarm(ctx, testNow.Add(90*time.Second+500*time.Microsecond))
	s.DeleteAlarm(ctx)
	s.DeleteAll(ctx)
	put(t, s, "c")
	s.Get(ctx, "c")
	s.List(ctx, storage.ListOptions{})
	want := []storage.Mutation{
		{Op: storage.OpPut, Key: "a", Value: []byte("a")},
		{Op: storage.OpPut, Key: "b", Value: []byte("b")},
		{Op: storage.OpDelete, Key: "a"},
		{Op: storage.OpSetAlarm, Alarm: testNow.UnixMilli()},
		{Op: storage.OpSetAlarm, Alarm: testNow.UnixMilli() + 90_000},
		{Op: storage.OpDeleteAlarm},
		{Op: storage.OpDeleteAll},
		{Op: storage.OpPut, Key: "c", Value: []byte("c")},
	}
	if got := commit(t, db); !mutationsEqual(got, want) {
		t.Errorf("mutations:\n got %+v\nwant %+v", got, want)
	}

	// A rolled-back request leaves nothing, and its log is not reused.
	s = begin(t, db)
	put(t, s, "rolled back")
	if err := db.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	s = begin(t, db)
	if got := listKeys(t, s); !slices.Equal(got, []string{"c"}) {
		t.Errorf("keys = %q", got)
	}
	put(t, s, "d")
	if got := commit(t, db); !mutationsEqual(got, []storage.Mutation{{Op: storage.OpPut, Key: "d", Value: []byte("d")}}) {
		t.Errorf("mutations = %+v", got)
	}
	// A read-only request commits no mutation.
	s = begin(t, db)
	s.Get(ctx, "d")
	if got := commit(t, db); len(got) != 0 {
		t.Errorf("read-only request recorded %+v", got)
	}
}

func TestAlarm(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	s := begin(t, db)
	alarm := func() (time.Time, bool) {
		t.Helper()
		a, ok, err := s.Alarm(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return a, ok
	}
	if _, ok := alarm(); ok {
		t.Error("new object has an alarm")
	}
	s.SetAlarm(ctx, testNow.Add(-time.Minute))
	if a, ok := alarm(); !ok || !a.Equal(testNow) {
		t.Errorf("past alarm = %v, %v; want clamped to now %v", a, ok, testNow)
	}
	at := testNow.Add(time.Minute)
	s.SetAlarm(ctx, at)
	if a, ok := alarm(); !ok || !a.Equal(at) {
		t.Errorf("alarm = %v, %v; want %v", a, ok, at)
	}
	s.Transaction(ctx, func(tx storage.Tx) error {
		tx.DeleteAlarm(ctx)
		if _, ok := alarm(); ok {
			t.Error("deleted alarm visible in its transaction")
		}
		return errAbort
	})
	if a, ok := alarm(); !ok || !a.Equal(at) {
		t.Errorf("after rollback alarm = %v, %v; want %v", a, ok, at)
	}
	// AlarmTime sees the request's view inside, the committed one outside.
	if ms, ok, _ := db.AlarmTime(ctx); !ok || ms != at.UnixMilli() {
		t.Errorf("AlarmTime in request = %d, %v", ms, ok)
	}
	commit(t, db)
	if ms, ok, err := db.AlarmTime(ctx); err != nil || !ok || ms != at.UnixMilli() {
		t.Errorf("AlarmTime = %d, %v, %v", ms, ok, err)
	}

	// In the alarm's own request the firing alarm is hidden; a new one shows.
	if err := db.Begin(ctx, storage.TxContext{Time: at}, true); err != nil {
		t.Fatal(err)
	}
	if _, ok := alarm(); ok {
		t.Error("firing alarm visible inside its handler")
	}
	next := at.Add(time.Hour)
	s.SetAlarm(ctx, next)
	if a, ok := alarm(); !ok || !a.Equal(next) {
		t.Errorf("alarm set by the handler = %v, %v; want %v", a, ok, next)
	}
	if err := db.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	s = begin(t, db)
	if a, ok := alarm(); !ok || !a.Equal(at) {
		t.Errorf("outside the handler alarm = %v, %v; want %v", a, ok, at)
	}
	commit(t, db)
}

func TestInvalidState(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	s := db.Storage()
	if s != db.Storage() {
		t.Error("Storage returns a different value each time")
	}
	calls := map[string]func() error{
		"Get":          func() error { _, _, err := s.Get(ctx, "k"); return err },
		"GetMulti":     func() error { _, err := s.GetMulti(ctx, []string{"k"}); return err },
		"Put":          func() error { return s.Put(ctx, "k", nil) },
		"PutMulti":     func() error { return s.PutMulti(ctx, nil) },
		"Delete":       func() error { _, err := s.Delete(ctx, "k"); return err },
		"DeleteMulti":  func() error { _, err := s.DeleteMulti(ctx, nil); return err },
		"List":         func() error { _, err := s.List(ctx, storage.ListOptions{}); return err },
		"DeleteAll":    func() error { return s.DeleteAll(ctx) },
		"Alarm":        func() error { _, _, err := s.Alarm(ctx); return err },
		"SetAlarm":     func() error { return s.SetAlarm(ctx, testNow) },
		"DeleteAlarm":  func() error { return s.DeleteAlarm(ctx) },
		"Transaction":  func() error { return s.Transaction(ctx, func(storage.Tx) error { return nil }) },
		"Sync":         func() error { return s.Sync(ctx) },
		"DatabaseSize": func() error { _, err := s.DatabaseSize(ctx); return err },
		"SQL":          func() error { _, err := s.SQL().Exec(ctx, "SELECT 1"); return err },
		"Commit":       func() error { _, err := db.Commit(ctx); return err },
		"Rollback":     func() error { return db.Rollback(ctx) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, storage.ErrInvalidState) {
			t.Errorf("%s outside a request = %v, want ErrInvalidState", name, err)
		}
	}
	if err := db.Begin(ctx, storage.TxContext{}, false); !errors.Is(err, storage.ErrInvalidArgument) {
		t.Errorf("Begin without a time = %v", err)
	}
	begin(t, db)
	if err := db.Begin(ctx, storage.TxContext{Time: testNow}, false); !errors.Is(err, storage.ErrInvalidState) {
		t.Errorf("second Begin = %v", err)
	}
	if err := db.MarkDurable(ctx, 1, 0); !errors.Is(err, storage.ErrInvalidState) {
		t.Errorf("MarkDurable in a request = %v", err)
	}
	if err := db.Apply(ctx, 1, nil); !errors.Is(err, storage.ErrInvalidState) {
		t.Errorf("Apply in a request = %v", err)
	}
	if _, err := s.SQL().Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("SQL = %v", err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Errorf("Sync = %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(canceled, "k", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context = %v", err)
	}
	if _, err := db.Commit(canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a canceled context = %v", err)
	}
	if db.inTx {
		t.Error("Commit that failed left the request open")
	}
}

func TestDatabaseSize(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	s := begin(t, db)
	size := func() int64 {
		t.Helper()
		n, err := s.DatabaseSize(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	empty := size()
	if empty <= 0 {
		t.Fatalf("size of a new object = %d", empty)
	}
	value := make([]byte, 10_000)
	for i := range 100 {
		if err := s.Put(ctx, string(rune('a'+i%26))+string(rune(i)), value); err != nil {
			t.Fatal(err)
		}
	}
	full := size()
	if full < empty+1_000_000 {
		t.Errorf("size after 1 MB of puts = %d (empty %d)", full, empty)
	}
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if after := size(); after > empty+8192 {
		t.Errorf("size after DeleteAll = %d, want about %d", after, empty)
	}
	commit(t, db)
}

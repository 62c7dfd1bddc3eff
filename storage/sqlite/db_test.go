package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendo/opendo/storage"
)

func TestOpenPragmas(t *testing.T) {
	db := openTest(t)
	for pragma, want := range map[string]int64{
		"synchronous":        1, // NORMAL
		"cache_size":         -defaultCacheKiB,
		"mmap_size":          0,
		"journal_size_limit": journalSizeLimit,
		"busy_timeout":       busyTimeoutMS,
		"foreign_keys":       1,
	} {
		s, err := db.prepare("PRAGMA " + pragma)
		if err != nil {
			t.Fatal(err)
		}
		if got, _, err := db.queryInt64(s, nil); err != nil || got != want {
			t.Errorf("PRAGMA %s = %d, %v; want %d", pragma, got, err, want)
		}
	}
	if mode, err := db.journalMode(); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v", mode, err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "x.db"), Options{CacheKiB: -1}); !errors.Is(err, storage.ErrInvalidArgument) {
		t.Errorf("negative cache: %v", err)
	}
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "missing", "x.db"), Options{}); err == nil {
		t.Error("Open in a missing folder succeeded")
	}
	notDB := filepath.Join(t.TempDir(), "not.db")
	os.WriteFile(notDB, []byte(strings.Repeat("not a database ", 100)), 0o644)
	if _, err := Open(ctx, notDB, Options{}); err == nil || !strings.Contains(err.Error(), notDB) {
		t.Errorf("Open of a non-database = %v", err)
	}
}

func TestOpenOddPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a b?c#d%20e.db")
	db := openPath(t, path)
	if db.Path() != path {
		t.Errorf("Path = %q", db.Path())
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("file not at its path: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "a b?c#d%20e.db") {
			t.Errorf("stray file %q", e.Name())
		}
	}
}

func TestSeqDirtyPersist(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "object.db")
	reopen := func(db *DB) *DB {
		t.Helper()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	want := func(db *DB, seq uint64, dirty bool) {
		t.Helper()
		if s, d := db.Seq(); s != seq || d != dirty {
			t.Errorf("Seq = %d, %v; want %d, %v", s, d, seq, dirty)
		}
	}
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	want(db, 0, false)

	begin(t, db).Get(ctx, "k") // read-only: stays clean
	commit(t, db)
	want(db, 0, false)

	put(t, begin(t, db), "k")
	commit(t, db)
	want(db, 0, true)
	db = reopen(db)
	want(db, 0, true)

	// An entry holding an earlier transaction is durable: still dirty.
	if err := db.MarkDurable(ctx, 5, db.LastTx()+1); err != nil {
		t.Fatal(err)
	}
	db = reopen(db)
	want(db, 5, true)
	// The entry holding the last transaction is durable: clean.
	if err := db.MarkDurable(ctx, 6, db.LastTx()); err != nil {
		t.Fatal(err)
	}
	db = reopen(db)
	want(db, 6, false)

	if err := db.MarkDurable(ctx, 4, db.LastTx()); !errors.Is(err, storage.ErrInvalidArgument) {
		t.Errorf("MarkDurable backwards = %v", err)
	}
	if err := db.MarkDurable(ctx, math.MaxInt64+1, db.LastTx()); !errors.Is(err, storage.ErrInvalidArgument) {
		t.Errorf("MarkDurable beyond int64 = %v", err)
	}
	// A rolled-back request does not make the file dirty.
	put(t, begin(t, db), "x")
	db.Rollback(ctx)
	db = reopen(db)
	want(db, 6, false)
	// Close rolls back an open request.
	put(t, begin(t, db), "y")
	db = reopen(db)
	want(db, 6, false)
	if _, ok, _ := begin(t, db).Get(ctx, "y"); ok {
		t.Error("write of a request open at Close survived")
	}
	commit(t, db)
}

// workload runs random requests on db and returns the committed ones as
// journaled transactions.
func workload(t *testing.T, db *DB, seed uint64, requests int) []storage.Txn {
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(seed, seed))
	key := func() string { return fmt.Sprintf("k%02d\x00%s", rng.IntN(40), strings.Repeat("é", rng.IntN(3))) }
	value := func() []byte {
		v := make([]byte, rng.IntN(20))
		for i := range v {
			v[i] = byte(rng.IntN(256))
		}
		return v
	}
	var step func(tx storage.Tx, depth int)
	step = func(tx storage.Tx, depth int) {
		switch n := rng.IntN(20); {
		case n < 7:
			tx.Put(ctx, key(), value())
		case n < 9:
			entries := make([]storage.Entry, rng.IntN(5))
			for i := range entries {
				entries[i] = storage.Entry{Key: key(), Value: value()}
			}
			tx.PutMulti(ctx, entries)
		case n < 12:
			tx.Delete(ctx, key())
		case n < 13:
			tx.DeleteMulti(ctx, []string{key(), key(), key()})
		case n < 14:
			tx.SetAlarm(ctx, testNow.Add(time.Duration(rng.IntN(1e6)-5e5)*time.Millisecond))
		case n < 15:
			tx.DeleteAlarm(ctx)
		case n < 16 && depth == 0 && rng.IntN(2) == 0:
			tx.DeleteAll(ctx)
		case n < 19 && depth < 3:
			tx.Transaction(ctx, func(tx storage.Tx) error {
				for range rng.IntN(5) {
					step(tx, depth+1)
				}
				if rng.IntN(3) == 0 {
					return errAbort
				}
				return nil
			})
		default:
			tx.List(ctx, storage.ListOptions{Prefix: "k1"})
		}
	}
	var txns []storage.Txn
	for i := range requests {
		tc := storage.TxContext{Time: testNow, Seed: uint64(i)}
		if err := db.Begin(ctx, tc, false); err != nil {
			t.Fatal(err)
		}
		for range rng.IntN(10) {
			step(db.Storage(), 0)
		}
		if rng.IntN(5) == 0 {
			if err := db.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			continue
		}
		muts := commit(t, db)
		txns = append(txns, storage.Txn{RequestID: fmt.Sprint(i), Context: tc, Mutations: muts})
	}
	return txns
}

func TestApplyReproduces(t *testing.T) {
	ctx := t.Context()
	seen := map[storage.Op]int{}
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			live := openTest(t)
			txns := workload(t, live, seed, 60)
			want := dump(t, live)
			for _, tx := range txns {
				for _, m := range tx.Mutations {
					seen[m.Op]++
				}
			}

			whole := openTest(t)
			if err := whole.Apply(ctx, 100, txns); err != nil {
				t.Fatal(err)
			}
			if got := dump(t, whole); got != want {
				t.Errorf("Apply of all: state %s, want %s\n%s\nwant\n%s", hash(got), hash(want), got, want)
			}
			if s, d := whole.Seq(); s != 100 || d {
				t.Errorf("Seq after Apply = %d, %v", s, d)
			}

			chunked := openTest(t)
			for i := 0; i < len(txns); i += 7 {
				if err := chunked.Apply(ctx, uint64(i+1), txns[i:min(i+7, len(txns))]); err != nil {
					t.Fatal(err)
				}
			}
			if got := dump(t, chunked); got != want {
				t.Errorf("Apply in chunks: state %s, want %s", hash(got), hash(want))
			}
		})
	}
	for _, op := range []storage.Op{storage.OpPut, storage.OpDelete, storage.OpDeleteAll, storage.OpSetAlarm, storage.OpDeleteAlarm} {
		if seen[op] == 0 {
			t.Errorf("the workloads never committed a %s", op)
		}
	}
	t.Logf("mutations replayed: %v", seen)
}

func TestApplyFailureChangesNothing(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	if err := db.Apply(ctx, 3, []storage.Txn{{Mutations: []storage.Mutation{{Op: storage.OpPut, Key: "a", Value: []byte("1")}}}}); err != nil {
		t.Fatal(err)
	}
	before := dump(t, db)
	bad := []storage.Txn{{Mutations: []storage.Mutation{
		{Op: storage.OpPut, Key: "b", Value: []byte("2")},
		{Op: storage.OpSQL, SQL: "CREATE TABLE t(x)"},
		{Op: storage.OpSQL, SQL: "INSERT INTO nosuch VALUES (1)"},
	}}}
	if err := db.Apply(ctx, 4, bad); !errors.Is(err, storage.ErrSQL) {
		t.Errorf("Apply of failing SQL = %v, want ErrSQL", err)
	}
	bad[0].Mutations = bad[0].Mutations[:2]
	bad[0].Mutations[1] = storage.Mutation{Op: 99}
	if err := db.Apply(ctx, 4, bad); !errors.Is(err, storage.ErrInvalidArgument) {
		t.Errorf("Apply of an unknown op = %v", err)
	}
	if after := dump(t, db); after != before {
		t.Errorf("failed Apply changed the state:\n%s", after)
	}
	if s, d := db.Seq(); s != 3 || d {
		t.Errorf("Seq = %d, %v after failed Apply", s, d)
	}
	if err := db.Apply(ctx, 2, nil); !errors.Is(err, storage.ErrInvalidArgument) {
		t.Errorf("Apply backwards = %v", err)
	}
	put(t, begin(t, db), "local")
	commit(t, db)
	if err := db.Apply(ctx, 10, nil); !errors.Is(err, storage.ErrInvalidState) {
		t.Errorf("Apply on a dirty file = %v, want ErrInvalidState", err)
	}
}

func TestSnapshotCopiesCleanState(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, filepath.Join(dir, "live.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	put(t, begin(t, db), "k")
	commit(t, db)
	if _, err := db.Snapshot(ctx, filepath.Join(dir, "dirty.db")); !errors.Is(err, storage.ErrInvalidState) {
		t.Fatalf("snapshot of a dirty file = %v, want ErrInvalidState", err)
	}
	if err := db.MarkDurable(ctx, 9, db.LastTx()); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "snap.db")
	seq, err := db.Snapshot(ctx, dst)
	if err != nil || seq != 9 {
		t.Fatalf("Snapshot = %d, %v; want 9", seq, err)
	}
	cp, err := Open(ctx, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if s, dirty := cp.Seq(); s != 9 || dirty {
		t.Fatalf("copy Seq = %d, %v; want 9, clean", s, dirty)
	}
	h1, err := db.ContentHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := cp.ContentHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h1 != h2 {
		t.Fatalf("copy differs: %s vs %s", h1, h2)
	}
}

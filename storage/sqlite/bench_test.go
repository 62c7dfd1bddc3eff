package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/opendo/opendo/storage"
)

// benchDB returns a DB holding n keys "key0000".. with 100-byte values.
func benchDB(b testing.TB, n int) *DB {
	b.Helper()
	db := openTest(b)
	s := begin(b, db)
	value := make([]byte, 100)
	for i := range n {
		if err := s.Put(context.Background(), fmt.Sprintf("key%04d", i), value); err != nil {
			b.Fatal(err)
		}
	}
	commit(b, db)
	return db
}

func BenchmarkGet(b *testing.B) {
	db := benchDB(b, 1000)
	s := begin(b, db)
	ctx := context.Background()
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key%04d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok, err := s.Get(ctx, keys[i%len(keys)]); err != nil || !ok {
			b.Fatal(ok, err)
		}
		i++
	}
}

func BenchmarkPutCommit(b *testing.B) {
	db := benchDB(b, 1000)
	ctx := context.Background()
	tc := storage.TxContext{Time: testNow}
	value := make([]byte, 100)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key%04d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := db.Begin(ctx, tc, false); err != nil {
			b.Fatal(err)
		}
		if err := db.Storage().Put(ctx, keys[i%len(keys)], value); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkList100(b *testing.B) {
	db := benchDB(b, 1000)
	s := begin(b, db)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		start := fmt.Sprintf("key%04d", i%900)
		entries, err := s.List(ctx, storage.ListOptions{Start: start, Limit: 100})
		if err != nil || len(entries) != 100 {
			b.Fatal(len(entries), err)
		}
		i++
	}
}

func BenchmarkGetMulti10(b *testing.B) {
	db := benchDB(b, 1000)
	s := begin(b, db)
	ctx := context.Background()
	keys := make([]string, 10)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for j := range keys {
			keys[j] = fmt.Sprintf("key%04d", (i*10+j*37)%1000)
		}
		if entries, err := s.GetMulti(ctx, keys); err != nil || len(entries) != 10 {
			b.Fatal(len(entries), err)
		}
		i++
	}
}

// BenchmarkPutCommitDurable is one request as the runtime runs it: the
// commit, then MarkDurable once the journal has acknowledged it.
func BenchmarkPutCommitDurable(b *testing.B) {
	db := benchDB(b, 1000)
	ctx := context.Background()
	tc := storage.TxContext{Time: testNow}
	value := make([]byte, 100)
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		if err := db.Begin(ctx, tc, false); err != nil {
			b.Fatal(err)
		}
		if err := db.Storage().Put(ctx, fmt.Sprintf("key%04d", seq%1000), value); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		seq++
		if err := db.MarkDurable(ctx, seq, db.LastTx()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSQLInsert is one small INSERT through Exec inside an open
// request: prepare, bind, step, journal record.
func BenchmarkSQLInsert(b *testing.B) {
	db := openTest(b)
	s := begin(b, db)
	ctx := context.Background()
	execSQL(b, s, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.SQL().Exec(ctx, "INSERT INTO t(name, n) VALUES (?, ?)", "name", i); err != nil {
			b.Fatal(err)
		}
		i++
		if len(db.log) >= 1000 {
			db.log = db.log[:0] // keep the journal record from growing without bound
		}
	}
}

// BenchmarkSQLInsertCommit is a request that makes one small INSERT and
// commits (synchronous=NORMAL, WAL).
func BenchmarkSQLInsertCommit(b *testing.B) {
	db := openTest(b)
	ctx := context.Background()
	execSQL(b, begin(b, db), "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
	commit(b, db)
	tc := storage.TxContext{Time: testNow}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := db.Begin(ctx, tc, false); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Storage().SQL().Exec(ctx, "INSERT INTO t(name, n) VALUES (?, ?)", "name", i); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSQLSelectOne is a point read by primary key through Exec.
func BenchmarkSQLSelectOne(b *testing.B) {
	db := openTest(b)
	s := begin(b, db)
	ctx := context.Background()
	execSQL(b, s, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000) INSERT INTO t SELECT i, 'name' || i FROM c")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.SQL().Exec(ctx, "SELECT name FROM t WHERE id = ?", i%1000+1); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkOpenNew creates a new object file (activation of a new object)
// and closes it.
func BenchmarkOpenNew(b *testing.B) {
	dir := b.TempDir()
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		db, err := Open(ctx, filepath.Join(dir, strconv.Itoa(i)+".db"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenNewParallel creates new object files in one directory from
// 4×GOMAXPROCS goroutines, as a burst of activations of new objects does.
func BenchmarkOpenNewParallel(b *testing.B) {
	dir := b.TempDir()
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			db, err := Open(ctx, filepath.Join(dir, strconv.FormatInt(n.Add(1), 10)+".db"), Options{})
			if err != nil {
				b.Error(err)
				return
			}
			if err := db.Close(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkOpenExisting reopens an existing object file (reactivation)
// and closes it.
func BenchmarkOpenExisting(b *testing.B) {
	path := filepath.Join(b.TempDir(), "x.db")
	ctx := context.Background()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	db.Close()
	for b.Loop() {
		db, err := Open(ctx, path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

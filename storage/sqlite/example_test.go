package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/opendo/opendo/storage"
	"github.com/opendo/opendo/storage/sqlite"
)

// One request: Begin, the handler's writes through Storage, Commit. The
// mutations Commit returns are what the runtime journals; Apply replays
// them into another file, and MarkDurable records the journal's sequence.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "opendo-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := sqlite.Open(ctx, filepath.Join(dir, "object.db"), sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	now := time.UnixMilli(1_700_000_000_000)
	if err := db.Begin(ctx, storage.TxContext{Time: now, Seed: 42}, false); err != nil {
		log.Fatal(err)
	}
	s := db.Storage() // what the handler sees
	s.Put(ctx, "greeting", []byte("hello"))
	s.Transaction(ctx, func(tx storage.Tx) error {
		tx.Put(ctx, "draft", []byte("discarded"))
		return fmt.Errorf("changed my mind") // rolls back this transaction only
	})
	s.SetAlarm(ctx, now.Add(time.Minute))
	muts, err := db.Commit(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range muts {
		fmt.Println(m.Op, m.Key, string(m.Value), m.Alarm)
	}
	seq, dirty := db.Seq()
	fmt.Println("seq", seq, "dirty", dirty)

	// The journal acknowledged the transaction as sequence 1.
	if err := db.MarkDurable(ctx, 1, db.LastTx()); err != nil {
		log.Fatal(err)
	}
	seq, dirty = db.Seq()
	fmt.Println("seq", seq, "dirty", dirty)

	// Rebuild a copy from the journal.
	cp, err := sqlite.Open(ctx, filepath.Join(dir, "copy.db"), sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Close()
	if err := cp.Apply(ctx, 1, []storage.Txn{{RequestID: "r1", Context: storage.TxContext{Time: now, Seed: 42}, Mutations: muts}}); err != nil {
		log.Fatal(err)
	}
	ms, ok, _ := cp.AlarmTime(ctx)
	fmt.Println("copy alarm in", time.UnixMilli(ms).Sub(now), ok)
	// Output:
	// put greeting hello 0
	// setAlarm   1700000060000
	// seq 0 dirty true
	// seq 1 dirty false
	// copy alarm in 1m0s true
}

// SQL in a request: each writing statement is journaled with its
// arguments; replay runs it again with the transaction's time and seed, so
// the copy has the same ids, times and random values.
func Example_sql() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "opendo-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "object.db"), sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	tc := storage.TxContext{Time: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), Seed: 7}
	if err := db.Begin(ctx, tc, false); err != nil {
		log.Fatal(err)
	}
	sql := db.Storage().SQL()
	if _, err := sql.Exec(ctx, `CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT,
		at TEXT DEFAULT CURRENT_TIMESTAMP, tag BLOB DEFAULT (randomblob(4)))`); err != nil {
		log.Fatal(err)
	}
	cur, err := sql.Exec(ctx, "INSERT INTO notes(body) VALUES (?), (?) RETURNING id, at", "first", "second")
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range cur.All() {
		fmt.Println(row["id"], row["at"])
	}
	if _, err := sql.Exec(ctx, "SELECT count(*) FROM notes"); err != nil { // a read: not journaled
		log.Fatal(err)
	}
	muts, err := db.Commit(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range muts {
		fmt.Printf("%s %.40q %v\n", m.Op, m.SQL, m.Args)
	}

	cp, err := sqlite.Open(ctx, filepath.Join(dir, "copy.db"), sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Close()
	if err := cp.Apply(ctx, 1, []storage.Txn{{Context: tc, Mutations: muts}}); err != nil {
		log.Fatal(err)
	}
	a, _ := db.ContentHash(ctx)
	b, _ := cp.ContentHash(ctx)
	fmt.Println("same content:", a == b)
	// Output:
	// 1 2030-01-02 03:04:05
	// 2 2030-01-02 03:04:05
	// sql "CREATE TABLE notes(id INTEGER PRIMARY KE" []
	// sql "INSERT INTO notes(body) VALUES (?), (?) " [first second]
	// same content: true
}

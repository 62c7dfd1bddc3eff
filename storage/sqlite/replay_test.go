package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/opendo/opendo/storage"
)

// request is one request of a workload: its deterministic inputs and what
// the handler does. A handler that returns an error has its request
// rolled back (not journaled).
type request struct {
	tc  storage.TxContext
	run func(t testing.TB, s storage.Storage) error
}

// runLive runs the requests on db and returns the journal they made.
func runLive(t testing.TB, db *DB, reqs []request) []storage.Txn {
	t.Helper()
	ctx := context.Background()
	var txns []storage.Txn
	for i, r := range reqs {
		if err := db.Begin(ctx, r.tc, false); err != nil {
			t.Fatal(err)
		}
		if err := r.run(t, db.Storage()); err != nil {
			if err := db.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			continue
		}
		muts, err := db.Commit(ctx)
		if err != nil {
			t.Fatalf("request %d: commit: %v", i, err)
		}
		txns = append(txns, storage.Txn{RequestID: fmt.Sprint(i), Context: r.tc, Mutations: muts})
	}
	return txns
}

func contentHash(t testing.TB, db *DB) string {
	t.Helper()
	h, err := db.ContentHash(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checkReplay rebuilds a file from txns, in one Apply and one Apply per
// transaction, and compares both with want.
func checkReplay(t testing.TB, txns []storage.Txn, want string) {
	t.Helper()
	ctx := context.Background()
	whole := openTest(t)
	if err := whole.Apply(ctx, uint64(len(txns)), txns); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := contentHash(t, whole); got != want {
		t.Errorf("replayed content %s, want %s", got[:12], want[:12])
	}
	chunked := openTest(t)
	for i := range txns {
		if err := chunked.Apply(ctx, uint64(i+1), txns[i:i+1]); err != nil {
			t.Fatalf("Apply of txn %d: %v", i, err)
		}
	}
	if got := contentHash(t, chunked); got != want {
		t.Errorf("content replayed one transaction at a time %s, want %s", got[:12], want[:12])
	}
}

func ok(fn func(t testing.TB, s storage.Storage)) func(testing.TB, storage.Storage) error {
	return func(t testing.TB, s storage.Storage) error { fn(t, s); return nil }
}

func TestSQLReplayRebuildsSameContent(t *testing.T) {
	ctx := context.Background()
	at := func(i int) storage.TxContext {
		return storage.TxContext{Time: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * 1234567 * time.Microsecond), Seed: uint64(i)*7919 + 1}
	}
	reqs := []request{
		{at(1), ok(func(t testing.TB, s storage.Storage) {
			execSQL(t, s, `
				CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, token BLOB DEFAULT (randomblob(8)),
					created TEXT DEFAULT CURRENT_TIMESTAMP, score INTEGER DEFAULT (random() % 1000));
				CREATE TABLE log(id INTEGER PRIMARY KEY, at REAL, what TEXT, n INTEGER, r INTEGER);
				CREATE INDEX log_what ON log(what);
				CREATE VIEW names AS SELECT name FROM users ORDER BY name;
				CREATE TRIGGER users_log AFTER INSERT ON users BEGIN
					INSERT INTO log(at, what, n, r) VALUES (julianday('now'), 'user ' || new.name, new.id, random());
				END;
				CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
				PRAGMA user_version = 2`)
			execSQL(t, s, "INSERT INTO users(name) VALUES ('ann'), ('bob')")
			if err := s.Put(ctx, "a", []byte("1")); err != nil {
				t.Fatal(err)
			}
			execSQL(t, s, "SELECT random(), randomblob(4)") // reads take no randomness from writes
			execSQL(t, s, "INSERT INTO log(what, n) VALUES ('after ann and bob', last_insert_rowid())")
			execSQL(t, s, "INSERT INTO kv VALUES (?, ?), (?, ?)", "x", 1.5, "y", []byte{1, 2})
		})},
		{at(2), ok(func(t testing.TB, s storage.Storage) {
			// The first statement of a request sees last_insert_rowid() = 0.
			execSQL(t, s, "INSERT INTO log(what, n) VALUES ('first', last_insert_rowid())")
			execSQL(t, s, "INSERT INTO users(name) VALUES ('cy') ON CONFLICT(name) DO UPDATE SET score = score + 1 RETURNING id")
			execSQL(t, s, "UPDATE users SET score = score + abs(random() % 10) WHERE name <> 'cy'")
			if _, err := s.DeleteMulti(ctx, []string{"a", "nope", "zz"}); err != nil {
				t.Fatal(err)
			}
			execSQL(t, s, "INSERT INTO log(what, n, r) VALUES ('changes', changes(), total_changes())")
			err := s.Transaction(ctx, func(tx storage.Tx) error {
				execSQL(t, tx, "INSERT INTO users(name) VALUES ('rolled back')")
				execSQL(t, tx, "DELETE FROM log")
				return errAbort
			})
			if !errors.Is(err, errAbort) {
				t.Fatal(err)
			}
			if _, err := s.SQL().Exec(ctx, "INSERT INTO users(name) VALUES ('dan'), ('ann')"); !errors.Is(err, storage.ErrSQL) {
				t.Fatalf("duplicate name: %v", err)
			}
			execSQL(t, s, "INSERT INTO log(what, n, r) VALUES ('after failures', last_insert_rowid(), random())")
			execSQL(t, s, "INSERT INTO log(what, at) VALUES (strftime('%Y-%m-%d %H:%M:%f', 'now'), unixepoch('now', 'subsec'))")
		})},
		{at(3), func(t testing.TB, s storage.Storage) error {
			execSQL(t, s, "DELETE FROM users")
			return errAbort // rolled back: not journaled
		}},
		{at(4), ok(func(t testing.TB, s storage.Storage) {
			execSQL(t, s, "ALTER TABLE users ADD COLUMN note TEXT DEFAULT 'n/a'")
			execSQL(t, s, "ALTER TABLE kv RENAME TO pairs")
			execSQL(t, s, "CREATE VIRTUAL TABLE docs USING fts5(body)")
			execSQL(t, s, "INSERT INTO docs(body) SELECT 'hello ' || name FROM users")
			execSQL(t, s, "DELETE FROM log WHERE id % 2 = 0 RETURNING id")
			execSQL(t, s, "INSERT OR REPLACE INTO pairs VALUES ('x', datetime('now', '+1 day'))")
			execSQL(t, s, "PRAGMA defer_foreign_keys = ON")
			execSQL(t, s, "CREATE TABLE child(pid REFERENCES users(id)); INSERT INTO child VALUES (1000)")
			execSQL(t, s, "INSERT INTO users(id, name) VALUES (1000, 'late parent')")
			execSQL(t, s, "ANALYZE")
			if err := s.SetAlarm(ctx, time.UnixMilli(1e13)); err != nil {
				t.Fatal(err)
			}
		})},
		{at(5), ok(func(t testing.TB, s storage.Storage) {
			if err := s.DeleteAll(ctx); err != nil {
				t.Fatal(err)
			}
			execSQL(t, s, "CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, t TEXT DEFAULT (date()), r DEFAULT (random()))")
			execSQL(t, s, "INSERT INTO users DEFAULT VALUES; INSERT INTO users DEFAULT VALUES")
			if err := s.Put(ctx, "after", []byte("deleteAll")); err != nil {
				t.Fatal(err)
			}
		})},
		{at(6), ok(func(t testing.TB, s storage.Storage) {
			execSQL(t, s, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300) INSERT INTO users(r) SELECT random() FROM c")
			execSQL(t, s, "DELETE FROM users WHERE r % 3 = 0")
			execSQL(t, s, "UPDATE users SET t = time('now', 'start of day', '+' || id || ' minutes') WHERE id % 7 = 0")
		})},
	}

	dir := t.TempDir()
	live := openPath(t, filepath.Join(dir, "live.db"))
	txns := runLive(t, live, reqs[:3])
	// The object is evicted and reopened in the middle: per-connection
	// state (last_insert_rowid and the like) must not matter.
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	live = openPath(t, filepath.Join(dir, "live.db"))
	txns = append(txns, runLive(t, live, reqs[3:])...)
	want := contentHash(t, live)

	ops := map[storage.Op]int{}
	for _, tx := range txns {
		for _, m := range tx.Mutations {
			ops[m.Op]++
		}
	}
	if len(txns) != 5 || ops[storage.OpSQL] < 20 || ops[storage.OpDeleteAll] != 1 {
		t.Fatalf("workload journaled %d txns with %v", len(txns), ops)
	}
	checkReplay(t, txns, want)

	// The deterministic inputs showed up in the data.
	s := begin(t, live)
	if got := one(t, s, "SELECT t FROM users WHERE id = 1"); got != "2030-01-02" {
		t.Errorf("date() default = %v", got)
	}
	if got := one(t, s, "SELECT count(DISTINCT r) FROM users"); got.(int64) < 150 {
		t.Errorf("only %v distinct random() values", got)
	}
	if err := live.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSQLDeterministicInputs(t *testing.T) {
	tc := storage.TxContext{Time: time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC), Seed: 42}
	values := func(db *DB) []any {
		if err := db.Begin(context.Background(), tc, false); err != nil {
			t.Fatal(err)
		}
		s := db.Storage()
		execSQL(t, s, "CREATE TABLE t(x)")
		row := execSQL(t, s, `SELECT datetime('now'), CURRENT_TIMESTAMP, CURRENT_DATE, CURRENT_TIME, date(), time('now'),
			unixepoch(), unixepoch('subsec'), julianday('now'), strftime('%s', 'now'), datetime('now', 'localtime'), random(), hex(randomblob(4))`).Raw()[0]
		execSQL(t, s, "INSERT INTO t VALUES (random()), (random())")
		ins := execSQL(t, s, "SELECT x FROM t").Raw()
		if ins[0][0] == ins[1][0] {
			t.Errorf("random() repeated a value: %v", ins)
		}
		commit(t, db)
		return append(row, ins[0][0], ins[1][0])
	}
	a, b := values(openTest(t)), values(openTest(t))
	want := []any{"2031-05-06 07:08:09", "2031-05-06 07:08:09", "2031-05-06", "07:08:09", "2031-05-06", "07:08:09",
		int64(1935817689), 1935817689.123, 2462992.7973278123, "1935817689", "2031-05-06 07:08:09"}
	for i, w := range want {
		if a[i] != w {
			t.Errorf("value %d = %#v, want %#v", i, a[i], w)
		}
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("two objects with the same inputs differ:\n%v\n%v", a, b)
	}
}

// FuzzReplay runs random workloads of KV and SQL operations, with nested
// transactions, failures and rollbacks, and checks that replaying their
// journal rebuilds the same content. The seed corpus runs as a test.
func FuzzReplay(f *testing.F) {
	for seed := range uint64(12) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 0x6f70656e646f))
		reqs := make([]request, 8+rng.IntN(8))
		for i := range reqs {
			ops := make([]int, 1+rng.IntN(10))
			for j := range ops {
				ops[j] = rng.IntN(100)
			}
			reqs[i] = request{
				tc:  storage.TxContext{Time: time.UnixMilli(1.8e12 + int64(i)*rng.Int64N(1e8)), Seed: rng.Uint64()},
				run: mixedRequest(ops, rng.IntN(10) == 0),
			}
		}
		db := openTest(t)
		txns := runLive(t, db, reqs)
		checkReplay(t, txns, contentHash(t, db))
	})
}

// mixedRequest returns a request handler that runs ops (each a number that
// picks an operation) and fails at the end when fail is set.
func mixedRequest(ops []int, fail bool) func(testing.TB, storage.Storage) error {
	return func(t testing.TB, s storage.Storage) error {
		ctx := context.Background()
		execSQL(t, s, `CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, k TEXT UNIQUE, v, at TEXT DEFAULT CURRENT_TIMESTAMP);
			CREATE TABLE IF NOT EXISTS seq(id INTEGER PRIMARY KEY AUTOINCREMENT, r, ref)`)
		var do func(tx storage.Tx, op int) error
		do = func(tx storage.Tx, op int) error {
			k := fmt.Sprintf("k%d", op%13)
			var err error
			switch op % 12 {
			case 0:
				err = tx.Put(ctx, k, []byte(fmt.Sprint(op)))
			case 1:
				_, err = tx.Delete(ctx, k)
			case 2:
				_, err = tx.DeleteMulti(ctx, []string{k, "k1", "k2"})
			case 3:
				_, err = tx.SQL().Exec(ctx, "INSERT INTO items(k, v) VALUES (?, random()) ON CONFLICT(k) DO UPDATE SET v = v + 1 RETURNING id", k)
			case 4:
				_, err = tx.SQL().Exec(ctx, "INSERT INTO seq(r, ref) VALUES (randomblob(3), last_insert_rowid()); INSERT INTO seq(r, ref) VALUES (changes(), total_changes())")
			case 5:
				_, err = tx.SQL().Exec(ctx, "DELETE FROM seq WHERE id % 3 = ?", op%3)
			case 6:
				_, err = tx.SQL().Exec(ctx, "INSERT INTO items(k, v) VALUES (?, 1)", k) // fails on a duplicate
			case 7:
				_, err = tx.SQL().Exec(ctx, "SELECT random(), count(*) FROM items")
			case 8:
				err = tx.Transaction(ctx, func(inner storage.Tx) error {
					if err := do(inner, op/12+3); err != nil {
						return err
					}
					if err := do(inner, op/12+4); err != nil {
						return err
					}
					if op%2 == 0 {
						return errAbort
					}
					return nil
				})
			case 9:
				_, err = tx.SQL().Exec(ctx, "UPDATE items SET at = datetime('now', ?) WHERE id = (SELECT max(id) FROM items)", fmt.Sprintf("+%d seconds", op))
			case 10:
				if op > 90 {
					if st, ok := tx.(storage.Storage); ok {
						err = st.DeleteAll(ctx)
					}
				}
			case 11:
				err = tx.SetAlarm(ctx, time.UnixMilli(int64(op)*1e9))
			}
			if errors.Is(err, storage.ErrSQL) || errors.Is(err, errAbort) || errors.Is(err, storage.ErrInvalidState) {
				return nil // a failed statement or rolled-back transaction leaves nothing behind
			}
			return err
		}
		for _, op := range ops {
			if err := do(s, op); err != nil {
				t.Fatalf("op %d: %v", op, err)
			}
		}
		if fail {
			return errAbort
		}
		return nil
	}
}

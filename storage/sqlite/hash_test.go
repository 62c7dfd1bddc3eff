package sqlite

import (
	"testing"
	"time"

	"github.com/opendo/opendo/storage"
)

func TestContentHash(t *testing.T) {
	ctx := t.Context()
	// The same content, reached in different ways (and file layouts).
	a := openTest(t)
	s := begin(t, a)
	execSQL(t, s, `CREATE TABLE t(x, y); CREATE TABLE w(k PRIMARY KEY, v) WITHOUT ROWID;
		WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500) INSERT INTO t SELECT i, zeroblob(100) FROM c;
		DELETE FROM t WHERE rowid > 2; INSERT INTO w VALUES ('b', 2), ('a', 1)`)
	if err := s.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	commit(t, a)

	b := openTest(t)
	s = begin(t, b)
	if err := s.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	execSQL(t, s, `CREATE TABLE w(k PRIMARY KEY, v) WITHOUT ROWID; INSERT INTO w VALUES ('a', 1), ('b', 2);
		CREATE TABLE t(x, y); INSERT INTO t(rowid, x, y) VALUES (2, 2, zeroblob(100)), (1, 1, zeroblob(100))`)
	commit(t, b)
	// The journal's bookkeeping is not content.
	if err := b.MarkDurable(ctx, 7, b.LastTx()); err != nil {
		t.Fatal(err)
	}
	h := contentHash(t, a)
	if got := contentHash(t, b); got != h {
		t.Fatalf("same content, different hashes: %s %s", h, got)
	}

	seen := map[string]string{h: "start"}
	for _, c := range []struct {
		name   string
		change func(s storage.Storage)
	}{
		{"row", func(s storage.Storage) { execSQL(t, s, "UPDATE t SET x = 3 WHERE rowid = 2") }},
		{"rowid", func(s storage.Storage) { execSQL(t, s, "UPDATE t SET rowid = 5 WHERE rowid = 2") }},
		{"type", func(s storage.Storage) { execSQL(t, s, "UPDATE t SET x = '5' WHERE rowid = 5") }},
		{"index", func(s storage.Storage) { execSQL(t, s, "CREATE INDEX t_x ON t(x)") }},
		{"key", func(s storage.Storage) {
			if err := s.Put(ctx, "k2", nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"alarm", func(s storage.Storage) {
			if err := s.SetAlarm(ctx, time.UnixMilli(2e12)); err != nil {
				t.Fatal(err)
			}
		}},
		{"user_version", func(s storage.Storage) { execSQL(t, s, "PRAGMA user_version = 1") }},
	} {
		c.change(begin(t, a))
		commit(t, a)
		h := contentHash(t, a)
		if prev, ok := seen[h]; ok {
			t.Errorf("%s: hash did not change (same as after %s)", c.name, prev)
		}
		seen[h] = c.name
	}

	// Inside a request, the hash is the request's view.
	s = begin(t, a)
	before := contentHash(t, a)
	execSQL(t, s, "DELETE FROM t")
	if contentHash(t, a) == before {
		t.Error("hash inside a request ignores the request's writes")
	}
	if err := a.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if contentHash(t, a) != before {
		t.Error("hash changed after a rollback")
	}
}

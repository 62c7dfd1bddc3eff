package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opendo/opendo/storage"
)

// testNow is the "now" of test requests.
var testNow = time.UnixMilli(1_700_000_000_000)

func openTest(t testing.TB) *DB {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "object.db"))
}

func openPath(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// begin opens a request at testNow and returns its storage.
func begin(t testing.TB, db *DB) storage.Storage {
	t.Helper()
	if err := db.Begin(context.Background(), storage.TxContext{Time: testNow, Seed: seeds.Add(1)}, false); err != nil {
		t.Fatal(err)
	}
	return db.Storage()
}

func commit(t testing.TB, db *DB) []storage.Mutation {
	t.Helper()
	m, err := db.Commit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dump renders the object's state (every KV row, in key order, and the
// alarm) readably; it also checks that every key is stored as a BLOB.
func dump(t testing.TB, db *DB) string {
	t.Helper()
	s, err := db.prepare("SELECT key, value, typeof(key) FROM _cf_KV ORDER BY key")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.query(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	dest := make([]driver.Value, 3)
	for {
		ok, err := next(s, rows, dest)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if dest[2] != "blob" {
			t.Errorf("key %q stored as %v", dest[0], dest[2])
		}
		k, _ := dest[0].([]byte)
		v, _ := dest[1].([]byte)
		fmt.Fprintf(&b, "%q=%q\n", k, v)
	}
	rows.Close()
	ms, ok, err := db.AlarmTime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "alarm=%d,%v\n", ms, ok)
	return b.String()
}

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

func keysOf(entries []storage.Entry) []string {
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	return keys
}

// seeds gives every test transaction its own Seed, as the runtime does.
var seeds atomic.Uint64

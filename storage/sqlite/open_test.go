package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"modernc.org/sqlite"
	lib "modernc.org/sqlite/lib"

	"github.com/opendo/opendo/storage"
)

var update = flag.Bool("update", false, "rewrite template.db")

const pageSize = 4096

// TestTemplate checks that templateDB is, byte for byte, what Open's setup
// makes of an empty file with this build's SQLite. With -update it
// rewrites template.db instead.
func TestTemplate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "setup.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("template.db", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, []byte(templateDB)) {
		t.Fatalf("template.db (%d bytes) differs from the file Open sets up (%d bytes); if the schema or SQLite changed, run go test ./storage/sqlite -run TestTemplate -update",
			len(templateDB), len(got))
	}
}

// TestTemplateBehavesLikeSetup compares a file Open makes from the template
// with one it sets up with SQL (from an empty file): same schema, same
// persistent pragmas, same state, and the same results for the same
// requests, before and after reopening.
func TestTemplateBehavesLikeSetup(t *testing.T) {
	dir := t.TempDir()
	fromTemplate := filepath.Join(dir, "template.db")
	fromSetup := filepath.Join(dir, "setup.db")
	if err := os.WriteFile(fromSetup, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	open := func(path string) *DB {
		t.Helper()
		db, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	compare := func(step string, a, b *DB) {
		t.Helper()
		if sa, sb := fileReport(t, a), fileReport(t, b); sa != sb {
			t.Errorf("%s: from the template:\n%s\nset up:\n%s", step, sa, sb)
		}
	}
	a, b := open(fromTemplate), open(fromSetup)
	compare("new", a, b)

	seed := seeds.Add(1)
	for _, db := range []*DB{a, b} {
		tc := storage.TxContext{Time: testNow, Seed: seed}
		if err := db.Begin(ctx, tc, false); err != nil {
			t.Fatal(err)
		}
		s := db.Storage()
		if err := s.Put(ctx, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := s.SetAlarm(ctx, testNow.Add(1e9)); err != nil {
			t.Fatal(err)
		}
		execSQL(t, s, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('x')")
		commit(t, db)
		if err := db.MarkDurable(ctx, 1, db.LastTx()); err != nil {
			t.Fatal(err)
		}
	}
	compare("after a request", a, b)
	for _, db := range []*DB{a, b} {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	a, b = open(fromTemplate), open(fromSetup)
	defer a.Close()
	defer b.Close()
	compare("reopened", a, b)
}

// fileReport renders what a file holds that Open or a request could
// depend on.
func fileReport(t *testing.T, db *DB) string {
	t.Helper()
	var r strings.Builder
	row := func(v []any) error {
		fmt.Fprintf(&r, "%v\n", v)
		return nil
	}
	for _, q := range []string{
		"SELECT type, name, tbl_name, rootpage, sql FROM sqlite_schema ORDER BY name",
		"SELECT name, value FROM _cf_META ORDER BY name",
		"PRAGMA journal_mode", "PRAGMA page_size", "PRAGMA page_count", "PRAGMA freelist_count",
		"PRAGMA user_version", "PRAGMA application_id", "PRAGMA schema_version", "PRAGMA auto_vacuum",
		"PRAGMA encoding", "PRAGMA synchronous", "PRAGMA foreign_keys", "PRAGMA cache_size",
		"PRAGMA journal_size_limit", "PRAGMA busy_timeout", "PRAGMA locking_mode",
	} {
		fmt.Fprintf(&r, "%s:\n", q)
		if err := db.eachRow(q, nil, row); err != nil {
			t.Fatal(err)
		}
	}
	seq, dirty := db.Seq()
	ms, ok, err := db.AlarmTime(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sum, err := db.ContentHash(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&r, "seq=%d dirty=%v lastTx=%d alarm=%d,%v hash=%s\n", seq, dirty, db.LastTx(), ms, ok, sum)
	return r.String()
}

// openErr opens path and closes it again, returning Open's error.
func openErr(t *testing.T, path string) error {
	t.Helper()
	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return nil
}

// changeMeta makes a file with Open and changes it with a connection that
// does not go through Open (as damage would).
func changeMeta(t *testing.T, path, stmt string) {
	t.Helper()
	if err := openErr(t, path); err != nil {
		t.Fatal(err)
	}
	c, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Exec(stmt); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 3*pageSize)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	template := func(edit func(b []byte) []byte) func(*testing.T, string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, edit([]byte(templateDB)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	zero := func(from, to int) func(*testing.T, string) {
		return template(func(b []byte) []byte { clear(b[from:to]); return b })
	}
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
		code int32 // SQLite's primary result code, 0 for opendo's own checks
	}{
		{"random bytes", func(t *testing.T, path string) {
			if err := os.WriteFile(path, random, 0o644); err != nil {
				t.Fatal(err)
			}
		}, lib.SQLITE_NOTADB},
		{"garbage header", template(func(b []byte) []byte { copy(b[:100], random); return b }), lib.SQLITE_NOTADB},
		{"zeroed header", zero(0, 100), lib.SQLITE_NOTADB},
		{"truncated to one page", template(func(b []byte) []byte { return b[:pageSize] }), lib.SQLITE_CORRUPT},
		{"truncated mid-page", template(func(b []byte) []byte { return b[:2*pageSize+100] }), 0}, // the missing cells read as NULLs
		{"schema page damaged", zero(pageSize-300, pageSize), lib.SQLITE_CORRUPT},
		{"key-value root page zeroed", zero(pageSize, 2*pageSize), lib.SQLITE_CORRUPT},
		{"meta page zeroed", zero(2*pageSize, 3*pageSize), lib.SQLITE_CORRUPT},
		{"schema version 2", func(t *testing.T, path string) {
			changeMeta(t, path, "UPDATE _cf_META SET value = 2 WHERE name = 'schema'")
		}, 0},
		{"negative sequence", func(t *testing.T, path string) {
			changeMeta(t, path, "UPDATE _cf_META SET value = -1 WHERE name = 'seq'")
		}, 0},
		{"sequence not an integer", func(t *testing.T, path string) {
			changeMeta(t, path, "UPDATE _cf_META SET value = 'x' WHERE name = 'seqtx'")
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "object.db")
			tc.make(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			err = openErr(t, path)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
			var se *sqlite.Error
			switch {
			case tc.code == 0 && errors.As(err, &se):
				t.Errorf("Open = %v, a SQLite error (%d); want opendo's check", err, se.Code())
			case tc.code != 0 && (!errors.As(err, &se) || int32(se.Code())&0xff != tc.code):
				t.Errorf("Open = %v, want SQLite code %s", err, codeName(tc.code))
			}
			if after, err := os.ReadFile(path); err != nil || !bytes.Equal(before, after) {
				t.Errorf("Open changed the file (%v)", err)
			}
		})
	}
}

// TestOpenTornTemplate opens every state a crash can leave a new file in
// (create writes it without fsync): a prefix of its pages, each page
// written or still zeros; and each 512-byte sector zeroed, or the file cut
// at each sector. Open must either fail with ErrCorrupt or give a DB
// identical to a new one; the empty file and the whole template must open.
func TestOpenTornTemplate(t *testing.T) {
	dir := t.TempDir()
	fresh, err := Open(t.Context(), filepath.Join(dir, "fresh.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := fileReport(t, fresh)
	fresh.Close()

	type torn struct {
		name   string
		b      []byte
		mustOK bool
	}
	var cases []torn
	for pages := 0; pages <= 3; pages++ {
		for mask := 0; mask < 1<<pages; mask++ {
			b := make([]byte, pages*pageSize)
			for p := range pages {
				if mask&(1<<p) != 0 {
					copy(b[p*pageSize:], templateDB[p*pageSize:(p+1)*pageSize])
				}
			}
			whole := mask == 1<<pages-1
			cases = append(cases, torn{fmt.Sprintf("%d pages, written %03b", pages, mask), b, pages == 0 || pages == 3 && whole})
		}
	}
	const sector = 512
	for i := 0; i < len(templateDB)/sector; i++ {
		b := []byte(templateDB)
		clear(b[i*sector : (i+1)*sector])
		cases = append(cases, torn{fmt.Sprintf("sector %d zeroed", i), b, false})
		cases = append(cases, torn{fmt.Sprintf("cut after %d sectors", i), []byte(templateDB[:i*sector]), i == 0})
	}
	for i, tc := range cases {
		path := filepath.Join(dir, fmt.Sprintf("%d.db", i))
		if err := os.WriteFile(path, tc.b, 0o644); err != nil {
			t.Fatal(err)
		}
		db, err := Open(t.Context(), path, Options{})
		switch {
		case err != nil && tc.mustOK:
			t.Errorf("%s: Open = %v, want success", tc.name, err)
		case err != nil && !errors.Is(err, ErrCorrupt):
			t.Errorf("%s: Open = %v, want ErrCorrupt or success", tc.name, err)
		case err == nil:
			if got := fileReport(t, db); got != want {
				t.Errorf("%s: Open succeeded with a file unlike a new one:\n%s\nwant:\n%s", tc.name, got, want)
			}
			db.Close()
		}
	}
}

// TestOpenNotCorrupt: failures to open a healthy file (or to create one)
// never match ErrCorrupt, and leave the file as it was.
func TestOpenNotCorrupt(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string) // path holds a healthy file before
		open  func(path string) (string, context.Context)
	}{
		{"path is a directory", nil, func(path string) (string, context.Context) { return filepath.Dir(path), ctx }},
		{"folder missing", nil, func(path string) (string, context.Context) {
			return filepath.Join(path+".d", "x.db"), ctx
		}},
		{"WAL path is a directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path+"-wal", 0o755); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"context canceled", nil, func(path string) (string, context.Context) {
			c, cancel := context.WithCancel(ctx)
			cancel()
			return path, c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "object.db")
			db := openPath(t, path)
			begin(t, db)
			commit(t, db)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, path)
			}
			target, octx := path, ctx
			if tc.open != nil {
				target, octx = tc.open(path)
			}
			if db, err := Open(octx, target, Options{}); err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			} else if errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, must not match ErrCorrupt", err)
			} else {
				t.Log(err)
			}
			if after, err := os.ReadFile(path); err != nil || !bytes.Equal(before, after) {
				t.Errorf("the file changed (%v)", err)
			}
		})
	}
}

// TestMarkCorrupt classifies real SQLite errors of each kind.
func TestMarkCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	a, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.SetMaxOpenConns(1)
	b, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.Exec("CREATE TABLE t(x UNIQUE)"); err != nil {
		t.Fatal(err)
	}
	sqliteErr := func(err error) error {
		t.Helper()
		var se *sqlite.Error
		if !errors.As(err, &se) {
			t.Fatalf("%v is not a *sqlite.Error", err)
		}
		return err
	}
	notADB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notADB, bytes.Repeat([]byte("not a database "), 500), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := sql.Open("sqlite", notADB)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	tx, err := a.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	_, busy := b.Exec("INSERT INTO t VALUES (2)") // a holds the write lock
	tx.Rollback()
	_, constraint := a.Exec("INSERT INTO t VALUES (1), (1)")
	_, syntax := a.Exec("SELEC 1")
	if _, err := a.Exec("PRAGMA max_page_count = 2"); err != nil {
		t.Fatal(err)
	}
	_, full := a.Exec("INSERT INTO t SELECT randomblob(5000)")
	_, notadb := c.Exec("SELECT * FROM sqlite_schema")

	for _, tc := range []struct {
		name    string
		err     error
		corrupt bool
	}{
		{"busy", sqliteErr(busy), false},
		{"constraint", sqliteErr(constraint), false},
		{"syntax", sqliteErr(syntax), false},
		{"full", sqliteErr(full), false},
		{"not a database", sqliteErr(notadb), true},
		{"wrapped not a database", fmt.Errorf("open: %w", sqliteErr(notadb)), true},
		{"not a SQLite error", os.ErrPermission, false},
		{"nil", nil, false},
	} {
		got := markCorrupt(tc.err)
		if errors.Is(got, ErrCorrupt) != tc.corrupt {
			t.Errorf("%s: markCorrupt(%v) matches ErrCorrupt: %v, want %v", tc.name, tc.err, !tc.corrupt, tc.corrupt)
		}
		if !errors.Is(got, tc.err) || (tc.err != nil && got.Error() != tc.err.Error()) {
			t.Errorf("%s: markCorrupt(%v) = %v, want the same error", tc.name, tc.err, got)
		}
	}

	// Every result code, primary and extended: only SQLITE_CORRUPT and
	// SQLITE_NOTADB say the file is damaged.
	for rc := int32(0); rc < 1<<16; rc++ {
		want := rc&0xff == lib.SQLITE_CORRUPT || rc&0xff == lib.SQLITE_NOTADB
		if corruptRC(rc) != want {
			t.Errorf("corruptRC(%d) = %v", rc, !want)
		}
	}
	for _, rc := range []int32{lib.SQLITE_CANTOPEN, lib.SQLITE_CANTOPEN_ISDIR, lib.SQLITE_NOMEM, lib.SQLITE_IOERR,
		lib.SQLITE_IOERR_SHORT_READ, lib.SQLITE_IOERR_CORRUPTFS, lib.SQLITE_FULL, lib.SQLITE_BUSY, lib.SQLITE_LOCKED,
		lib.SQLITE_PERM, lib.SQLITE_READONLY, lib.SQLITE_AUTH, lib.SQLITE_PROTOCOL} {
		if corruptRC(rc) {
			t.Errorf("corruptRC(%s %d) = true", codeName(rc), rc)
		}
	}
	for _, rc := range []int32{lib.SQLITE_CORRUPT, lib.SQLITE_CORRUPT_INDEX, lib.SQLITE_CORRUPT_SEQUENCE, lib.SQLITE_CORRUPT_VTAB, lib.SQLITE_NOTADB} {
		if !corruptRC(rc) {
			t.Errorf("corruptRC(%d) = false", rc)
		}
	}
}

// TestCreateRemovesStaleSideFiles: a WAL left by an earlier file at the
// same path must not be replayed into a new file.
func TestCreateRemovesStaleSideFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "object.db")
	db := openPath(t, path)
	execSQL(t, begin(t, db), "CREATE TABLE old(x)")
	if err := db.Storage().Put(t.Context(), "old", []byte("state")); err != nil {
		t.Fatal(err)
	}
	commit(t, db)
	wal, err := os.ReadFile(path + "-wal") // the commit is in the WAL until Close
	if err != nil {
		t.Fatal(err)
	}
	if len(wal) == 0 {
		t.Fatal("empty WAL")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-wal", wal, 0o644); err != nil {
		t.Fatal(err)
	}
	db = openPath(t, path)
	if got, want := dump(t, db), "alarm=0,false\n"; got != want {
		t.Errorf("new file holds %q, want %q", got, want)
	}
}

func TestCreateKeepsExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "object.db")
	db := openPath(t, path)
	if err := begin(t, db).Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	commit(t, db)
	if err := db.MarkDurable(t.Context(), 7, db.LastTx()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := create(path); err != nil {
		t.Fatal(err)
	}
	db = openPath(t, path)
	if seq, dirty := db.Seq(); seq != 7 || dirty {
		t.Errorf("Seq = %d, %v; want 7, false", seq, dirty)
	}
	if got, want := dump(t, db), "\"k\"=\"v\"\nalarm=0,false\n"; got != want {
		t.Errorf("file holds %q, want %q", got, want)
	}
}

// TestOpenCompletesSetup: a file with the reserved tables but without a
// row of _cf_META, or not in WAL mode, is set up again as Open always did,
// keeping its content.
func TestOpenCompletesSetup(t *testing.T) {
	for _, stmt := range []string{
		"DELETE FROM _cf_META WHERE name = 'lasttx'",
		"PRAGMA journal_mode = DELETE",
	} {
		t.Run(stmt, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "object.db")
			db := openPath(t, path)
			if err := begin(t, db).Put(t.Context(), "k", []byte("v")); err != nil {
				t.Fatal(err)
			}
			commit(t, db)
			if err := db.MarkDurable(t.Context(), 2, db.LastTx()); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			c, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(stmt); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			db = openPath(t, path)
			if seq, _ := db.Seq(); seq != 2 {
				t.Errorf("Seq = %d, want 2", seq)
			}
			if mode, err := db.journalMode(); err != nil || mode != "wal" {
				t.Errorf("journal_mode = %q, %v; want wal", mode, err)
			}
			if got, want := dump(t, db), "\"k\"=\"v\"\nalarm=0,false\n"; got != want {
				t.Errorf("file holds %q, want %q", got, want)
			}
			rows := 0
			if err := db.eachRow("SELECT name FROM _cf_META", nil, func([]any) error { rows++; return nil }); err != nil || rows != 4 {
				t.Errorf("_cf_META has %d rows (%v), want 4", rows, err)
			}
		})
	}
}

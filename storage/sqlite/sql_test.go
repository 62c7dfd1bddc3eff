package sqlite

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opendo/opendo/storage"
)

func execSQL(t testing.TB, s storage.Tx, query string, args ...any) *storage.Cursor {
	t.Helper()
	c, err := s.SQL().Exec(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return c
}

// one returns the single value of a one-row, one-column query.
func one(t testing.TB, s storage.Tx, query string, args ...any) any {
	t.Helper()
	rows := execSQL(t, s, query, args...).Raw()
	if len(rows) != 1 || len(rows[0]) != 1 {
		t.Fatalf("%s: got %v, want one value", query, rows)
	}
	return rows[0][0]
}

func TestSQLValuesAndCursor(t *testing.T) {
	db := openTest(t)
	s := begin(t, db)
	type id int32
	c := execSQL(t, s, "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, typeof(?), typeof(?)",
		nil, 7, int8(-8), uint32(9), 1.5, float32(0.5), "text", []byte{0, 1}, true, id(4), []byte(nil), []byte{})
	want := []any{nil, int64(7), int64(-8), int64(9), 1.5, 0.5, "text", []byte{0, 1}, int64(1), int64(4), "null", "blob"}
	if got := c.Raw(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("values = %#v, want %#v", got, want)
	}
	if got := one(t, s, "SELECT x''"); !reflect.DeepEqual(got, []byte{}) {
		t.Errorf("empty blob = %#v, want []byte{}", got)
	}
	for _, bad := range []any{uint64(1 << 63), struct{}{}, []int{1}, time.Now()} {
		if _, err := s.SQL().Exec(t.Context(), "SELECT ?", bad); !errors.Is(err, storage.ErrInvalidArgument) {
			t.Errorf("argument %T: %v, want ErrInvalidArgument", bad, err)
		}
	}

	execSQL(t, s, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	c = execSQL(t, s, "INSERT INTO t(v) VALUES ('a'), ('b'), ('c') RETURNING id")
	if c.RowsWritten() != 3 || !reflect.DeepEqual(c.ColumnNames(), []string{"id"}) {
		t.Errorf("insert: written %d, columns %q", c.RowsWritten(), c.ColumnNames())
	}
	c = execSQL(t, s, "SELECT id, v FROM t ORDER BY id")
	var ids []int64
	for c.Next() {
		ids = append(ids, c.Values()[0].(int64))
	}
	if !reflect.DeepEqual(ids, []int64{1, 2, 3}) || c.Values() != nil {
		t.Errorf("Next/Values: %v", ids)
	}
	if all := execSQL(t, s, "SELECT v AS x, id AS x FROM t WHERE id = 2").All(); !reflect.DeepEqual(all, []map[string]any{{"x": int64(2)}}) {
		t.Errorf("All with duplicate names = %v", all)
	}
	if _, err := execSQL(t, s, "SELECT * FROM t").One(); !errors.Is(err, storage.ErrMultipleRows) {
		t.Errorf("One of 3 rows = %v", err)
	}
	if _, err := execSQL(t, s, "DELETE FROM t WHERE id = 3 RETURNING id").One(); err != nil {
		t.Errorf("One of a DELETE RETURNING = %v", err)
	}
	if _, err := execSQL(t, s, "DELETE FROM t WHERE id = 3").One(); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("One of 0 rows = %v", err)
	}
	if n := one(t, s, "SELECT count(*) FROM t"); n != int64(2) {
		t.Errorf("count after the deletes = %v", n)
	}
}

func TestSQLErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup string
		query string
		args  []any
		want  error
	}{
		{"empty", "", "", nil, storage.ErrInvalidArgument},
		{"comment only", "", " -- nothing\n/* at all */ ;", nil, storage.ErrInvalidArgument},
		{"NUL byte", "", "SELECT '\x00'", nil, storage.ErrInvalidArgument},
		{"too few args", "", "SELECT ?, ?", []any{1}, storage.ErrInvalidArgument},
		{"too many args", "", "SELECT 1", []any{1}, storage.ErrInvalidArgument},
		{"params before the last statement", "", "SELECT ?; SELECT 1", []any{1}, storage.ErrInvalidArgument},
		{"syntax", "", "SELEC 1", nil, storage.ErrSQL},
		{"constraint", "CREATE TABLE t(x UNIQUE); INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)", nil, storage.ErrSQL},
		{"BEGIN", "", "BEGIN", nil, storage.ErrForbiddenSQL},
		{"COMMIT later", "CREATE TABLE t(x)", "INSERT INTO t VALUES (1); COMMIT", nil, storage.ErrForbiddenSQL},
		{"SAVEPOINT", "", "SAVEPOINT a", nil, storage.ErrForbiddenSQL},
		{"ATTACH", "", "ATTACH ':memory:' AS x", nil, storage.ErrForbiddenSQL},
		{"TEMP table", "", "CREATE TEMP TABLE x(y)", nil, storage.ErrForbiddenSQL},
		{"temp schema", "", "CREATE TABLE temp.x(y)", nil, storage.ErrForbiddenSQL},
		{"VACUUM", "", "VACUUM", nil, storage.ErrForbiddenSQL},
		{"journal_mode", "", "PRAGMA journal_mode", nil, storage.ErrForbiddenSQL},
		{"synchronous", "", "PRAGMA synchronous = OFF", nil, storage.ErrForbiddenSQL},
		{"writable_schema", "", "PRAGMA writable_schema = 1", nil, storage.ErrForbiddenSQL},
		{"pragma function", "", "SELECT * FROM pragma_journal_mode", nil, storage.ErrForbiddenSQL},
		{"set page_size", "", "PRAGMA page_size = 512", nil, storage.ErrForbiddenSQL},
		{"dbpage", "", "SELECT count(*) FROM sqlite_dbpage", nil, storage.ErrForbiddenSQL},
		{"dbstat", "", "SELECT * FROM dbstat", nil, storage.ErrForbiddenSQL},
		{"load_extension", "", "SELECT load_extension('x')", nil, storage.ErrForbiddenSQL},
		{"read KV", "", "SELECT key FROM _cf_KV", nil, storage.ErrReservedName},
		{"count KV", "", "SELECT count(*) FROM _cf_KV", nil, storage.ErrReservedName},
		{"write KV", "", "DELETE FROM _cf_kv", nil, storage.ErrReservedName},
		{"read META", "", "SELECT * FROM _CF_META", nil, storage.ErrReservedName},
		{"drop KV", "", "DROP TABLE _cf_KV", nil, storage.ErrReservedName},
		{"index on KV", "", "CREATE INDEX i ON _cf_KV(value)", nil, storage.ErrReservedName},
		{"trigger on KV", "", "CREATE TRIGGER g AFTER INSERT ON _cf_KV BEGIN SELECT 1; END", nil, storage.ErrReservedName},
		{"opendo prefix", "", "CREATE TABLE _opendo_x(y)", nil, storage.ErrReservedName},
		{"table_info of KV", "", "PRAGMA table_info(_cf_KV)", nil, storage.ErrReservedName},
		{"view over KV", "CREATE VIEW v AS SELECT * FROM _cf_KV", "SELECT * FROM v", nil, storage.ErrReservedName},
		{"trigger writing KV", "CREATE TABLE t(x); CREATE TRIGGER g AFTER INSERT ON t BEGIN DELETE FROM _cf_KV; END", "INSERT INTO t VALUES (1)", nil, storage.ErrReservedName},
		{"rename to reserved", "CREATE TABLE t(x)", "ALTER TABLE main.t RENAME TO [_Cf_t]", nil, storage.ErrReservedName},
		{"shadow json_each", "", "CREATE TABLE JSON_EACH(x)", nil, storage.ErrReservedName},
		{"shadow pragma function", "", "CREATE VIEW pragma_page_count AS SELECT 1", nil, storage.ErrReservedName},
		{"rename to a shadow", "CREATE TABLE t(x)", "ALTER TABLE t RENAME TO json_tree", nil, storage.ErrReservedName},
		{"too many params", "", "SELECT ?101", nil, storage.ErrLimitExceeded},
		{"long LIKE pattern", "", "SELECT 'a' LIKE ?", []any{strings.Repeat("%", 51)}, storage.ErrLimitExceeded},
		{"randomblob too big", "", "SELECT randomblob(2000001)", nil, storage.ErrLimitExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t)
			s := begin(t, db)
			if tc.setup != "" {
				execSQL(t, s, tc.setup)
			}
			before := len(db.Pending())
			_, err := s.SQL().Exec(t.Context(), tc.query, tc.args...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("%q = %v, want %v", tc.query, err, tc.want)
			}
			t.Log(err)
			if n := len(db.Pending()) - before; n != 0 && tc.name != "COMMIT later" {
				t.Errorf("a failed statement recorded %d mutations", n)
			}
			if _, err := db.Commit(t.Context()); err != nil {
				t.Errorf("the request cannot commit after the error: %v", err)
			}
		})
	}
}

func TestSQLAllowed(t *testing.T) {
	db := openTest(t)
	s := begin(t, db)
	for _, q := range []string{
		"CREATE TABLE t(id INTEGER PRIMARY KEY, _cf_col TEXT)",
		"CREATE TABLE x_cf_(a)",
		"ALTER TABLE t RENAME COLUMN _cf_col TO c",
		"ALTER TABLE t RENAME TO t2",
		"PRAGMA table_info(t2)",
		"SELECT * FROM pragma_index_list('t2')",
		"PRAGMA foreign_keys = OFF",
		"PRAGMA defer_foreign_keys = ON",
		"PRAGMA user_version = 7",
		"PRAGMA quick_check",
		"ANALYZE",
		"SELECT name FROM sqlite_schema",
		"CREATE TRIGGER g AFTER INSERT ON t2 BEGIN SELECT 1; END",
		"CREATE VIRTUAL TABLE f USING fts5(body)",
		"INSERT INTO f(body) VALUES ('hello world')",
		"SELECT * FROM f WHERE f MATCH 'hello'",
		"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 10) SELECT sum(i) FROM c",
		"EXPLAIN QUERY PLAN SELECT * FROM t2",
	} {
		if _, err := s.SQL().Exec(t.Context(), q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	if v := one(t, s, "PRAGMA foreign_keys"); v != int64(1) {
		t.Errorf("foreign_keys = %v after setting it off inside the transaction", v)
	}
	commit(t, db)
}

func TestSQLJournal(t *testing.T) {
	db := openTest(t)
	s := begin(t, db)
	ctx := t.Context()
	execSQL(t, s, "CREATE TABLE t(x); INSERT INTO t VALUES (1); SELECT * FROM t")
	execSQL(t, s, "INSERT INTO t VALUES (?), (?)", 2, []byte("b"))
	execSQL(t, s, "SELECT * FROM t WHERE x = ?", 1)
	execSQL(t, s, "PRAGMA table_info(t)")
	execSQL(t, s, "PRAGMA defer_foreign_keys = 1")
	if _, err := s.SQL().Exec(ctx, "INSERT INTO t VALUES (3); INSERT INTO nope VALUES (1)"); !errors.Is(err, storage.ErrSQL) {
		t.Fatalf("failing second statement = %v", err)
	}
	err := s.Transaction(ctx, func(tx storage.Tx) error {
		execSQL(t, tx, "INSERT INTO t VALUES ('rolled back')")
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	got := commit(t, db)
	want := []storage.Mutation{
		{Op: storage.OpSQL, SQL: "CREATE TABLE t(x);"},
		{Op: storage.OpSQL, SQL: "INSERT INTO t VALUES (1);"},
		{Op: storage.OpSQL, SQL: "INSERT INTO t VALUES (?), (?)", Args: []any{int64(2), []byte("b")}},
		{Op: storage.OpSQL, SQL: "PRAGMA defer_foreign_keys = 1"},
		{Op: storage.OpSQL, SQL: "INSERT INTO t VALUES (3);"},
		{Op: storage.OpPut, Key: "k", Value: []byte("v")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mutations:\n got %#v\nwant %#v", got, want)
	}
}

func TestSQLTransactionRollback(t *testing.T) {
	db := openTest(t)
	s := begin(t, db)
	ctx := t.Context()
	execSQL(t, s, "CREATE TABLE t(id INTEGER PRIMARY KEY)")
	execSQL(t, s, "INSERT INTO t VALUES (5)")
	err := s.Transaction(ctx, func(tx storage.Tx) error {
		execSQL(t, tx, "INSERT INTO t VALUES (9)")
		if err := tx.Put(ctx, "k", nil); err != nil {
			t.Fatal(err)
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatal(err)
	}
	if got := one(t, s, "SELECT last_insert_rowid()"); got != int64(5) {
		t.Errorf("last_insert_rowid after rollback = %v, want 5", got)
	}
	if got := one(t, s, "SELECT group_concat(id) FROM t"); got != "5" {
		t.Errorf("rows after rollback = %v", got)
	}
	if _, ok, _ := s.Get(ctx, "k"); ok {
		t.Error("KV write survived the rollback")
	}
	if _, err := s.SQL().Exec(ctx, "INSERT INTO t VALUES (20), (5)"); !errors.Is(err, storage.ErrSQL) {
		t.Fatalf("duplicate key = %v", err)
	}
	if got := one(t, s, "SELECT last_insert_rowid()"); got != int64(5) {
		t.Errorf("last_insert_rowid after a failed insert = %v, want 5", got)
	}
	commit(t, db)
	begin(t, db)
	if got := one(t, s, "SELECT last_insert_rowid()"); got != int64(0) {
		t.Errorf("last_insert_rowid in a new request = %v, want 0", got)
	}
}

func TestSQLUnjournaledConflicts(t *testing.T) {
	for _, q := range []string{
		"INSERT OR ROLLBACK INTO t VALUES (1)",
		"INSERT OR FAIL INTO t VALUES (2), (1)",
		"UPDATE OR FAIL t SET x = 1",
		"CREATE TABLE u(y UNIQUE ON CONFLICT FAIL)",
		"CREATE TABLE u(y PRIMARY KEY ON CONFLICT ROLLBACK)",
		"CREATE TRIGGER g BEFORE INSERT ON t BEGIN SELECT RAISE ( fail, 'no'); END",
		"CREATE TRIGGER g BEFORE INSERT ON t BEGIN SELECT RAISE(ROLLBACK, 'no'); END",
		"CREATE TRIGGER g BEFORE INSERT ON t BEGIN INSERT OR FAIL INTO t VALUES (1); END",
	} {
		t.Run(q, func(t *testing.T) {
			db := openTest(t)
			s := begin(t, db)
			execSQL(t, s, "CREATE TABLE t(x PRIMARY KEY); INSERT INTO t VALUES (1)")
			if _, err := s.SQL().Exec(t.Context(), q); !errors.Is(err, storage.ErrForbiddenSQL) {
				t.Fatalf("%s = %v, want ErrForbiddenSQL", q, err)
			}
			if got := one(t, s, "SELECT count(*) FROM t"); got != int64(1) {
				t.Errorf("rows = %v", got)
			}
			commit(t, db)
		})
	}
	db := openTest(t)
	s := begin(t, db)
	execSQL(t, s, `CREATE TABLE fail(rollback); INSERT INTO fail VALUES ('OR FAIL'); INSERT OR IGNORE INTO fail VALUES (1);
		CREATE TABLE r(x UNIQUE ON CONFLICT REPLACE);
		CREATE TRIGGER g BEFORE INSERT ON r BEGIN SELECT RAISE(IGNORE); END`)
	commit(t, db)
}

func TestSQLInterruptedWriteFailsTheRequest(t *testing.T) {
	db := openTest(t)
	s := begin(t, db)
	execSQL(t, s, "CREATE TABLE t(x)")
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := s.SQL().Exec(ctx, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) INSERT INTO t SELECT i FROM c")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errLostTxn) {
		t.Fatalf("endless insert = %v, want DeadlineExceeded and errLostTxn", err)
	}
	if _, err := db.Commit(t.Context()); err == nil {
		t.Error("Commit succeeded")
	}
	s = begin(t, db)
	if _, err := s.SQL().Exec(t.Context(), "SELECT * FROM t"); !errors.Is(err, storage.ErrSQL) {
		t.Errorf("table survived the failed request: %v", err)
	}
	commit(t, db)
}

func TestSQLInterrupt(t *testing.T) {
	db := openTest(t)
	s := begin(t, db)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := s.SQL().Exec(ctx, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT count(*) FROM c")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("endless query = %v, want DeadlineExceeded", err)
	}
	if got := one(t, s, "SELECT 1"); got != int64(1) {
		t.Errorf("after the interrupt: %v", got)
	}
	commit(t, db)
}

func TestSQLDeleteAll(t *testing.T) {
	db := openTest(t)
	s := begin(t, db)
	ctx := t.Context()
	empty, err := s.DatabaseSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, s, `
		CREATE TABLE p(id INTEGER PRIMARY KEY AUTOINCREMENT, b BLOB);
		CREATE TABLE c(pid REFERENCES p(id));
		CREATE INDEX c_pid ON c(pid);
		CREATE VIEW v AS SELECT * FROM c;
		CREATE TRIGGER g AFTER INSERT ON p BEGIN INSERT INTO c VALUES (new.id); END;
		CREATE VIRTUAL TABLE f USING fts5(body);
		INSERT INTO f VALUES ('text');
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) INSERT INTO p(b) SELECT zeroblob(1000) FROM n;
		ANALYZE;
		PRAGMA user_version = 3`)
	full, err := s.DatabaseSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := execSQL(t, s, "SELECT name FROM sqlite_schema WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name <> 'sqlite_sequence'").Raw(); len(got) != 0 {
		t.Errorf("left after DeleteAll: %v", got)
	}
	if got := one(t, s, "PRAGMA user_version"); got != int64(0) {
		t.Errorf("user_version = %v", got)
	}
	after, err := s.DatabaseSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after >= full || after > empty+8192 {
		t.Errorf("DatabaseSize: empty %d, full %d, after DeleteAll %d", empty, full, after)
	}
	execSQL(t, s, "CREATE TABLE p(id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO p DEFAULT VALUES")
	if got := one(t, s, "SELECT id FROM p"); got != int64(1) {
		t.Errorf("AUTOINCREMENT restarts at %v", got)
	}
	commit(t, db)
}

func TestSQLOutsideRequest(t *testing.T) {
	db := openTest(t)
	if _, err := db.Storage().SQL().Exec(t.Context(), "SELECT 1"); !errors.Is(err, storage.ErrInvalidState) {
		t.Errorf("Exec outside a request = %v", err)
	}
}

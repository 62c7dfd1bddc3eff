package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"

	lib "modernc.org/sqlite/lib"

	"github.com/opendo/opendo/storage"
)

// Limits of user SQL (Cloudflare's), set on the connection with
// sqlite3_limit, so SQLite enforces them exactly (per statement).
const (
	maxSQLParams   = 100     // bound parameters per statement
	maxSQLLength   = 100000  // bytes per statement
	maxSQLColumns  = 100     // columns per table, index and result set
	maxLikePattern = 50      // bytes of a LIKE or GLOB pattern
	maxValueLength = 2000000 // bytes of a string, BLOB or row ("2 MB")
	maxFuncArgs    = 32      // arguments of an SQL function
)

// sqlAPI is the storage.SQL of a DB.
type sqlAPI struct{ db *DB }

// Exec runs the statements of query one at a time, in order, inside the
// request's transaction. The cursor describes the last statement. When a
// statement fails, the statements before it keep their effects and the
// error is returned. Only the last statement may have parameters; args bind
// to it positionally. Every statement that can change the database is
// recorded as an OpSQL mutation.
func (q sqlAPI) Exec(ctx context.Context, query string, args ...any) (*storage.Cursor, error) {
	db := q.db
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	params, err := normalizeArgs(args)
	if err != nil {
		return nil, err
	}
	if strings.IndexByte(query, 0) >= 0 {
		return nil, fmt.Errorf("%w: SQL contains a NUL byte; bind such values as parameters", storage.ErrInvalidArgument)
	}
	cq, err := db.raw.cstring(query)
	if err != nil {
		return nil, db.fail(err)
	}
	defer db.raw.free(cq)
	defer db.auth.reset(false)

	var cur *storage.Cursor
	for off := 0; off < len(query); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		db.auth.reset(true)
		st, tail, rc := db.raw.prepare(cq + uintptr(off))
		if rc != lib.SQLITE_OK {
			return nil, db.stmtFailed(rc, nil)
		}
		end := int(tail - cq)
		if st.p == 0 {
			if end <= off {
				break
			}
			off = end
			continue
		}
		last := onlyTrivia(query[end:])
		cur, err = db.execUser(ctx, st, strings.TrimSpace(query[off:end]), params, last)
		st.finalize()
		if err != nil {
			return nil, err
		}
		off = end
		if last {
			break
		}
	}
	if cur == nil {
		return nil, fmt.Errorf("%w: SQL code did not contain a statement", storage.ErrInvalidArgument)
	}
	return cur, nil
}

// execUser binds, checks and runs one prepared user statement, and records
// it when it can change the database.
func (db *DB) execUser(ctx context.Context, st cstmt, text string, params []any, last bool) (*storage.Cursor, error) {
	n := st.paramCount()
	switch {
	case !last && n > 0:
		return nil, fmt.Errorf("%w: only the last statement of a multi-statement query can have parameters", storage.ErrInvalidArgument)
	case !last:
		params = nil
	case n != len(params):
		return nil, fmt.Errorf("%w: wrong number of parameter bindings: the statement has %d, %d given", storage.ErrInvalidArgument, n, len(params))
	}
	if err := db.bind(st, params); err != nil {
		return nil, err
	}
	if db.auth.alter {
		if name, ok := renameTarget(text); ok && (reserved(name) || shadowsBuiltin(name)) {
			return nil, fmt.Errorf("%w: cannot rename a table to %q: names starting with %q or %q belong to the runtime",
				storage.ErrReservedName, name, reservedPrefixes[0], reservedPrefixes[1])
		}
	}
	readonly := st.readonly()
	if !readonly {
		if c := unjournaledConflict(text); c != "" {
			return nil, fmt.Errorf("%w: %s is not allowed: a failed statement's partial changes (FAIL) or the end of the "+
				"request's transaction (ROLLBACK) cannot be journaled; use ABORT (the default), IGNORE or REPLACE", storage.ErrForbiddenSQL, c)
		}
	}
	journaled := !readonly || db.auth.pragmaSet
	res, err := db.run(ctx, st, len(db.log), journaled, last)
	if err != nil {
		return nil, err
	}
	if journaled {
		db.record(storage.Mutation{Op: storage.OpSQL, SQL: text, Args: params})
	}
	return storage.NewCursor(res.cols, res.rows, res.read, res.written), nil
}

func (db *DB) bind(st cstmt, params []any) error {
	for i, p := range params {
		if rc := st.bind(i+1, p); rc != lib.SQLITE_OK {
			return db.stmtFailed(rc, nil)
		}
	}
	return nil
}

// result is what one statement produced.
type result struct {
	cols          []string
	rows          [][]any
	read, written int64
}

// undo is the connection state a failed statement puts back.
type undo struct{ rowid, total int64 }

// run steps st to its end with the deterministic inputs of the statement
// at index of the transaction's mutations (see determinism.go); collect
// keeps the rows. It is shared by user SQL and replay, which must see the
// same inputs.
func (db *DB) run(ctx context.Context, st cstmt, index int, journaled, collect bool) (result, error) {
	s := db.sql
	s.statement(index, journaled)
	s.ctx = ctx
	defer func() { s.ctx = nil }()
	u := undo{rowid: db.raw.lastInsertRowid(), total: db.raw.totalChanges()}
	res := result{cols: st.columns()}
	var n int64
	for {
		rc := st.step()
		if rc == lib.SQLITE_ROW {
			n++
			if collect {
				res.rows = append(res.rows, st.row(len(res.cols)))
			}
			continue
		}
		if rc != lib.SQLITE_DONE {
			return result{}, db.stmtFailed(rc, &u)
		}
		break
	}
	res.written = db.raw.totalChanges() - u.total
	res.read = rowsRead(st, n)
	if db.auth.dml && !db.auth.ddl && journaled {
		s.changes = db.raw.changes()
	}
	s.total += res.written
	return res, nil
}

// errLostTxn marks a statement after which SQLite rolled back the request's
// transaction.
var errLostTxn = errors.New("sqlite: the statement ended the request's transaction")

// rowsRead approximates Cloudflare's rowsRead, which counts every row a
// statement's cursors visit (a patched SQLite counter): rows stepped in
// full scans (the first row is not a step) or, when more, rows returned.
// Index lookups, sorts and writes are not counted.
func rowsRead(st cstmt, returned int64) int64 {
	n := st.status(lib.SQLITE_STMTSTATUS_FULLSCAN_STEP)
	if n > 0 {
		n++
	}
	return max(n, returned)
}

// stmtFailed turns a failed statement into an error and repairs what it
// leaves behind: last_insert_rowid() is put back, and inside a request a
// statement that ended the transaction (an interrupted write), kept part
// of its changes (ON CONFLICT FAIL, which execUser refuses, so this is a
// safety net) or hit an I/O error fails the whole request: its effects
// could not be journaled.
func (db *DB) stmtFailed(rc int32, u *undo) error {
	err := db.classify(rc)
	if u == nil || !db.inTx {
		if u != nil {
			db.raw.setLastInsertRowid(u.rowid)
		}
		if fatal(rc) && db.inTx {
			return db.fail(err)
		}
		return err
	}
	db.raw.setLastInsertRowid(u.rowid)
	switch {
	case db.raw.autocommit():
		return db.fail(fmt.Errorf("%w (%w: an interrupted write undoes the whole request)", err, errLostTxn))
	case db.auth.dml && !db.auth.ddl && db.raw.changes() != 0:
		return db.fail(fmt.Errorf("%w (the statement failed but kept some changes; they cannot be journaled, so the request fails)", err))
	case fatal(rc):
		return db.fail(err)
	}
	return err
}

// normalizeArgs converts Go arguments to the values SQLite binds and the
// journal stores: nil, int64, float64, string and []byte (copied). A bool
// is the INTEGER 0 or 1; a nil []byte is NULL.
func normalizeArgs(args []any) ([]any, error) {
	if len(args) == 0 {
		return nil, nil
	}
	out := make([]any, len(args))
	for i, a := range args {
		v, err := normalizeArg(a)
		if err != nil {
			return nil, fmt.Errorf("%w: argument %d: %v", storage.ErrInvalidArgument, i+1, err)
		}
		out[i] = v
	}
	return out, nil
}

func normalizeArg(a any) (any, error) {
	switch x := a.(type) {
	case nil:
		return nil, nil
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case float64:
		return x, nil
	case string:
		return x, nil
	case []byte:
		if x == nil {
			return nil, nil
		}
		return append([]byte{}, x...), nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	}
	v := reflect.ValueOf(a)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := v.Uint(); u <= math.MaxInt64 {
			return int64(u), nil
		}
		return nil, fmt.Errorf("%v is beyond the INTEGER range", a)
	case reflect.Float32, reflect.Float64:
		return v.Float(), nil
	case reflect.String:
		return v.String(), nil
	case reflect.Bool:
		return normalizeArg(v.Bool())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if v.IsNil() {
				return nil, nil
			}
			return append([]byte{}, v.Bytes()...), nil
		}
	}
	return nil, fmt.Errorf("unsupported type %T (use nil, integers, floats, string, []byte or bool)", a)
}

// replaySQL applies a journaled OpSQL mutation, the index-th mutation of
// its transaction, with the transaction's deterministic inputs (set by
// Apply). It runs without the user SQL policy: the statement was allowed
// when it was journaled.
func (db *DB) replaySQL(index int, m *storage.Mutation) error {
	args, err := normalizeArgs(m.Args)
	if err != nil {
		return err
	}
	cq, err := db.raw.cstring(m.SQL)
	if err != nil {
		return err
	}
	defer db.raw.free(cq)
	db.auth.reset(false)
	st, tail, rc := db.raw.prepare(cq)
	if rc != lib.SQLITE_OK {
		return db.classify(rc)
	}
	defer st.finalize()
	if st.p == 0 || !onlyTrivia(m.SQL[int(tail-cq):]) {
		return fmt.Errorf("%w: journaled SQL must hold exactly one statement: %.60q", storage.ErrInvalidArgument, m.SQL)
	}
	if n := st.paramCount(); n != len(args) {
		return fmt.Errorf("%w: journaled SQL has %d parameters, %d arguments", storage.ErrInvalidArgument, n, len(args))
	}
	if err := db.bind(st, args); err != nil {
		return err
	}
	_, err = db.run(context.Background(), st, index, true, false)
	return err
}

// beginSQL starts the deterministic inputs of a transaction: its clock and
// seed, zeroed change counters and last_insert_rowid().
func (db *DB) beginSQL(tc storage.TxContext) {
	db.sql.beginTxn(tc)
	db.raw.setLastInsertRowid(0)
}

// sqlSnapshot is the connection state a rolled-back savepoint restores.
type sqlSnapshot struct{ rowid, changes, total int64 }

func (db *DB) saveSQL() sqlSnapshot {
	return sqlSnapshot{db.raw.lastInsertRowid(), db.sql.changes, db.sql.total}
}

func (db *DB) restoreSQL(s sqlSnapshot) {
	db.raw.setLastInsertRowid(s.rowid)
	db.sql.changes, db.sql.total = s.changes, s.total
}

// queryInternal runs one statement of the runtime's own and returns its
// rows.
func (db *DB) queryInternal(query string, args ...any) ([][]any, error) {
	var rows [][]any
	err := db.eachRow(query, args, func(r []any) error {
		rows = append(rows, r)
		return nil
	})
	return rows, err
}

// eachRow runs one statement of the runtime's own (no user policy, no
// deterministic inputs) and calls fn with each row.
func (db *DB) eachRow(query string, args []any, fn func([]any) error) error {
	cq, err := db.raw.cstring(query)
	if err != nil {
		return err
	}
	defer db.raw.free(cq)
	db.auth.reset(false)
	st, _, rc := db.raw.prepare(cq)
	if rc != lib.SQLITE_OK {
		return fmt.Errorf("sqlite: %s: %w", query, db.classify(rc))
	}
	if st.p == 0 {
		return nil
	}
	defer st.finalize()
	for i, a := range args {
		if rc := st.bind(i+1, a); rc != lib.SQLITE_OK {
			return fmt.Errorf("sqlite: %s: %w", query, db.classify(rc))
		}
	}
	n := len(st.columns())
	for {
		switch rc := st.step(); rc {
		case lib.SQLITE_ROW:
			if err := fn(st.row(n)); err != nil {
				return err
			}
		case lib.SQLITE_DONE:
			return nil
		default:
			return fmt.Errorf("sqlite: %s: %w", query, db.classify(rc))
		}
	}
}

// userObjects selects one user schema object to drop: triggers and views
// first, then virtual tables (which take their shadow tables with them),
// then indexes and tables.
const userObjects = `SELECT type, name FROM sqlite_schema
WHERE type IN ('table', 'view', 'trigger', 'index')
  AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
  AND name NOT LIKE '\_cf\_%' ESCAPE '\'
  AND name NOT LIKE '\_opendo\_%' ESCAPE '\'
ORDER BY type = 'trigger' DESC, type = 'view' DESC, sql LIKE 'CREATE VIRTUAL TABLE%' DESC, type = 'index' DESC, name
LIMIT 1`

// dropUserSchema removes the user's SQL tables, indexes, views and
// triggers, their AUTOINCREMENT counters and statistics, and resets
// user_version, as DeleteAll must. Foreign keys are deferred meanwhile, so
// that tables can go in any order.
func (db *DB) dropUserSchema() error {
	if _, err := db.queryInternal("PRAGMA defer_foreign_keys = ON"); err != nil {
		return err
	}
	for {
		rows, err := db.queryInternal(userObjects)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			break
		}
		kind, _ := rows[0][0].(string)
		name, _ := rows[0][1].(string)
		if _, err := db.queryInternal("DROP " + strings.ToUpper(kind) + " " + quoteIdent(name)); err != nil {
			return err
		}
	}
	rows, err := db.queryInternal("SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ('sqlite_sequence', 'sqlite_stat1', 'sqlite_stat4')")
	if err != nil {
		return err
	}
	for _, r := range rows {
		q := "DROP TABLE " + r[0].(string)
		if r[0] == "sqlite_sequence" {
			q = "DELETE FROM sqlite_sequence"
		}
		if _, err := db.queryInternal(q); err != nil {
			return err
		}
	}
	for _, q := range []string{"PRAGMA user_version = 0", "PRAGMA defer_foreign_keys = OFF"} {
		if _, err := db.queryInternal(q); err != nil {
			return err
		}
	}
	return nil
}

// quoteIdent quotes a SQL identifier.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

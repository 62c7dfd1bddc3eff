package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
)

// stmt is a statement prepared once on the object's connection and reused.
// The runtime's own statements are prepared on first use (see compile):
// Open prepares none of them, so an activation that runs a few requests
// pays only for the statements it runs.
//
// The driver is called with context.Background(): modernc starts a watcher
// goroutine per statement for a context that can be canceled, which would
// cost more than a point read. Callers check their ctx before they start.
type stmt struct {
	text string
	ds   driver.Stmt // nil until prepared
	q    driver.StmtQueryContext
	e    driver.StmtExecContext
}

// prepare prepares text now.
func (db *DB) prepare(text string) (*stmt, error) {
	s := &stmt{text: text}
	if err := db.compile(s); err != nil {
		return nil, err
	}
	return s, nil
}

// compile prepares s if it is not prepared yet; Close closes it. The
// runtime's statements may be prepared in the middle of a user statement's
// bookkeeping, so the authorizer's state is set aside meanwhile: they are
// never checked against the user SQL policy and leave no trace in it.
func (db *DB) compile(s *stmt) error {
	if s.ds != nil {
		return nil
	}
	saved := db.auth
	db.auth.reset(false)
	ds, err := db.prep.PrepareContext(context.Background(), s.text)
	db.auth = saved
	if err != nil {
		return fmt.Errorf("sqlite: prepare %q: %w", s.text, markCorrupt(err))
	}
	q, okQ := ds.(driver.StmtQueryContext)
	e, okE := ds.(driver.StmtExecContext)
	if !okQ || !okE {
		ds.Close()
		return fmt.Errorf("sqlite: driver statement %T lacks context methods", ds)
	}
	s.ds, s.q, s.e = ds, q, e
	db.prepared = append(db.prepared, s)
	return nil
}

// args1 and args2 fill the connection's argument scratch space; exec and
// query clear it again so that no value outlives its call.
func (db *DB) args1(a driver.Value) []driver.NamedValue {
	db.argv[0] = driver.NamedValue{Ordinal: 1, Value: a}
	return db.argv[:1]
}

func (db *DB) args2(a, b driver.Value) []driver.NamedValue {
	db.argv[0] = driver.NamedValue{Ordinal: 1, Value: a}
	db.argv[1] = driver.NamedValue{Ordinal: 2, Value: b}
	return db.argv[:2]
}

// exec runs s and returns the number of rows it changed.
func (db *DB) exec(s *stmt, args []driver.NamedValue) (int64, error) {
	if err := db.compile(s); err != nil {
		clear(args)
		return 0, err
	}
	res, err := s.e.ExecContext(context.Background(), args)
	clear(args)
	if err != nil {
		return 0, fmt.Errorf("sqlite: %s: %w", s.text, markCorrupt(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: %s: %w", s.text, markCorrupt(err))
	}
	return n, nil
}

// query runs s; the caller reads the rows with next and must close them.
func (db *DB) query(s *stmt, args []driver.NamedValue) (driver.Rows, error) {
	if err := db.compile(s); err != nil {
		clear(args)
		return nil, err
	}
	rows, err := s.q.QueryContext(context.Background(), args)
	clear(args)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", s.text, markCorrupt(err))
	}
	return rows, nil
}

// next reads the next row into dest; ok is false at the end of the rows.
func next(s *stmt, rows driver.Rows, dest []driver.Value) (ok bool, err error) {
	switch err := rows.Next(dest); err {
	case nil:
		return true, nil
	case io.EOF:
		return false, nil
	default:
		return false, fmt.Errorf("sqlite: %s: %w", s.text, markCorrupt(err))
	}
}

// queryInt64 runs a query that returns at most one integer.
func (db *DB) queryInt64(s *stmt, args []driver.NamedValue) (v int64, ok bool, err error) {
	rows, err := db.query(s, args)
	if err != nil {
		return 0, false, err
	}
	dest := db.dest[:1]
	ok, err = next(s, rows, dest)
	if cerr := rows.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("sqlite: %s: %w", s.text, markCorrupt(cerr))
	}
	if err != nil || !ok {
		return 0, false, err
	}
	v, isInt := dest[0].(int64)
	if !isInt {
		err = fmt.Errorf("sqlite: %s: got %T, want an integer", s.text, dest[0])
	}
	dest[0] = nil
	return v, isInt, err
}

// blob returns b as a SQLite BLOB argument. The driver binds a nil slice as
// NULL, so an empty one must be non-nil.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// keyArg returns key as a BLOB argument. Keys are always bound as []byte: a
// key bound as a Go string would be TEXT, which never equals a BLOB.
func keyArg(key string) []byte {
	return blob([]byte(key))
}

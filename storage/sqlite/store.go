package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/opendo/opendo/storage"
)

// store is the storage.Storage handed to handlers. It is a separate type
// from DB so that a handler cannot reach Commit or Apply by a type assertion.
type store struct {
	db  *DB
	sql sqlAPI
}

var (
	_ storage.Storage = (*store)(nil)
	_ storage.SQL     = sqlAPI{}
)

// ready reports whether the handle may be used now: inside the request
// transaction, with a live context, and no earlier SQLite failure.
func (db *DB) ready(ctx context.Context) error {
	if !db.inTx {
		if db.closed {
			return errClosed
		}
		return errNoRequest
	}
	if db.broken != nil {
		return fmt.Errorf("sqlite: request failed earlier: %w", db.broken)
	}
	return ctx.Err()
}

// fail records a SQLite failure in the middle of a request: the request's
// state is unknown, so Commit will refuse it.
func (db *DB) fail(err error) error {
	if db.broken == nil {
		db.broken = err
	}
	return err
}

func (db *DB) record(m storage.Mutation) { db.log = append(db.log, m) }

// Transaction runs fn inside a savepoint. When fn returns an error the
// savepoint is rolled back, the mutations recorded since it began are
// dropped, and fn's error is returned unchanged. When fn panics (or calls
// runtime.Goexit) the same rollback happens while the panic goes on
// unchanged; it is recovered only at the object boundary.
func (s *store) Transaction(ctx context.Context, fn func(tx storage.Tx) error) (err error) {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return err
	}
	if _, err := db.exec(db.st.savepoint, nil); err != nil {
		return db.fail(err)
	}
	db.depth++
	mark, saved := len(db.log), db.saveSQL()
	returned := false
	defer func() {
		db.depth--
		if !db.inTx {
			return // the request ended inside fn (a misuse); nothing to undo
		}
		if returned && err == nil {
			if _, rerr := db.exec(db.st.release, nil); rerr != nil {
				err = db.fail(rerr)
			}
			return
		}
		_, rerr := db.exec(db.st.rollbackTo, nil)
		if rerr == nil {
			_, rerr = db.exec(db.st.release, nil)
		}
		if rerr != nil {
			db.fail(rerr)
			if returned {
				err = fmt.Errorf("%w (rollback failed: %v)", err, rerr)
			}
		}
		clear(db.log[mark:])
		db.log = db.log[:mark]
		db.restoreSQL(saved)
	}()
	err = fn(s)
	returned = true
	return err
}

// DeleteAll deletes all keys and the alarm. Inside a Transaction it returns
// storage.ErrInvalidState and changes nothing.
func (s *store) DeleteAll(ctx context.Context) error {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return err
	}
	if db.depth > 0 {
		return fmt.Errorf("%w: deleteAll inside a transaction", storage.ErrInvalidState)
	}
	if err := db.deleteAllRows(); err != nil {
		return db.fail(err)
	}
	db.record(storage.Mutation{Op: storage.OpDeleteAll})
	return nil
}

// deleteAllRows is DeleteAll's effect, shared with Apply.
func (db *DB) deleteAllRows() error {
	if _, err := db.exec(db.st.delAll, nil); err != nil {
		return err
	}
	if _, err := db.exec(db.st.metaDel, db.args1(metaAlarm)); err != nil {
		return err
	}
	return db.dropUserSchema()
}

// Sync does nothing: the runtime wraps the handle and makes writes durable.
func (s *store) Sync(ctx context.Context) error { return s.db.ready(ctx) }

// DatabaseSize returns the bytes of the pages in use.
func (s *store) DatabaseSize(ctx context.Context) (int64, error) {
	db := s.db
	if err := db.ready(ctx); err != nil {
		return 0, err
	}
	n, _, err := db.queryInt64(db.st.size, nil)
	if err != nil {
		return 0, db.fail(err)
	}
	return n, nil
}

// SQL returns the object's SQL API.
func (s *store) SQL() storage.SQL { return s.sql }

// errNoBookmarks: bookmarks name journal entries; a bare database has none.
var errNoBookmarks = fmt.Errorf("%w: bookmarks need the runtime's journal (package actor)", storage.ErrNotImplemented)

// Bookmark returns storage.ErrNotImplemented: the runtime provides it.
func (s *store) Bookmark(ctx context.Context) (string, error) { return "", errNoBookmarks }

// BookmarkForTime returns storage.ErrNotImplemented: the runtime provides it.
func (s *store) BookmarkForTime(ctx context.Context, t time.Time) (string, error) {
	return "", errNoBookmarks
}

// RestoreBookmark returns storage.ErrNotImplemented: the runtime provides it.
func (s *store) RestoreBookmark(ctx context.Context, bookmark string) (string, error) {
	return "", errNoBookmarks
}

package sqlite

import (
	"context"
	"fmt"

	"github.com/opendo/opendo/storage"
)

// sqlAPI is the seam for user SQL, which is not built yet.
//
// TODO(sql): run statements one at a time on the object's connection with
// an authorizer that keeps user SQL away from the reserved _cf_ tables and
// from transaction control; record each write as an OpSQL mutation (or a
// changeset) that replaySQL reproduces with the transaction's TxContext.
type sqlAPI struct{ db *DB }

// Exec returns storage.ErrNotImplemented for now.
func (q sqlAPI) Exec(ctx context.Context, query string, args ...any) (*storage.Cursor, error) {
	if err := q.db.ready(ctx); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: SQL", storage.ErrNotImplemented)
}

// dropUserSchema removes the user's SQL tables, indexes, views and
// triggers, as DeleteAll must.
//
// TODO(sql): drop every schema object whose name does not start with _cf_.
func (db *DB) dropUserSchema() error { return nil }

// replaySQL applies a journaled OpSQL mutation.
//
// TODO(sql): run m.SQL with m.Args under tc's deterministic time and seed.
func (db *DB) replaySQL(tc storage.TxContext, m *storage.Mutation) error {
	return fmt.Errorf("%w: replaying SQL", storage.ErrNotImplemented)
}

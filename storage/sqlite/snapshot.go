package sqlite

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"modernc.org/sqlite"

	"github.com/opendo/opendo/storage"
)

// Snapshot writes a consistent copy of the database to a new file at dst
// with SQLite's online backup (page by page through SQLite: no lock of the
// live file is disturbed) and returns the journal sequence the copy
// reflects. The file must be clean (no local commits beyond its recorded
// sequence: MarkDurable first) and no request may be open. dst must not
// exist.
func (db *DB) Snapshot(ctx context.Context, dst string) (uint64, error) {
	switch {
	case db.closed:
		return 0, errClosed
	case db.inTx:
		return 0, errInRequest
	case db.lastTx != db.seqTx:
		return 0, fmt.Errorf("%w: %s has commits beyond journal sequence %d; record the durable sequence first", storage.ErrInvalidState, db.path, db.seq)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if _, err := os.Stat(dst); err == nil {
		return 0, fmt.Errorf("%w: snapshot target %s exists", storage.ErrInvalidArgument, dst)
	}
	b, ok := db.conn.(interface {
		NewBackup(dstURI string) (*sqlite.Backup, error)
	})
	if !ok {
		return 0, fmt.Errorf("sqlite: driver connection %T has no backup API", db.conn)
	}
	abs, err := filepath.Abs(dst)
	if err != nil {
		return 0, err
	}
	bk, err := b.NewBackup("file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath())
	if err != nil {
		return 0, fmt.Errorf("sqlite: snapshot %s: %w", db.path, err)
	}
	_, err = bk.Step(-1)
	if ferr := bk.Finish(); err == nil {
		err = ferr
	}
	if err != nil {
		return 0, errors.Join(fmt.Errorf("sqlite: snapshot %s: %w", db.path, err), os.Remove(dst))
	}
	return db.seq, nil
}

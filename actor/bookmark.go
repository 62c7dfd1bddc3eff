package actor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/internal/rebuild"
	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
	"github.com/opendo/opendo/storage/sqlite"
)

// restoreRequest is a restore asked for by the current request.
type restoreRequest struct {
	target journal.Bookmark
	alarm  alarmEffect // the target state's alarm
}

// Bookmark returns a bookmark of the state left by the transactions
// committed before the current request, once they are journaled.
func (s objectStorage) Bookmark(ctx context.Context) (string, error) {
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	b, err := s.o.currentBookmark(ctx)
	if err != nil {
		return "", err
	}
	return b.String(), nil
}

// BookmarkForTime returns a bookmark of the state after the last entry
// written at or before t.
func (s objectStorage) BookmarkForTime(ctx context.Context, t time.Time) (string, error) {
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	o := s.o
	if err := s.Sync(ctx); err != nil {
		return "", err
	}
	if o.lastSeq == 0 {
		return journal.Bookmark{}.String(), nil
	}
	var b journal.Bookmark
	var found bool
	err := o.rt.jr.Read(ctx, o.subject, 0, o.lastSeq, func(seq uint64, e *journal.Entry) error {
		if e.Time.After(t) {
			return errStopRead
		}
		b, found = journal.Bookmark{Seq: seq, CommitID: e.CommitID}, true
		return nil
	})
	if err != nil && !errors.Is(err, errStopRead) {
		return "", o.journalError("read the journal", err)
	}
	if !found {
		// Before the first entry left: the empty state, if that entry is
		// the object's first; otherwise what came before was purged.
		first, fromStart, err := o.rt.jr.Origin(ctx, o.subject)
		if err != nil {
			return "", o.journalError("read the journal", err)
		}
		if !fromStart {
			return "", fmt.Errorf("%w: no state as of %s: the history before seq %d was purged (retention)", storage.ErrBookmarkExpired, t.UTC().Format(time.RFC3339Nano), first)
		}
		return journal.Bookmark{}.String(), nil
	}
	if err := o.source().Check(ctx, b.Seq); err != nil {
		if errors.Is(err, storage.ErrBookmarkExpired) {
			return "", fmt.Errorf("%w: no state as of %s: %v", storage.ErrBookmarkExpired, t.UTC().Format(time.RFC3339Nano), err)
		}
		return "", o.journalError("check the history", err)
	}
	return b.String(), nil
}

var errStopRead = errors.New("stop reading")

// invalidBookmark turns the journal's ErrInvalidBookmark into storage's.
func invalidBookmark(err error) error {
	msg := strings.TrimPrefix(err.Error(), journal.ErrInvalidBookmark.Error()+": ")
	return fmt.Errorf("%w: %s", storage.ErrInvalidBookmark, msg)
}

// RestoreBookmark validates bookmark, builds its state once to learn its
// alarm (and to be sure it can be built), and makes the current request's
// transaction a restore to it.
func (s objectStorage) RestoreBookmark(ctx context.Context, bookmark string) (string, error) {
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	o := s.o
	b, err := journal.ParseBookmark(bookmark)
	if err != nil {
		return "", invalidBookmark(err)
	}
	undo, err := o.currentBookmark(ctx)
	if err != nil {
		return "", err
	}
	if b.Seq > o.lastSeq {
		return "", fmt.Errorf("%w: %s is not a bookmark of this object (its last entry is %d)", storage.ErrInvalidBookmark, bookmark, o.lastSeq)
	}
	// No purge may run between this check and the restore's activation,
	// which rebuilds the target state from the journal: the object takes
	// no snapshot (nor purges) until it closes after the restore.
	if err := o.waitSnapshot(ctx); err != nil {
		return "", err
	}
	if err := o.rt.jr.Check(ctx, o.subject, b); err != nil {
		if errors.Is(err, journal.ErrInvalidBookmark) {
			if first, _, ferr := o.rt.jr.Origin(ctx, o.subject); ferr == nil && b.Seq < first {
				return "", fmt.Errorf("%w: %s: the history before seq %d was purged (retention)", storage.ErrBookmarkExpired, bookmark, first)
			}
			return "", invalidBookmark(err)
		}
		return "", o.journalError("check the bookmark", err)
	}
	alarm, err := o.restoredAlarm(ctx, b.Seq)
	if err != nil {
		return "", err
	}
	o.restoreTo = &restoreRequest{target: b, alarm: alarm}
	return undo.String(), nil
}

// ready refuses bookmark calls outside a request, as the storage does.
func (s objectStorage) ready(ctx context.Context) error {
	return s.Storage.Sync(ctx) // the database's own: it only checks the request is open
}

// source is the object's history, for rebuilds.
func (o *object) source() *rebuild.Source {
	return &rebuild.Source{Journal: o.rt.jr, Snapshots: o.rt.snaps, Subject: o.subject, TempDir: o.rt.tmpDir(),
		Options: sqlite.Options{CacheKiB: o.rt.cfg.CacheKiB}}
}

// currentBookmark waits until the transactions committed so far are
// journaled and returns the bookmark of the last entry.
func (o *object) currentBookmark(ctx context.Context) (journal.Bookmark, error) {
	if err := (objectStorage{o: o}).Sync(ctx); err != nil {
		return journal.Bookmark{}, err
	}
	if o.lastSeq == 0 {
		return journal.Bookmark{}, nil
	}
	if !o.lastCommitOK {
		e, ok, err := o.rt.jr.EntryAt(ctx, o.subject, o.lastSeq)
		if err != nil {
			return journal.Bookmark{}, o.journalError("read the last entry", err)
		}
		if !ok {
			return journal.Bookmark{}, Errorf(http.StatusInternalServerError, CodeInternal, "the journal has no entry at seq %d of %s", o.lastSeq, o.subject)
		}
		o.lastCommit, o.lastCommitOK = e.CommitID, true
	}
	return journal.Bookmark{Seq: o.lastSeq, CommitID: o.lastCommit}, nil
}

// restoredAlarm builds the state as of seq into a scratch file and returns
// its alarm: the restore schedules it before it is journaled, as any
// alarm change.
func (o *object) restoredAlarm(ctx context.Context, seq uint64) (alarmEffect, error) {
	tmp := filepath.Join(o.rt.tmpDir(), "bookmark-"+ulid.Make().String()+".db")
	defer removeDB(tmp)
	db, _, err := o.source().Build(ctx, tmp, seq)
	if err != nil {
		if errors.Is(err, storage.ErrBookmarkExpired) {
			return alarmEffect{}, fmt.Errorf("%w: %v", storage.ErrBookmarkExpired, err)
		}
		return alarmEffect{}, o.journalError("build the bookmark's state", err)
	}
	defer db.Close()
	ms, ok, err := db.AlarmTime(ctx)
	if err != nil {
		return alarmEffect{}, err
	}
	return alarmEffect{changed: true, set: ok, ms: ms}, nil
}

// journalError reports a failure to read the journal as unavailable.
func (o *object) journalError(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return Errorf(http.StatusServiceUnavailable, CodeUnavailable, "%s of %s: %v", what, o.subject, err)
}

// commitRestore replaces the request's transaction by a restore: its
// writes are rolled back, and one entry holding only the restore is queued.
func (o *object) commitRestore(ctx context.Context, reqID string, tc storage.TxContext) error {
	r := o.restoreTo
	o.restoreTo = nil
	if err := o.db.Rollback(context.WithoutCancel(ctx)); err != nil {
		o.broken = err
		return Errorf(http.StatusInternalServerError, CodeInternal, "rollback: %v", err)
	}
	o.waitFlush() // the restore is alone in its entry
	if o.broken != nil {
		return Errorf(http.StatusServiceUnavailable, CodeUnavailable, "journal append failed: %v", o.broken)
	}
	tx := storage.Txn{RequestID: reqID, Context: tc, Mutations: []storage.Mutation{{Op: storage.OpRestore, Target: r.target.Seq}}}
	o.open = []storage.Txn{tx}
	o.openSize = journal.TxnSize(&tx)
	o.restoreAlarm = r.alarm
	o.restoreGroup = o.gate()
	o.flush()
	return nil
}

// finishRestore waits until the restore entry is durable (which releases
// the request's reply), then closes the object and removes its file: the
// next activation builds the restored state from the journal.
func (o *object) finishRestore() {
	for (o.inflight || len(o.open) > 0 || o.durable < o.restoreGroup) && o.broken == nil {
		if !o.inflight && len(o.open) > 0 {
			o.flush()
			continue
		}
		o.await()
	}
	if o.broken != nil {
		o.reset()
		return
	}
	o.rt.log.Info("object restored to a bookmark; it restarts on its next request", logNS, o.ns.name, logID, o.id, "seq", o.lastSeq)
	o.rt.release(o, true)
	o.closeFiles(true)
	o.redeliverQueued()
}

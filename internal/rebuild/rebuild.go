// Package rebuild materializes an object's state as of a journal sequence
// into a SQLite file: from its newest usable snapshot, or its whole
// history, rolled forward with journal entries, resolving bookmark
// restores (a restore entry replaces the state by the state as of its
// target, which is built the same way, recursively). The runtime uses it on
// activation, the opendo journal commands for replay, fork and verify.
package rebuild

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
	"github.com/opendo/opendo/storage/sqlite"
)

// Entries are applied in one SQLite transaction per batch of at most
// applyBatch entries or about applyBatchBytes of keys, values and SQL.
const (
	applyBatch      = 256
	applyBatchBytes = 16 << 20
)

// Source is one object's history: its journal subject and its snapshots.
type Source struct {
	Journal   *journal.Journal
	Snapshots *journal.Snapshots // nil: the object has no snapshots
	Subject   string
	Options   sqlite.Options // for the files it opens
	// OnEntry, if set, is called after each entry is read (progress).
	OnEntry func(seq uint64)
}

// Stats describe a rebuild.
type Stats struct {
	Snapshot *journal.SnapshotInfo // the snapshot the state starts from, if any
	Seq      uint64                // the sequence of the state built
	Entries  int                   // entries applied after the starting point
	Txns     int                   // their transactions
	Restores int                   // restore entries resolved (at any depth)
	LastTime time.Time             // the time of the last entry applied
	Skips    []error               // snapshots that could not be used
}

// PurgedError: the state asked for needs journal entries that retention
// has purged (and no kept snapshot or restore entry stands in for them).
// It matches storage.ErrBookmarkExpired.
type PurgedError struct {
	Subject  string
	Seq      uint64 // the sequence asked for
	First    uint64 // the first entry left in the journal (0: none)
	Earliest uint64 // the oldest kept snapshot's sequence (0: none)
}

func (e *PurgedError) Error() string {
	s := fmt.Sprintf("%s: the state as of seq %d cannot be rebuilt: history before seq %d was purged (retention)", e.Subject, e.Seq, e.First)
	if e.Earliest != 0 {
		s += fmt.Sprintf("; the earliest point available is seq %d", e.Earliest)
	}
	return s
}

// Is makes a PurgedError match storage.ErrBookmarkExpired.
func (e *PurgedError) Is(target error) bool { return target == storage.ErrBookmarkExpired }

// history is what is left of an object's history.
type history struct {
	snaps     []journal.SnapshotInfo // oldest first
	first     uint64                 // first entry left, 0 if none
	fromStart bool                   // first is the object's very first entry
	last      uint64                 // last entry, 0 if none
}

func (s *Source) history(ctx context.Context) (*history, error) {
	h := new(history)
	var err error
	if s.Snapshots != nil {
		if h.snaps, err = s.Snapshots.List(ctx, s.Subject); err != nil {
			return nil, err
		}
	}
	if h.first, h.fromStart, err = s.Journal.Origin(ctx, s.Subject); err != nil {
		return nil, err
	}
	if h.last, err = s.Journal.LastSeq(ctx, s.Subject); err != nil {
		return nil, err
	}
	return h, nil
}

// Last returns the sequence of the subject's last entry (0 if none).
func (s *Source) Last(ctx context.Context) (uint64, error) {
	return s.Journal.LastSeq(ctx, s.Subject)
}

// Build materializes the state as of seq upto (the state after the last
// entry at or before it; 0 is the empty state) into a new file at path,
// replacing any file there, and returns it open.
func (s *Source) Build(ctx context.Context, path string, upto uint64) (*sqlite.DB, Stats, error) {
	h, err := s.history(ctx)
	if err != nil {
		return nil, Stats{}, err
	}
	if upto > h.last {
		return nil, Stats{}, fmt.Errorf("%w: %s: seq %d is after the last entry (%d)", journal.ErrInvalidArgument, s.Subject, upto, h.last)
	}
	var st Stats
	db, err := s.build(ctx, h, path, upto, 0, &st)
	return db, st, err
}

// CatchUp rolls db, a clean file of the subject at its recorded sequence,
// forward to upto (0: the last entry), and returns the file to use from
// now on: a restore entry replaces the file by a new one at the same path
// (db is then closed). On error, the file is closed.
func (s *Source) CatchUp(ctx context.Context, db *sqlite.DB, upto uint64) (*sqlite.DB, Stats, error) {
	var st Stats
	if upto == 0 {
		last, err := s.Journal.LastSeq(ctx, s.Subject)
		if err != nil {
			db.Close()
			return nil, st, err
		}
		upto = last
	}
	seq, _ := db.Seq()
	db, err := s.catchUp(ctx, nil, db, seq, upto, 0, &st)
	return db, st, err
}

// Check returns nil if the state as of upto can be rebuilt, a *PurgedError
// if its history is gone; it reads the journal but builds nothing. (A
// snapshot that turns out to be corrupt can still make a Build fail.)
func (s *Source) Check(ctx context.Context, upto uint64) error {
	h, err := s.history(ctx)
	if err != nil {
		return err
	}
	for {
		if upto == 0 || h.fromStart {
			return nil
		}
		for _, info := range h.snaps {
			if info.Seq <= upto {
				return nil
			}
		}
		_, target, ok, err := s.lastRestore(ctx, h, upto)
		if err != nil {
			return err
		}
		if !ok {
			return s.purged(h, upto)
		}
		upto = target
	}
}

func (s *Source) purged(h *history, upto uint64) error {
	e := &PurgedError{Subject: s.Subject, Seq: upto, First: h.first}
	if len(h.snaps) > 0 {
		e.Earliest = h.snaps[0].Seq
	}
	return e
}

// lastRestore finds the last restore entry at or before upto among the
// entries left.
func (s *Source) lastRestore(ctx context.Context, h *history, upto uint64) (seq, target uint64, ok bool, err error) {
	if h.first == 0 || h.first > upto {
		return 0, 0, false, nil
	}
	err = s.Journal.Read(ctx, s.Subject, h.first-1, upto, func(at uint64, e *journal.Entry) error {
		if t, is := e.Restore(); is {
			if t >= at {
				return fmt.Errorf("%w: %s seq %d restores seq %d, not an earlier one", journal.ErrCorrupt, s.Subject, at, t)
			}
			seq, target, ok = at, t, true
		}
		return nil
	})
	return seq, target, ok, err
}

// build materializes the state as of upto into a new file at path.
func (s *Source) build(ctx context.Context, h *history, path string, upto uint64, depth int, st *Stats) (*sqlite.DB, error) {
	if err := removeFiles(path); err != nil {
		return nil, err
	}
	var (
		db   *sqlite.DB
		from uint64
		err  error
	)
	for i := len(h.snaps) - 1; i >= 0 && db == nil && upto > 0; i-- {
		info := h.snaps[i]
		if info.Seq > upto {
			continue
		}
		if db, err = s.openSnapshot(ctx, info, path); err != nil {
			if errors.Is(err, journal.ErrSnapshotNotFound) || errors.Is(err, journal.ErrCorrupt) {
				st.Skips = append(st.Skips, err)
				continue
			}
			return nil, err
		}
		from = info.Seq
		if depth == 0 {
			st.Snapshot = &info
		}
	}
	if db == nil {
		if err := removeFiles(path); err != nil {
			return nil, err
		}
		if upto > 0 && !h.fromStart {
			// No snapshot and no complete history: only a restore entry
			// can say what the state was.
			r, target, ok, err := s.lastRestore(ctx, h, upto)
			if err != nil {
				return nil, err
			}
			if !ok {
				err := s.purged(h, upto)
				if len(st.Skips) > 0 {
					err = fmt.Errorf("%w (unusable snapshots: %w)", err, errors.Join(st.Skips...))
				}
				return nil, err
			}
			if db, err = s.build(ctx, h, path, target, depth+1, st); err != nil {
				return nil, err
			}
			e, ok, err := s.Journal.EntryAt(ctx, s.Subject, r)
			if err != nil || !ok {
				db.Close()
				return nil, errors.Join(fmt.Errorf("%s: restore entry %d vanished", s.Subject, r), err)
			}
			if err := finishRestore(ctx, db, r, e); err != nil {
				db.Close()
				return nil, err
			}
			st.Restores++
			from = r
		} else if db, err = sqlite.Open(ctx, path, s.Options); err != nil {
			return nil, err
		}
	}
	if depth == 0 {
		st.Seq = from
	}
	return s.catchUp(ctx, h, db, from, upto, depth, st)
}

// openSnapshot fetches snapshot info to path and opens it.
func (s *Source) openSnapshot(ctx context.Context, info journal.SnapshotInfo, path string) (*sqlite.DB, error) {
	if err := s.Snapshots.Fetch(ctx, info, path); err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, path, s.Options)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open the snapshot of %s at seq %d: %w", s.Subject, info.Seq, err), removeFiles(path))
	}
	if got, dirty := db.Seq(); got != info.Seq || dirty {
		db.Close()
		return nil, errors.Join(fmt.Errorf("%w: the snapshot of %s tagged seq %d records seq %d (dirty %v)", journal.ErrCorrupt, s.Subject, info.Seq, got, dirty), removeFiles(path))
	}
	return db, nil
}

// errRestore stops a read at a restore entry.
var errRestore = errors.New("restore entry")

// catchUp applies the entries after seq from up to upto to db, resolving
// restore entries. It closes db on error.
func (s *Source) catchUp(ctx context.Context, h *history, db *sqlite.DB, from, upto uint64, depth int, st *Stats) (*sqlite.DB, error) {
	var (
		txns    []storage.Txn
		entries int
		size    int
		applied uint64 // sequence of the last entry read and batched
		restore *journal.Entry
		at      uint64
	)
	flush := func() error {
		if entries == 0 {
			return nil
		}
		if err := db.Apply(ctx, applied, txns); err != nil {
			return fmt.Errorf("%s: apply entries up to seq %d: %w", s.Subject, applied, err)
		}
		clear(txns)
		txns, entries, size = txns[:0], 0, 0
		return nil
	}
	for from < upto {
		restore = nil
		err := s.Journal.Read(ctx, s.Subject, from, upto, func(seq uint64, e *journal.Entry) error {
			if s.OnEntry != nil {
				s.OnEntry(seq)
			}
			if e.FromSnapshot {
				return fmt.Errorf("%s: entry %d starts from its own snapshot, which was not found (pruned?)", s.Subject, seq)
			}
			if depth == 0 {
				st.Entries++
				st.Txns += len(e.Txns)
				st.Seq, st.LastTime = seq, e.Time
			}
			if _, ok := e.Restore(); ok {
				restore, at = e, seq
				return errRestore
			}
			txns = append(txns, e.Txns...)
			entries++
			applied = seq
			for i := range e.Txns {
				size += journal.TxnSize(&e.Txns[i])
			}
			if entries >= applyBatch || size >= applyBatchBytes {
				return flush()
			}
			return nil
		})
		if err != nil && !errors.Is(err, errRestore) {
			db.Close()
			return nil, err
		}
		if err := flush(); err != nil {
			db.Close()
			return nil, err
		}
		if restore == nil {
			break
		}
		var rerr error
		if db, rerr = s.applyRestore(ctx, h, db, at, restore, depth, st); rerr != nil {
			return nil, rerr
		}
		from = at
	}
	return db, nil
}

// applyRestore replaces db by the state as of the target of restore entry
// e (at seq r), recorded as of r.
func (s *Source) applyRestore(ctx context.Context, h *history, db *sqlite.DB, r uint64, e *journal.Entry, depth int, st *Stats) (*sqlite.DB, error) {
	target, _ := e.Restore()
	path := db.Path()
	if err := db.Close(); err != nil {
		return nil, err
	}
	if target >= r {
		return nil, fmt.Errorf("%w: %s seq %d restores seq %d, not an earlier one", journal.ErrCorrupt, s.Subject, r, target)
	}
	if h == nil {
		var err error
		if h, err = s.history(ctx); err != nil {
			return nil, err
		}
	}
	tmp := path + ".restore-" + ulid.Make().String()
	tdb, err := s.build(ctx, h, tmp, target, depth+1, st)
	if err != nil {
		return nil, errors.Join(err, removeFiles(tmp))
	}
	if err := tdb.Close(); err != nil {
		return nil, errors.Join(err, removeFiles(tmp))
	}
	if err := removeFiles(path); err != nil {
		return nil, errors.Join(err, removeFiles(tmp))
	}
	for _, suffix := range []string{"", "-wal"} {
		if err := os.Rename(tmp+suffix, path+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, errors.Join(err, removeFiles(tmp))
		}
	}
	if err := removeFiles(tmp); err != nil {
		return nil, err
	}
	if db, err = sqlite.Open(ctx, path, s.Options); err != nil {
		return nil, err
	}
	if err := finishRestore(ctx, db, r, e); err != nil {
		db.Close()
		return nil, err
	}
	st.Restores++
	return db, nil
}

// finishRestore records restore entry e (at seq r) as applied to db, which
// holds its target state.
func finishRestore(ctx context.Context, db *sqlite.DB, r uint64, e *journal.Entry) error {
	tx := e.Txns[0]
	tx.Mutations = nil
	return db.Apply(ctx, r, []storage.Txn{tx})
}

// removeFiles removes a SQLite file and its companions, if they exist.
func removeFiles(path string) error {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

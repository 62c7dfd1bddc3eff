package rebuild

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	// TempDir holds the temporary files of restores (the target states
	// being built); default: the directory of the file being built. It
	// must be on the same file system (files are renamed into place).
	TempDir string
	// OnEntry, if set, is called after each entry is read to be applied
	// (progress). Entries that a later restore entry supersedes may be
	// skipped, unreported.
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
	Subject string
	// Seq is the sequence whose state is needed: the one asked for, or
	// the target of a restore entry it leads to.
	Seq      uint64
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

// start returns where the state as of upto is built from, if not through a
// restore entry: after the newest snapshot at or before upto, or after 0
// if the history is complete; ok is false if neither exists.
func (h *history) start(upto uint64) (after uint64, ok bool) {
	for i := len(h.snaps) - 1; i >= 0; i-- {
		if h.snaps[i].Seq <= upto {
			return h.snaps[i].Seq, true
		}
	}
	return 0, h.fromStart
}

// Build materializes the state as of seq upto (the state after the last
// entry at or before it; 0 is the empty state) into a new file at path,
// replacing any file there, and returns it open.
func (s *Source) Build(ctx context.Context, path string, upto uint64) (*sqlite.DB, Stats, error) {
	h, err := s.history(ctx)
	if err != nil {
		return nil, Stats{}, err
	}
	if err := s.checkUpto(h, upto); err != nil {
		return nil, Stats{}, err
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
	st.Seq = seq
	db, err := s.catchUp(ctx, nil, db, seq, upto, 0, &st)
	return db, st, err
}

func (s *Source) checkUpto(h *history, upto uint64) error {
	if upto > h.last {
		return fmt.Errorf("%w: %s: seq %d is after the last entry (%d)", journal.ErrInvalidArgument, s.Subject, upto, h.last)
	}
	return nil
}

// Check returns nil if the state as of upto can be rebuilt, a *PurgedError
// if its history is gone, or the error Build would meet in the journal (a
// restore entry to a later state, an entry whose own snapshot is gone). It
// reads the entries Build would start from (those after the newest
// snapshot at or before upto, and those the restore entries among them
// lead to) but builds nothing. (A snapshot that turns out to be corrupt can
// still make a Build fail.)
func (s *Source) Check(ctx context.Context, upto uint64) error {
	h, err := s.history(ctx)
	if err != nil {
		return err
	}
	if err := s.checkUpto(h, upto); err != nil {
		return err
	}
	for upto > 0 {
		after, ok := h.start(upto)
		t, err := s.scan(ctx, after, upto)
		switch {
		case err != nil:
			return err
		case t.restore == 0 && !ok:
			return s.purged(h, upto)
		case t.fromSnapshot != 0:
			return s.fromSnapshotError(t.fromSnapshot)
		case t.restore == 0:
			return nil
		}
		target, _ := t.entry.Restore()
		if upto, _, err = s.follow(ctx, target); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) purged(h *history, upto uint64) error {
	e := &PurgedError{Subject: s.Subject, Seq: upto, First: h.first}
	if len(h.snaps) > 0 {
		e.Earliest = h.snaps[0].Seq
	}
	return e
}

// tail is what scan finds among a range of entries.
type tail struct {
	restore uint64         // the last restore entry, 0 if none
	entry   *journal.Entry // that entry
	// fromSnapshot is the first entry after the last restore entry (or of
	// all, if there is none) that starts from its own snapshot, 0 if none.
	fromSnapshot uint64
}

// scan reads the entries with after < seq <= upto (upto > 0) for the
// restore entries and entries starting from a snapshot among them. A
// restore entry whose target is not an earlier state is an error wrapping
// journal.ErrCorrupt.
func (s *Source) scan(ctx context.Context, after, upto uint64) (tail, error) {
	var t tail
	err := s.Journal.Read(ctx, s.Subject, after, upto, func(seq uint64, e *journal.Entry) error {
		if target, ok := e.Restore(); ok {
			if target >= seq {
				return s.badRestore(seq, target)
			}
			t = tail{restore: seq, entry: e}
		} else if e.FromSnapshot && t.fromSnapshot == 0 {
			t.fromSnapshot = seq
		}
		return nil
	})
	return t, err
}

func (s *Source) badRestore(seq, target uint64) error {
	return fmt.Errorf("%w: %s seq %d restores seq %d, not an earlier one", journal.ErrCorrupt, s.Subject, seq, target)
}

// fromSnapshotError reports an entry that starts from the snapshot tagged
// with its own sequence (a fork's first entry) reached by rolling an
// earlier state forward: that snapshot is gone or unusable.
func (s *Source) fromSnapshotError(seq uint64) error {
	return fmt.Errorf("%w: %s: entry %d starts from its own snapshot, which is gone or unusable (pruned?)", journal.ErrSnapshotNotFound, s.Subject, seq)
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
			t, err := s.scan(ctx, 0, upto)
			if err != nil {
				return nil, err
			}
			if t.restore == 0 {
				err := s.purged(h, upto)
				if len(st.Skips) > 0 {
					err = fmt.Errorf("%w (unusable snapshots: %w)", err, errors.Join(st.Skips...))
				}
				return nil, err
			}
			if db, err = s.restored(ctx, h, path, t.restore, t.entry, depth, st); err != nil {
				return nil, err
			}
			if depth == 0 {
				st.Entries++
				st.Txns += len(t.entry.Txns)
				st.LastTime = t.entry.Time
			}
			from = t.restore
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
		if ctx.Err() == nil {
			// Its content matches its digest, but is not a database:
			// as unusable as a damaged one.
			err = fmt.Errorf("%w: %w", journal.ErrCorrupt, err)
		}
		return nil, errors.Join(fmt.Errorf("open the snapshot of %s at seq %d: %w", s.Subject, info.Seq, err), removeFiles(path))
	}
	if got, dirty := db.Seq(); got != info.Seq || dirty {
		db.Close()
		return nil, errors.Join(fmt.Errorf("%w: the snapshot of %s tagged seq %d records seq %d (dirty %v)", journal.ErrCorrupt, s.Subject, info.Seq, got, dirty), removeFiles(path))
	}
	return db, nil
}

// errStop stops a read at a restore entry or an entry that starts from its
// own snapshot.
var errStop = errors.New("stop reading")

// catchUp applies the entries after seq from up to upto to db, resolving
// restore entries. It closes db on error.
func (s *Source) catchUp(ctx context.Context, h *history, db *sqlite.DB, from, upto uint64, depth int, st *Stats) (*sqlite.DB, error) {
	var (
		txns    []storage.Txn
		entries int
		size    int
		applied uint64 // sequence of the last entry read and batched
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
		var stop uint64
		err := s.Journal.Read(ctx, s.Subject, from, upto, func(seq uint64, e *journal.Entry) error {
			if s.OnEntry != nil {
				s.OnEntry(seq)
			}
			if _, ok := e.Restore(); ok || e.FromSnapshot {
				stop = seq
				return errStop
			}
			if depth == 0 {
				st.Entries++
				st.Txns += len(e.Txns)
				st.Seq, st.LastTime = seq, e.Time
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
		if err == nil || errors.Is(err, errStop) {
			err = flush()
		}
		if err != nil {
			db.Close()
			return nil, err
		}
		if stop == 0 {
			break
		}
		// A restore entry replaces the state: only the last one up to upto
		// matters, and what it restores. An entry that starts from its own
		// snapshot can only be reached through one.
		t, err := s.scan(ctx, stop-1, upto)
		if err == nil && t.fromSnapshot != 0 {
			err = s.fromSnapshotError(t.fromSnapshot)
		}
		if err != nil {
			db.Close()
			return nil, err
		}
		if depth == 0 {
			st.Entries++
			st.Txns += len(t.entry.Txns)
			st.Seq, st.LastTime = t.restore, t.entry.Time
		}
		if db, err = s.applyRestore(ctx, h, db, t.restore, t.entry, depth, st); err != nil {
			return nil, err
		}
		from = t.restore
	}
	return db, nil
}

// applyRestore replaces db by the state of restore entry e (at seq r): the
// state as of its target, recorded as of r. It closes db.
func (s *Source) applyRestore(ctx context.Context, h *history, db *sqlite.DB, r uint64, e *journal.Entry, depth int, st *Stats) (*sqlite.DB, error) {
	path := db.Path()
	if err := db.Close(); err != nil {
		return nil, err
	}
	if h == nil {
		var err error
		if h, err = s.history(ctx); err != nil {
			return nil, err
		}
	}
	// A name that does not grow with the nesting depth.
	dir := s.TempDir
	if dir == "" {
		dir = filepath.Dir(path)
	}
	tmp := filepath.Join(dir, ".restore-"+ulid.Make().String()+".db")
	tdb, err := s.restored(ctx, h, tmp, r, e, depth, st)
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
	return sqlite.Open(ctx, path, s.Options)
}

// restored builds the state of restore entry e (at seq r) into a new file
// at path: the state as of its target, recorded as of r.
func (s *Source) restored(ctx context.Context, h *history, path string, r uint64, e *journal.Entry, depth int, st *Stats) (*sqlite.DB, error) {
	target, _ := e.Restore()
	if target >= r {
		return nil, s.badRestore(r, target)
	}
	target, links, err := s.follow(ctx, target)
	st.Restores += links
	if err != nil {
		return nil, err
	}
	db, err := s.build(ctx, h, path, target, depth+1, st)
	if err != nil {
		return nil, err
	}
	if err := finishRestore(ctx, db, r, e); err != nil {
		db.Close()
		return nil, err
	}
	st.Restores++
	return db, nil
}

// follow returns the state a restore to target amounts to: the state as
// of a restore entry is the state as of its target, so chains of them (an
// undo of an undo...) are followed with one direct get per link rather
// than one nested build each. links is the number of links followed.
func (s *Source) follow(ctx context.Context, target uint64) (uint64, int, error) {
	links := 0
	for target > 0 {
		te, ok, err := s.Journal.EntryAt(ctx, s.Subject, target)
		if err != nil {
			return 0, links, err
		}
		if !ok {
			break
		}
		next, isRestore := te.Restore()
		if !isRestore {
			break
		}
		if next >= target {
			return 0, links, s.badRestore(target, next)
		}
		target = next
		links++
	}
	return target, links, nil
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

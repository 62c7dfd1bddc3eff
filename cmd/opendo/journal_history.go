package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage/sqlite"
)

// The runtime takes snapshots of objects (copies of their files, in the
// Object Store bucket journal.DefaultSnapshotBucket, tagged with the
// journal sequence they include) and then purges the journal entries that
// the oldest kept snapshot covers, beyond its retention. So an object's
// state as of a sequence is its newest snapshot at or before that
// sequence, rolled forward with the journal entries after it; replaying the
// journal from its start is only right for an object without snapshots.

// snapshots returns the snapshot bucket, nil if there is none (nothing
// was ever snapshotted). It never creates the bucket.
func (c *journalConn) snapshots(ctx context.Context) (*journal.Snapshots, error) {
	if c.snapsChecked {
		return c.snaps, nil
	}
	_, err := c.js.ObjectStore(ctx, journal.DefaultSnapshotBucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
	case err != nil:
		return nil, fmt.Errorf("snapshot bucket %s: %w", journal.DefaultSnapshotBucket, err)
	default:
		if c.snaps, err = journal.OpenSnapshots(ctx, c.js, journal.SnapshotConfig{}); err != nil {
			return nil, err
		}
	}
	c.snapsChecked = true
	return c.snaps, nil
}

// journalHistory is what is left of an object's history.
type journalHistory struct {
	snaps []journal.SnapshotInfo // its snapshots, oldest first
	first uint64                 // its first entry left in the journal, 0 if none
	last  uint64                 // its last entry, 0 if none
}

// history returns what is left of subject's history.
func (c *journalConn) history(ctx context.Context, subject string) (journalHistory, error) {
	var h journalHistory
	snaps, err := c.snapshots(ctx)
	if err != nil {
		return h, err
	}
	if snaps != nil {
		if h.snaps, err = snaps.List(ctx, subject); err != nil {
			return h, err
		}
	}
	if h.first, err = c.jr.FirstSeq(ctx, subject); err != nil {
		return h, err
	}
	if h.last, err = c.jr.LastSeq(ctx, subject); err != nil {
		return h, err
	}
	return h, nil
}

// latest returns the newest snapshot.
func (h journalHistory) latest() (journal.SnapshotInfo, bool) {
	if len(h.snaps) == 0 {
		return journal.SnapshotInfo{}, false
	}
	return h.snaps[len(h.snaps)-1], true
}

// purgedError: the state asked for is before the object's oldest snapshot,
// and the journal entries needed to rebuild it may be gone.
type purgedError struct {
	upto     uint64 // the sequence asked for
	first    uint64 // the first entry left in the journal
	earliest uint64 // the oldest snapshot's sequence
}

func (e *purgedError) Error() string {
	if e.first == 0 || e.upto < e.first {
		return fmt.Sprintf("history before seq %d was purged (retention); the earliest point available is seq %d", e.first, e.earliest)
	}
	// The journal still has entries up to upto, but the object has
	// snapshots, so entries before its first one may have been purged:
	// a replay from there could silently build a wrong state.
	return fmt.Sprintf("seq %d is before the oldest snapshot and history before seq %d may have been purged (retention); the earliest point available is seq %d", e.upto, e.first, e.earliest)
}

// check returns a *purgedError if the state as of upto cannot be rebuilt
// for sure: the object has snapshots, none at or before upto.
func (h journalHistory) check(upto uint64) error {
	if len(h.snaps) == 0 || h.snaps[0].Seq <= upto {
		return nil
	}
	first := h.first
	if first == 0 {
		first = h.snaps[0].Seq
	}
	return &purgedError{upto: upto, first: first, earliest: h.snaps[0].Seq}
}

// materialized describes a state built by materialize.
type materialized struct {
	snap  *journal.SnapshotInfo // the snapshot it started from, nil: an empty file
	st    journalRebuildStats   // the journal entries applied after it
	seq   uint64                // the sequence of the state: the last entry applied, or the snapshot's
	skips []error               // snapshots that could not be fetched, newer ones first
}

// materialize builds subject's state as of upto (0: its last entry) in a
// new SQLite file at path, and returns it open. It starts from the newest
// snapshot at or before upto (an older one if it cannot be fetched) and
// applies the journal entries after it; from an empty file and the
// journal's start if the object has no snapshots. If the object has
// snapshots but none at or before upto, the error is a *purgedError.
func (c *journalConn) materialize(ctx context.Context, subject string, upto uint64, path string, onEntry func(seq uint64)) (*sqlite.DB, materialized, error) {
	var m materialized
	h, err := c.history(ctx, subject)
	if err != nil {
		return nil, m, err
	}
	if upto == 0 {
		upto = h.last
	}
	if err := h.check(upto); err != nil {
		return nil, m, err
	}
	var db *sqlite.DB
	for i := len(h.snaps) - 1; i >= 0 && db == nil; i-- {
		info := h.snaps[i]
		if info.Seq > upto {
			continue
		}
		removeSQLiteFiles(path)
		if err := c.snaps.Fetch(ctx, info, path); err != nil {
			if errors.Is(err, journal.ErrSnapshotNotFound) || errors.Is(err, journal.ErrCorrupt) {
				m.skips = append(m.skips, err)
				continue
			}
			return nil, m, err
		}
		db, err = sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			return nil, m, fmt.Errorf("open snapshot of %s at seq %d: %w", subject, info.Seq, err)
		}
		if got, dirty := db.Seq(); got != info.Seq || dirty {
			db.Close()
			return nil, m, fmt.Errorf("snapshot of %s says seq %d (dirty %v), its tag %d", subject, got, dirty, info.Seq)
		}
		m.snap, m.seq = &info, info.Seq
	}
	if db == nil {
		if len(m.skips) > 0 {
			return nil, m, fmt.Errorf("no snapshot of %s at or before seq %d could be fetched: %w", subject, upto, errors.Join(m.skips...))
		}
		removeSQLiteFiles(path)
		if db, err = sqlite.Open(ctx, path, sqlite.Options{}); err != nil {
			return nil, m, err
		}
	}
	m.st, err = rebuildFromJournal(ctx, c.jr, subject, m.seq, upto, db, onEntry)
	if err != nil {
		db.Close()
		return nil, m, err
	}
	if m.st.entries > 0 {
		m.seq = m.st.lastSeq
	}
	return db, m, nil
}

// describe says where a materialized state comes from.
func (m materialized) describe() string {
	entries := journalCount(m.st.entries, "entry", "entries") + " (" + journalCount(m.st.txns, "transaction", "transactions") + ")"
	if m.snap == nil {
		return entries
	}
	return fmt.Sprintf("the snapshot at seq %d and %s after it", m.snap.Seq, entries)
}

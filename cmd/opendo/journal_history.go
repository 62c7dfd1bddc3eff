package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/internal/rebuild"
	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage/sqlite"
)

// The runtime takes snapshots of objects (copies of their files, in the
// Object Store bucket journal.DefaultSnapshotBucket, tagged with the
// journal sequence they include) and then purges the journal entries that
// the oldest kept snapshot covers, beyond its retention. A restore entry
// makes an object's state its state as of an earlier sequence. So an
// object's state as of a sequence is its newest snapshot at or before that
// sequence (or its whole history, or the state a restore entry names),
// rolled forward with the journal entries after it: internal/rebuild
// works it out, as the runtime does on activation.

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

// snapshotBucket returns the snapshot bucket, creating it, with the
// journal stream's replicas, if there is none (a runtime creates it when
// it starts, so this is for a journal no runtime has served yet).
func (c *journalConn) snapshotBucket(ctx context.Context) (*journal.Snapshots, error) {
	snaps, err := c.snapshots(ctx)
	if err != nil || snaps != nil {
		return snaps, err
	}
	replicas := c.jr.Stream().CachedInfo().Config.Replicas
	if c.snaps, err = journal.OpenSnapshots(ctx, c.js, journal.SnapshotConfig{Replicas: replicas}); err != nil {
		return nil, err
	}
	return c.snaps, nil
}

// snapshotList returns subject's snapshots, oldest first.
func (c *journalConn) snapshotList(ctx context.Context, subject string) ([]journal.SnapshotInfo, error) {
	snaps, err := c.snapshots(ctx)
	if err != nil || snaps == nil {
		return nil, err
	}
	return snaps.List(ctx, subject)
}

// source returns subject's history, for rebuilds; onEntry (optional) is
// called after each entry read (progress).
func (c *journalConn) source(ctx context.Context, subject string, onEntry func(seq uint64)) (*rebuild.Source, error) {
	snaps, err := c.snapshots(ctx)
	if err != nil {
		return nil, err
	}
	return &rebuild.Source{Journal: c.jr, Snapshots: snaps, Subject: subject, OnEntry: onEntry}, nil
}

// materialized describes a state built by materialize.
type materialized struct {
	rebuild.Stats
}

// materialize builds subject's state as of upto (0 or beyond its last
// entry: its last entry) in a new SQLite file at path, and returns it open.
// rebuild decides where it starts: the newest usable snapshot at or before
// upto, the whole history, or the state a restore entry names. If the
// history that state needs was purged, the error is a *rebuild.PurgedError
// (errors.Is storage.ErrBookmarkExpired). Snapshots it could not use are
// in the result's Skips, on error too.
func (c *journalConn) materialize(ctx context.Context, subject string, upto uint64, path string, onEntry func(seq uint64)) (*sqlite.DB, materialized, error) {
	src, err := c.source(ctx, subject, onEntry)
	if err != nil {
		return nil, materialized{}, err
	}
	last, err := c.jr.LastSeq(ctx, subject)
	if err != nil {
		return nil, materialized{}, err
	}
	if upto == 0 || upto > last {
		upto = last
	}
	db, st, err := src.Build(ctx, path, upto)
	return db, materialized{st}, err
}

// describe says where a materialized state comes from.
func (m materialized) describe() string {
	s := journalCount(m.Entries, "entry", "entries") + " (" + journalCount(m.Txns, "transaction", "transactions") + ")"
	if m.Snapshot != nil {
		s = fmt.Sprintf("the snapshot at seq %d and %s after it", m.Snapshot.Seq, s)
	}
	if m.Restores > 0 {
		// Counted at any depth: a restore's target state may hold restores.
		s += ", " + journalCount(m.Restores, "restore", "restores") + " resolved (nested ones included)"
	}
	return s
}

// bookmarkOf returns the bookmark of subject's state as of seq: the entry
// there, with its commit ID. ok is false if subject has no entry there
// (purged, or another object's sequence). Seq 0 is the zero bookmark.
func (c *journalConn) bookmarkOf(ctx context.Context, subject string, seq uint64) (journal.Bookmark, bool, error) {
	if seq == 0 {
		return journal.Bookmark{}, true, nil
	}
	e, ok, err := c.jr.EntryAt(ctx, subject, seq)
	if err != nil || !ok {
		return journal.Bookmark{}, false, err
	}
	return journal.Bookmark{Seq: seq, CommitID: e.CommitID}, true, nil
}

package actor

import (
	"context"
	"os"
	"path/filepath"

	"github.com/oklog/ulid/v2"
)

// maybeSnapshot takes a snapshot when enough entries piled up since the
// last one and the object is idle between requests.
func (o *object) maybeSnapshot() {
	every := o.rt.cfg.SnapshotEvery
	if every < 0 || o.sinceSnap < every || o.inflight || len(o.open) > 0 || len(o.held) > 0 ||
		o.db == nil || o.broken != nil || !o.snapshotIdle() {
		return
	}
	o.markDurable()
	tmp := filepath.Join(o.rt.tmpDir(), "snapshot-"+ulid.Make().String()+".db")
	seq, err := o.db.Snapshot(context.Background(), tmp)
	if err != nil {
		o.rt.log.Warn("snapshot failed", logNS, o.ns.name, logID, o.id, logErr, err)
		o.sinceSnap = 0 // try again after as many entries
		return
	}
	o.sinceSnap = 0
	done := make(chan struct{})
	o.snapDone = done
	o.rt.wg.Add(1)
	go func() {
		defer o.rt.wg.Done()
		defer close(done)
		defer os.Remove(tmp)
		ctx, cancel := context.WithTimeout(context.Background(), 2*o.rt.cfg.AppendTimeout)
		defer cancel()
		if _, err := o.rt.snaps.Put(ctx, o.subject, seq, tmp); err != nil {
			o.rt.log.Warn("snapshot upload failed", logNS, o.ns.name, logID, o.id, logErr, err)
			return
		}
		// Purge what the oldest kept snapshot covers, beyond retention: a
		// damaged newest snapshot can still be recovered from the older.
		all, err := o.rt.snaps.List(ctx, o.subject)
		if err != nil || len(all) == 0 {
			return
		}
		if _, err := o.rt.jr.Purge(ctx, o.subject, all[0].Seq, *o.rt.cfg.Retention, o.rt.clock.Now()); err != nil {
			o.rt.log.Warn("journal purge failed", logNS, o.ns.name, logID, o.id, logErr, err)
		}
	}()
}

// snapshotIdle reports whether no snapshot upload or purge is in flight.
func (o *object) snapshotIdle() bool {
	if o.snapDone == nil {
		return true
	}
	select {
	case <-o.snapDone:
		o.snapDone = nil
		return true
	default:
		return false
	}
}

// waitSnapshot waits until no snapshot upload or purge is in flight.
func (o *object) waitSnapshot(ctx context.Context) error {
	if o.snapDone == nil {
		return nil
	}
	select {
	case <-o.snapDone:
		o.snapDone = nil
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

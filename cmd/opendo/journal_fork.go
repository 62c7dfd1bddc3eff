package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/alarms"
	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
)

func runJournalFork(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("journal fork", stderr, "journal fork [flags] NS (NAME | -id ID) (NEWNAME | -new-id ID)")
	var f journalFlags
	f.register(fs, true)
	to, at := journalPointFlags(fs)
	newID := fs.String("new-id", "", "the new object's `ID` (instead of NEWNAME), e.g. a fresh ULID")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		fs.Usage()
		return usageError{"fork needs NS NAME NEWNAME"}
	}
	ns, rest := pos[0], pos[1:]
	var name, newName string
	if f.id == "" && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	if *newID == "" && len(rest) > 0 {
		newName, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		fs.Usage()
		return usageError{"fork takes NS (NAME | -id ID) (NEWNAME | -new-id ID)"}
	}
	src, err := newObjRef(ns, name, f.id)
	if err != nil {
		return err
	}
	if newName == "" && *newID == "" {
		return usageError{"fork needs the new object: NEWNAME or -new-id ID"}
	}
	dst, err := newObjRef(ns, newName, *newID)
	if err != nil {
		return err
	}
	if dst.id == src.id {
		return usageError{"the new object is the source object"}
	}
	pt, err := parseJournalPoint(*to, *at)
	if err != nil {
		return err
	}
	c, err := f.connect(ctx, "opendo-journal-fork", stderr)
	if err != nil {
		return err
	}
	defer c.Close()

	srcSubject, srcEntries, wrong, err := c.objectSubject(ctx, src)
	if err != nil {
		return err
	}
	if srcEntries == 0 {
		return fmt.Errorf("%s has no journal (subject %s)", src, srcSubject)
	}
	if wrong {
		p, _, _, _ := c.parseSubject(srcSubject)
		return fmt.Errorf("%s is journaled in partition %d, not %d: pass the deployment's -partitions (not %d), or the fork would be written where the runtime never looks",
			src, p, c.subj.Partition(src.ns, string(src.id)), c.subj.Partitions)
	}
	dstSubject, dstEntries, _, err := c.objectSubject(ctx, dst)
	if err != nil {
		return err
	}
	if dstEntries > 0 {
		return fmt.Errorf("%s already has a journal (%s on %s): fork into a new object", dst, journalCount(dstEntries, "entry", "entries"), dstSubject)
	}
	dstSubject = c.subj.Journal(dst.ns, string(dst.id))
	upto, err := pt.resolve(ctx, c, srcSubject)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	h, err := c.history(ctx, srcSubject)
	if err != nil {
		return err
	}
	if len(h.snaps) > 0 {
		// The source's early history may be purged: its entries alone
		// cannot seed the new object.
		return c.forkFromSnapshot(ctx, src, dst, srcSubject, dstSubject, pt, upto, stdout, stderr)
	}

	var (
		copied      atomic.Int64
		expected    uint64 // the new subject's last sequence: fencing
		first, last uint64 // source sequences copied
		firstNew    uint64
		alarm       int64
		hasAlarm    bool
	)
	prog := startJournalProgress(stderr, func() string {
		return "forking " + src.String() + ": " + strconv.FormatInt(copied.Load(), 10) + " entries"
	})
	err = c.jr.Read(ctx, srcSubject, 0, upto, func(seq uint64, e *journal.Entry) error {
		fe := &journal.Entry{CommitID: ulid.Make(), Time: e.Time, Txns: e.Txns}
		s, err := c.jr.Append(ctx, dstSubject, expected, fe)
		if err != nil {
			return fmt.Errorf("append source seq %d: %w", seq, err)
		}
		if first == 0 {
			first, firstNew = seq, s
		}
		expected, last = s, seq
		copied.Add(1)
		for i := range e.Txns {
			for _, m := range e.Txns[i].Mutations {
				switch m.Op {
				case storage.OpSetAlarm:
					alarm, hasAlarm = m.Alarm, true
				case storage.OpDeleteAlarm, storage.OpDeleteAll:
					hasAlarm = false
				}
			}
		}
		return nil
	})
	prog.Stop()
	n := copied.Load()
	if err != nil {
		if n == 0 {
			return err
		}
		return fmt.Errorf("fork stopped after %s: %s holds %s's state as of seq %d: %w", journalCount(n, "entry", "entries"), dst, src, last, err)
	}
	if n == 0 {
		return fmt.Errorf("%s has no entries up to seq %d", src, upto)
	}
	fmt.Fprintf(stdout, "forked %s %s into %s: %s (source seq %d..%d) appended as seq %d..%d on %s\n",
		src, pt, dst, journalCount(n, "entry", "entries"), first, last, firstNew, expected, dstSubject)
	if hasAlarm {
		c.scheduleForkAlarm(ctx, dst, alarm, stdout)
	}
	fmt.Fprintln(stdout, "a running runtime activates it on its next request and catches up from the journal")
	return nil
}

// scheduleForkAlarm schedules the alarm of fork dst. The runtime schedules
// an alarm durably when it commits it; the fork's alarm was committed
// here, so it is scheduled here too.
func (c *journalConn) scheduleForkAlarm(ctx context.Context, dst objRef, alarm int64, stdout io.Writer) {
	at := time.UnixMilli(alarm)
	if err := c.scheduleAlarm(ctx, alarms.Firing{NS: dst.ns, ID: string(dst.id), Alarm: alarm}); err != nil {
		fmt.Fprintf(stdout, "the fork's alarm is set for %s but could not be scheduled (%v): it is armed when the runtime next activates the object\n", fmtEntryTime(at), err)
	} else {
		fmt.Fprintf(stdout, "the fork's alarm is set for %s and scheduled\n", fmtEntryTime(at))
	}
}

// forkFromSnapshot forks a source that has snapshots. Its journal may no
// longer hold its early history, so the new object is seeded with its
// state instead of its entries: the source's state as of upto is
// materialized (snapshot plus journal tail), a marker entry (one
// transaction without mutations, request "fork-of SRC@SEQ") is appended as
// the new object's first entry at sequence S, and the state, recorded as
// of S, is uploaded as the new object's snapshot at S. On activation the
// runtime finds its journal ending at S and a snapshot at S, and restores
// the snapshot.
//
// Until the snapshot is stored, the new object is a journal with a marker
// and no snapshot, which would activate empty: if seeding fails after the
// append, the marker is purged again.
func (c *journalConn) forkFromSnapshot(ctx context.Context, src, dst objRef, srcSubject, dstSubject string, pt journalPoint, upto uint64, stdout, stderr io.Writer) (err error) {
	snaps := c.snaps // history found some, so the bucket exists
	tmp, err := os.MkdirTemp("", "opendo-fork-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var applied atomic.Uint64
	prog := startJournalProgress(stderr, func() string {
		return "materializing " + src.String() + ": " + strconv.FormatUint(applied.Load(), 10) + " entries"
	})
	db, m, err := c.materialize(ctx, srcSubject, upto, filepath.Join(tmp, "state.db"), func(uint64) { applied.Add(1) })
	prog.Stop()
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	for _, err := range m.skips {
		fmt.Fprintf(stderr, "opendo: warning: skipped a snapshot: %v\n", err)
	}
	alarm, hasAlarm, err := db.AlarmTime(ctx)
	if err != nil {
		return err
	}

	now := time.Now()
	marker := storage.Txn{
		RequestID: fmt.Sprintf("fork-of %s/%s@%d", src.ns, src.id, m.seq),
		Context:   storage.TxContext{Time: now, Seed: rand.Uint64()},
	}
	seq, err := c.jr.Append(ctx, dstSubject, 0, &journal.Entry{CommitID: ulid.Make(), Time: now, Txns: []storage.Txn{marker}})
	if err != nil {
		return fmt.Errorf("append the fork's first entry: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		if perr := c.jr.Stream().Purge(context.WithoutCancel(ctx), jetstream.WithPurgeSubject(dstSubject)); perr != nil {
			err = fmt.Errorf("%w; undoing the fork's first entry (seq %d on %s) failed too (%v): purge that subject before using %s", err, seq, dstSubject, perr, dst)
		}
	}()
	// The state, recorded as of the marker.
	if err = db.Apply(ctx, seq, []storage.Txn{marker}); err != nil {
		return fmt.Errorf("record the fork's state at seq %d: %w", seq, err)
	}
	file := filepath.Join(tmp, "snapshot.db")
	if _, err = db.Snapshot(ctx, file); err != nil {
		return err
	}
	err = db.Close()
	db = nil
	if err != nil {
		return err
	}
	if _, err = snaps.Put(ctx, dstSubject, seq, file); err != nil {
		return fmt.Errorf("store the fork's snapshot: %w", err)
	}
	fmt.Fprintf(stdout, "forked %s %s into %s: its state as of seq %d (%s) stored as the snapshot of %s at seq %d, its first entry on %s\n",
		src, pt, dst, m.seq, m.describe(), dst, seq, dstSubject)
	if hasAlarm {
		c.scheduleForkAlarm(ctx, dst, alarm, stdout)
	}
	fmt.Fprintln(stdout, "a running runtime activates it on its next request from that snapshot")
	return nil
}

// scheduleAlarm stores the durable schedule of firing f in the alarm
// stream, which must exist (a runtime creates it); it keeps the stream's
// replicas.
func (c *journalConn) scheduleAlarm(ctx context.Context, f alarms.Firing) error {
	s, err := c.js.Stream(ctx, alarms.DefaultStream)
	if err != nil {
		return fmt.Errorf("alarm stream %s: %w", alarms.DefaultStream, err)
	}
	a, err := alarms.Open(ctx, c.js, alarms.Config{Subjects: c.subj, Replicas: s.CachedInfo().Config.Replicas})
	if err != nil {
		return err
	}
	return a.Schedule(ctx, time.UnixMilli(f.Alarm), f)
}

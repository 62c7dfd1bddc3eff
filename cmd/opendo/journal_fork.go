package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
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
	pt, err := parseJournalPoint(to, *at)
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
	snaps, err := c.snapshotList(ctx, srcSubject)
	if err != nil {
		return err
	}
	_, fromStart, err := c.jr.Origin(ctx, srcSubject)
	if err != nil {
		return err
	}
	if len(snaps) > 0 || !fromStart {
		// The source's early history may be purged, or it starts from a
		// snapshot (a fork's): its entries alone cannot seed the new object.
		return c.forkFromSnapshot(ctx, src, dst, srcSubject, dstSubject, pt, upto, stdout, stderr)
	}

	var (
		copied   atomic.Int64
		expected uint64 // the new subject's last sequence: fencing
		copies   []forkCopy
		restores int
	)
	prog := startJournalProgress(stderr, func() string {
		return "forking " + src.String() + ": " + strconv.FormatInt(copied.Load(), 10) + " entries"
	})
	err = c.jr.Read(ctx, srcSubject, 0, upto, func(seq uint64, e *journal.Entry) error {
		if e.FromSnapshot {
			return fmt.Errorf("source seq %d starts from a snapshot: the entries before it do not make its state", seq)
		}
		fe := &journal.Entry{CommitID: ulid.Make(), Time: e.Time, Txns: e.Txns}
		var at forkCopy // the state the entry applies to: the last entry's
		if n := len(copies); n > 0 {
			at = copies[n-1]
		}
		if target, ok := e.Restore(); ok {
			// The target is a source sequence: the new object's state as
			// of the copy of the source's last entry at or before it is
			// the same state.
			at = lastForkCopy(copies, target)
			tx := e.Txns[0]
			tx.Mutations = []storage.Mutation{{Op: storage.OpRestore, Target: at.dst}}
			fe.Txns = []storage.Txn{tx}
			restores++
		} else {
			at.alarm, at.hasAlarm = alarmAfter(e, at.alarm, at.hasAlarm)
		}
		s, err := c.jr.Append(ctx, dstSubject, expected, fe)
		if err != nil {
			return fmt.Errorf("append source seq %d: %w", seq, err)
		}
		expected = s
		copies = append(copies, forkCopy{src: seq, dst: s, alarm: at.alarm, hasAlarm: at.hasAlarm})
		copied.Add(1)
		return nil
	})
	prog.Stop()
	n := len(copies)
	if err != nil {
		if n == 0 {
			return err
		}
		return fmt.Errorf("fork stopped after %s: %s holds %s's state as of seq %d: %w", journalCount(n, "entry", "entries"), dst, src, copies[n-1].src, err)
	}
	if n == 0 {
		return fmt.Errorf("%s has no entries up to seq %d", src, upto)
	}
	first, last := copies[0], copies[n-1]
	fmt.Fprintf(stdout, "forked %s %s into %s: %s (source seq %d..%d) appended as seq %d..%d on %s\n",
		src, pt, dst, journalCount(n, "entry", "entries"), first.src, last.src, first.dst, last.dst, dstSubject)
	if restores > 0 {
		fmt.Fprintf(stdout, "%s copied with their targets mapped to the new object's sequences\n", journalCount(restores, "restore entry", "restore entries"))
	}
	if last.hasAlarm {
		c.scheduleForkAlarm(ctx, dst, last.alarm, stdout)
	}
	fmt.Fprintln(stdout, "a running runtime activates it on its next request and catches up from the journal")
	return nil
}

// forkCopy is one entry a fork copied: its source and new sequences, and
// the alarm of the state after it.
type forkCopy struct {
	src, dst uint64
	alarm    int64
	hasAlarm bool
}

// lastForkCopy returns the copy of the last source entry at or before
// source sequence seq; the zero forkCopy (the empty state, seq 0) if none.
func lastForkCopy(copies []forkCopy, seq uint64) forkCopy {
	i := sort.Search(len(copies), func(i int) bool { return copies[i].src > seq })
	if i == 0 {
		return forkCopy{}
	}
	return copies[i-1]
}

// alarmAfter returns the alarm after entry e (not a restore) is applied to
// a state whose alarm is alarm, hasAlarm.
func alarmAfter(e *journal.Entry, alarm int64, hasAlarm bool) (int64, bool) {
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
	return alarm, hasAlarm
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

// forkFromSnapshot forks a source that has snapshots, or whose history
// does not start with its first entry left. Its journal may no longer hold
// its early history, so the new object is seeded with its state instead of
// its entries: the source's state as of upto is materialized (from a
// snapshot, its whole history or a restore entry, and the journal tail), a
// marker entry (one transaction without mutations, request
// "fork-of SRC@SEQ", flagged FromSnapshot) is appended as the new object's
// first entry at sequence S, and the state, recorded as of S, is uploaded
// as the new object's snapshot at S. On activation the runtime finds its
// journal ending at S and a snapshot at S, and restores the snapshot; the
// flag tells every reader that the marker applies to that snapshot, not to
// the empty state.
//
// Until the snapshot is stored, the new object is a journal with a marker
// and no snapshot, which would not activate: if seeding fails after the
// append, the marker is purged again.
func (c *journalConn) forkFromSnapshot(ctx context.Context, src, dst objRef, srcSubject, dstSubject string, pt journalPoint, upto uint64, stdout, stderr io.Writer) (err error) {
	snaps, err := c.snapshotBucket(ctx)
	if err != nil {
		return err
	}
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
	for _, err := range m.Skips {
		fmt.Fprintf(stderr, "opendo: warning: skipped a snapshot: %v\n", err)
	}
	alarm, hasAlarm, err := db.AlarmTime(ctx)
	if err != nil {
		return err
	}

	now := time.Now()
	marker := storage.Txn{
		RequestID: fmt.Sprintf("fork-of %s/%s@%d", src.ns, src.id, m.Seq),
		Context:   storage.TxContext{Time: now, Seed: rand.Uint64()},
	}
	seq, err := c.jr.Append(ctx, dstSubject, 0, &journal.Entry{CommitID: ulid.Make(), Time: now, Txns: []storage.Txn{marker}, FromSnapshot: true})
	if err != nil {
		return fmt.Errorf("append the fork's first entry: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		if perr := c.jr.StreamOf(dstSubject).Purge(context.WithoutCancel(ctx), jetstream.WithPurgeSubject(dstSubject)); perr != nil {
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
		src, pt, dst, m.Seq, m.describe(), dst, seq, dstSubject)
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

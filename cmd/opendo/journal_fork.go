package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

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
		// The runtime schedules an alarm durably when it commits it; the
		// fork's alarm was committed here, so schedule it here too.
		at := time.UnixMilli(alarm)
		if err := c.scheduleAlarm(ctx, alarms.Firing{NS: dst.ns, ID: string(dst.id), Alarm: alarm}); err != nil {
			fmt.Fprintf(stdout, "the fork's alarm is set for %s but could not be scheduled (%v): it is armed when the runtime next activates the object\n", fmtEntryTime(at), err)
		} else {
			fmt.Fprintf(stdout, "the fork's alarm is set for %s and scheduled\n", fmtEntryTime(at))
		}
	}
	fmt.Fprintln(stdout, "a running runtime activates it on its next request and catches up from the journal")
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

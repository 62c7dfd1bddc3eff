package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/opendo/opendo/journal"
)

// objInfo is one journaled object, as ls shows it.
type objInfo struct {
	NS        string    `json:"ns"`
	ID        string    `json:"id"`
	Partition int       `json:"partition"`
	Subject   string    `json:"subject"`
	Entries   uint64    `json:"entries"`
	LastSeq   uint64    `json:"last_seq"`
	LastWrite time.Time `json:"last_write"`
	// FirstSeq is the first entry left in the journal, and SnapshotSeq the
	// sequence of the latest snapshot (0: none): the runtime purges the
	// entries before its oldest kept snapshot, beyond retention.
	FirstSeq    uint64 `json:"first_seq,omitempty"`
	SnapshotSeq uint64 `json:"snapshot_seq,omitempty"`
}

func runJournalLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("journal ls", stderr, "journal ls [flags] [NS [NAME]]")
	var f journalFlags
	f.register(fs, true)
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	sel, err := parseObjSelection(pos, f.id, "ls")
	if err != nil {
		return err
	}
	c, err := f.connect(ctx, "opendo-journal-ls", stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	objs, err := c.listObjects(ctx, sel, true)
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		what := "no journaled objects"
		if sel.obj != nil {
			what = sel.obj.String() + " has no journal"
		} else if sel.ns != "" {
			what += " in namespace " + sel.ns
		}
		fmt.Fprintln(stderr, what)
		return nil
	}
	if *asJSON {
		for i := range objs {
			if err := writeJSONLine(stdout, &objs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NS\tID\tPARTITION\tENTRIES\tFIRST SEQ\tLAST SEQ\tSNAPSHOT\tLAST WRITE")
	for _, o := range objs {
		snap := "-"
		if o.SnapshotSeq > 0 {
			snap = strconv.FormatUint(o.SnapshotSeq, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", safeText(o.NS), safeText(o.ID), o.Partition, o.Entries, o.FirstSeq, o.LastSeq, snap, fmtEntryTime(o.LastWrite))
	}
	return tw.Flush()
}

// listObjects returns the journaled objects of sel, sorted by namespace and
// ID. With last, it also reads each one's last entry (LastSeq, LastWrite),
// first entry (FirstSeq) and latest snapshot (SnapshotSeq).
func (c *journalConn) listObjects(ctx context.Context, sel objSelection, last bool) ([]objInfo, error) {
	subjects, err := c.jr.Subjects(ctx, c.filter(sel))
	if err != nil {
		return nil, err
	}
	objs := make([]objInfo, 0, len(subjects))
	for s, n := range subjects {
		p, ns, id, ok := c.parseSubject(s)
		if !ok {
			continue
		}
		objs = append(objs, objInfo{NS: ns, ID: id, Partition: p, Subject: s, Entries: n})
	}
	sort.Slice(objs, func(i, j int) bool {
		if objs[i].NS != objs[j].NS {
			return objs[i].NS < objs[j].NS
		}
		if objs[i].ID != objs[j].ID {
			return objs[i].ID < objs[j].ID
		}
		return objs[i].Partition < objs[j].Partition
	})
	if !last || len(objs) == 0 {
		return objs, nil
	}
	snaps, err := c.snapshots(ctx)
	if err != nil {
		return nil, err
	}
	var done atomic.Int64
	prog := startJournalProgress(c.stderr, func() string {
		return "reading last entries: " + strconv.FormatInt(done.Load(), 10) + "/" + strconv.Itoa(len(objs))
	})
	defer prog.Stop()
	const workers = 16
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		next     atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	for range min(workers, len(objs)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(objs) || ctx.Err() != nil {
					return
				}
				if err := c.lastEntry(ctx, snaps, &objs[i]); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return objs, ctx.Err()
}

// lastEntry fills o.LastSeq and o.LastWrite from the subject's last entry
// (its entry time, or the time the stream stored it if it does not decode),
// o.FirstSeq, and o.SnapshotSeq from snaps (nil: no snapshot bucket).
func (c *journalConn) lastEntry(ctx context.Context, snaps *journal.Snapshots, o *objInfo) error {
	first, err := c.jr.FirstSeq(ctx, o.Subject)
	if err != nil {
		return fmt.Errorf("first entry of %s: %w", safeText(o.Subject), err)
	}
	o.FirstSeq = first
	if snaps != nil {
		info, ok, err := snaps.Latest(ctx, o.Subject)
		if err != nil {
			return fmt.Errorf("latest snapshot of %s: %w", safeText(o.Subject), err)
		}
		if ok {
			o.SnapshotSeq = info.Seq
		}
	}
	m, err := c.jr.StreamOf(o.Subject).GetLastMsgForSubject(ctx, o.Subject)
	if err != nil {
		return fmt.Errorf("last entry of %s: %w", safeText(o.Subject), err)
	}
	o.LastSeq, o.LastWrite = m.Sequence, m.Time
	if e, err := journal.Decode(m.Data); err == nil && !e.Time.IsZero() {
		o.LastWrite = e.Time
	}
	o.LastWrite = o.LastWrite.UTC()
	return nil
}

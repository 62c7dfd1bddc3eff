package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/opendo/opendo/journal"
)

func runJournalShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("journal show", stderr, "journal show [flags] NS (NAME | -id ID)")
	var f journalFlags
	f.register(fs, true)
	from := fs.Uint64("from", 0, "first sequence to show")
	var to seqFlag
	fs.Var(&to, "to", "last sequence to show, `SEQ|BOOKMARK` (default: the last entry); "+
		"a bookmark of the object (SEQ-COMMITID) means its sequence, another object's is refused")
	asJSON := fs.Bool("json", false, "print one JSON object per entry")
	full := fs.Bool("full", false, "print long keys and values in full")
	restores := fs.Bool("restores", false, "list only the restore entries, the object's restorations: seq, time, request, target seq and its bookmark")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return usageError{"show needs NS NAME or NS -id ID"}
	}
	ref, err := objRefArgs(pos, f.id)
	if err != nil {
		return err
	}
	if to.set() && to.seq < *from {
		return usageError{fmt.Sprintf("-to %d is before -from %d", to.seq, *from)}
	}
	c, err := f.connect(ctx, "opendo-journal-show", stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	subject, entries, err := c.readableSubject(ctx, ref)
	if err != nil {
		return err
	}
	if err := to.check(ctx, c.jr, subject); err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	note, err := c.historyNote(ctx, subject)
	if err != nil {
		return err
	}
	p := &entryPrinter{w: stdout, json: *asJSON, full: *full, bookmarks: c.bookmarkOf}
	if !p.json {
		fmt.Fprintf(stdout, "# %s: %s on %s\n", safeText(ref.String()), journalCount(entries, "entry", "entries"), safeText(subject))
	}
	if note != "" {
		w := stdout
		if p.json {
			w = stderr
		}
		fmt.Fprintf(w, "# (%s)\n", note)
	}
	after := uint64(0)
	if *from > 0 {
		after = *from - 1
	}
	if *restores {
		return showRestores(ctx, c, p, subject, after, to.seq, stderr)
	}
	n := 0
	err = c.jr.Read(ctx, subject, after, to.seq, func(seq uint64, e *journal.Entry) error {
		n++
		return p.print(ctx, subject, ref.ns, string(ref.id), seq, e)
	})
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(stderr, "no entries in that range")
	}
	return nil
}

// historyNote says where what is left of subject's history starts, when
// that is not its very first entry, and what snapshots it has; "" if
// there is nothing to say.
func (c *journalConn) historyNote(ctx context.Context, subject string) (string, error) {
	snaps, err := c.snapshotList(ctx, subject)
	if err != nil {
		return "", err
	}
	first, fromStart, err := c.jr.Origin(ctx, subject)
	if err != nil {
		return "", err
	}
	latest := "no snapshot"
	if n := len(snaps); n > 0 {
		latest = fmt.Sprintf("latest snapshot at seq %d, %s", snaps[n-1].Seq, journalCount(n, "snapshot", "snapshots"))
	}
	switch {
	case first == 0:
		return "", nil
	case !fromStart:
		e, ok, err := c.jr.EntryAt(ctx, subject, first)
		if err != nil {
			return "", err
		}
		if ok && e.FromSnapshot {
			return fmt.Sprintf("a fork: its history starts at seq %d, from the snapshot taken then; %s", first, latest), nil
		}
		// The runtime purges the entries its oldest kept snapshot covers,
		// beyond retention: the journal no longer tells the whole story.
		return fmt.Sprintf("entries before seq %d were purged; %s", first, latest), nil
	case len(snaps) > 0:
		return latest + "; no entries purged", nil
	}
	return "", nil
}

// jsonRestore is one line of show -restores -json.
type jsonRestore struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Commit   string    `json:"commit"`
	Request  string    `json:"request"`
	Target   uint64    `json:"target"`
	Bookmark string    `json:"bookmark,omitempty"` // "" if the target's entry is gone
}

// showRestores lists the restore entries of subject with after < seq <=
// upto (0: its last entry).
func showRestores(ctx context.Context, c *journalConn, p *entryPrinter, subject string, after, upto uint64, stderr io.Writer) error {
	var tw *tabwriter.Writer
	if !p.json {
		tw = tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tREQUEST\tTARGET\tBOOKMARK")
	}
	n := 0
	err := c.jr.Read(ctx, subject, after, upto, func(seq uint64, e *journal.Entry) error {
		rv, ok, err := p.restore(ctx, subject, e)
		if err != nil || !ok {
			return err
		}
		n++
		tx := &e.Txns[0]
		if p.json {
			return writeJSONLine(p.w, jsonRestore{Seq: seq, Time: e.Time.UTC(), Commit: e.CommitID.String(),
				Request: tx.RequestID, Target: rv.target, Bookmark: rv.bookmark})
		}
		bm := safeText(rv.bookmark)
		switch {
		case rv.target == 0:
			bm += " (the empty state)"
		case bm == "":
			bm = "unknown (the object's entry at seq " + strconv.FormatUint(rv.target, 10) + " is no longer in the journal)"
		}
		_, err = fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", seq, fmtEntryTime(e.Time), orDash(safeText(tx.RequestID)), rv.target, bm)
		return err
	})
	if tw != nil {
		if ferr := tw.Flush(); err == nil {
			err = ferr
		}
	}
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(stderr, "no restore entries in that range")
	}
	return nil
}

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/opendo/opendo/journal"
)

func runJournalShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("journal show", stderr, "journal show [flags] NS (NAME | -id ID)")
	var f journalFlags
	f.register(fs, true)
	from := fs.Uint64("from", 0, "first sequence to show")
	to := fs.Uint64("to", 0, "last sequence to show (default: the last entry)")
	asJSON := fs.Bool("json", false, "print one JSON object per entry")
	full := fs.Bool("full", false, "print long keys and values in full")
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
	if *to != 0 && *to < *from {
		return usageError{fmt.Sprintf("-to %d is before -from %d", *to, *from)}
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
	h, err := c.history(ctx, subject)
	if err != nil {
		return err
	}
	p := &entryPrinter{w: stdout, json: *asJSON, full: *full}
	if !p.json {
		fmt.Fprintf(stdout, "# %s: %s on %s\n", ref, journalCount(entries, "entry", "entries"), subject)
	}
	if snap, ok := h.latest(); ok {
		// The runtime purges the entries its oldest kept snapshot covers,
		// beyond retention: the journal no longer tells the whole story.
		w := stdout
		if p.json {
			w = stderr
		}
		fmt.Fprintf(w, "# (entries before seq %d were purged; latest snapshot at seq %d, %s)\n", h.first, snap.Seq, journalCount(len(h.snaps), "snapshot", "snapshots"))
	}
	after := uint64(0)
	if *from > 0 {
		after = *from - 1
	}
	n := 0
	err = c.jr.Read(ctx, subject, after, *to, func(seq uint64, e *journal.Entry) error {
		n++
		return p.print(ref.ns, string(ref.id), seq, e)
	})
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(stderr, "no entries in that range")
	}
	return nil
}

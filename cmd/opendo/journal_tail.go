package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/journal"
)

func runJournalTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("journal tail", stderr, "journal tail [flags] [NS [NAME]]")
	var f journalFlags
	f.register(fs, true)
	from := fs.Uint64("from", 0, "start at this sequence instead of with the next new entry")
	asJSON := fs.Bool("json", false, "print one JSON object per entry")
	full := fs.Bool("full", false, "print long keys and values in full")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	sel, err := parseObjSelection(pos, f.id, "tail")
	if err != nil {
		return err
	}
	c, err := f.connect(ctx, "opendo-journal-tail", stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	// An ordered consumer sees only what the stream stored, with its
	// sequence: a core subscription would also show fenced-off appends.
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{c.filter(sel)},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	}
	if *from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, *from
	}
	// Follow the object's stream, or every stream of the journal.
	streams := c.jr.Streams()
	if sel.obj != nil {
		streams = []jetstream.Stream{c.jr.StreamOf(c.subj.Journal(sel.obj.ns, string(sel.obj.id)))}
	} else if *from > 0 && len(streams) > 1 {
		return usageError{fmt.Sprintf("-from needs an object: the journal spans %d streams, each with its own sequences", len(streams))}
	}
	msgs := make(chan jetstream.Msg)
	errs := make(chan error, len(streams))
	for _, s := range streams {
		cons, err := c.js.OrderedConsumer(ctx, s.CachedInfo().Config.Name, cfg)
		if err != nil {
			return fmt.Errorf("tail: %w", err)
		}
		it, err := cons.Messages()
		if err != nil {
			return fmt.Errorf("tail: %w", err)
		}
		defer it.Stop()
		go func() {
			for {
				msg, err := it.Next(jetstream.NextContext(ctx))
				if err != nil {
					errs <- err
					return
				}
				select {
				case msgs <- msg:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	what := "every object"
	switch {
	case sel.obj != nil:
		what = sel.obj.String()
	case sel.ns != "":
		what = "namespace " + sel.ns
	}
	fmt.Fprintf(stderr, "following %s on %s (Ctrl-C to stop)\n", what, cfg.FilterSubjects[0])
	if c.local {
		fmt.Fprintln(stderr, "note: nothing else writes to this data directory while it is open here; to follow a running opendo dev, pass -nats nats://127.0.0.1:4222")
	}
	p := &entryPrinter{w: stdout, json: *asJSON, full: *full, object: sel.obj == nil, bookmarks: c.bookmarkOf}
	for {
		var msg jetstream.Msg
		select {
		case msg = <-msgs:
		case err := <-errs:
			if ctx.Err() != nil {
				return nil // Ctrl-C
			}
			return fmt.Errorf("tail: %w", err)
		case <-ctx.Done():
			return nil // Ctrl-C
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("tail: %w", err)
		}
		_, ns, id, _ := c.parseSubject(msg.Subject())
		e, err := journal.Decode(msg.Data())
		if err != nil {
			fmt.Fprintf(stderr, "opendo: %s seq %d: %s\n", safeText(msg.Subject()), md.Sequence.Stream, safeText(err.Error()))
			continue
		}
		if err := p.print(ctx, msg.Subject(), ns, id, md.Sequence.Stream, e); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
	}
}

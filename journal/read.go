package journal

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reads are batched direct gets: one request returns up to readBatch
// messages of the subject (at most about readMaxBytes), then an
// end-of-batch status. See doc.go for why this beats a consumer.
const (
	readBatch    = 1024
	readMaxBytes = 4 << 20
)

// Headers of direct get replies that nats.go does not export.
const (
	statusHeader     = "Status"
	descHeader       = "Description"
	numPendingHeader = "Nats-Num-Pending"
	statusNoMessages = "404"
	statusEndOfBatch = "204"
)

// directGet is the body of a direct get request.
type directGet struct {
	Seq      uint64 `json:"seq"`
	NextFor  string `json:"next_by_subj"`
	Batch    int    `json:"batch"`
	MaxBytes int    `json:"max_bytes"`
}

// Read calls fn for every entry of subject with after < seq <= upto, in
// sequence order; upto 0 means up to the subject's last entry when Read
// starts. It stops at the first error: fn's error is returned as is, an
// entry that does not decode yields an error wrapping ErrCorrupt that names
// the subject and sequence.
//
// fn owns the entry it is given. When ctx has no deadline, each batch
// request is bounded by the JetStream context's default timeout.
func (j *Journal) Read(ctx context.Context, subject string, after, upto uint64, fn func(seq uint64, e *Entry) error) error {
	if err := j.checkSubject(subject); err != nil {
		return err
	}
	if upto != 0 && upto <= after {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// A channel subscription: SubscribeSync would allocate a channel of
	// 64k messages (~100µs). One batch and its end-of-batch status always
	// fit in ch, as a batch is requested only once the previous one ended.
	nc := j.js.Conn()
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, readBatch+1)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return fmt.Errorf("journal: read %s: %w", subject, err)
	}
	defer sub.Unsubscribe()

	r := batchReader{j: j, ch: ch, subject: subject, inbox: inbox, next: after + 1, upto: upto, left: -1}
	for {
		more, err := r.batch(ctx, fn)
		if err != nil || !more {
			return err
		}
	}
}

// batchReader is the state of one Read.
type batchReader struct {
	j       *Journal
	ch      chan *nats.Msg
	subject string
	inbox   string
	next    uint64 // first sequence not yet delivered
	upto    uint64 // last sequence to deliver, 0 = see left
	left    int64  // entries left to deliver when upto is 0; -1 = not known yet
}

// batch requests and delivers one batch, and reports whether to go on.
func (r *batchReader) batch(ctx context.Context, fn func(uint64, *Entry) error) (bool, error) {
	n := readBatch
	if r.upto != 0 && r.upto-r.next+1 < uint64(n) {
		n = int(r.upto - r.next + 1)
	}
	req, err := json.Marshal(directGet{Seq: r.next, NextFor: r.subject, Batch: n, MaxBytes: readMaxBytes})
	if err != nil {
		return false, err
	}
	if _, ok := ctx.Deadline(); !ok && r.j.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.j.timeout)
		defer cancel()
	}
	if err := r.j.js.Conn().PublishRequest(r.j.shardOf(r.subject).direct, r.inbox, req); err != nil {
		return false, fmt.Errorf("journal: read %s: %w", r.subject, err)
	}
	for {
		var m *nats.Msg
		select {
		case m = <-r.ch:
			if m == nil {
				return false, fmt.Errorf("journal: read %s: %w", r.subject, nats.ErrConnectionClosed)
			}
		case <-ctx.Done():
			return false, fmt.Errorf("journal: read %s after %d: %w", r.subject, r.next-1, ctx.Err())
		}
		if len(m.Data) == 0 {
			switch m.Header.Get(statusHeader) {
			case "":
				// An empty stored message: Decode reports it as corrupt.
			case statusNoMessages:
				return false, nil
			case statusEndOfBatch:
				np, _ := strconv.ParseUint(m.Header.Get(numPendingHeader), 10, 64)
				return np > 0, nil
			default:
				return false, fmt.Errorf("journal: read %s: direct get: %s %s",
					r.subject, m.Header.Get(statusHeader), m.Header.Get(descHeader))
			}
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return false, fmt.Errorf("journal: read %s: direct get reply without sequence", r.subject)
		}
		if r.upto != 0 && seq > r.upto {
			return false, nil
		}
		if r.upto == 0 && r.left < 0 {
			// The first reply tells how many entries follow it.
			np, err := strconv.ParseUint(m.Header.Get(numPendingHeader), 10, 63)
			if err != nil {
				return false, fmt.Errorf("journal: read %s: direct get reply without pending count", r.subject)
			}
			r.left = int64(np) + 1
		}
		e, err := Decode(m.Data)
		if err != nil {
			return false, fmt.Errorf("journal: read %s seq %d: %w", r.subject, seq, err)
		}
		if err := fn(seq, e); err != nil {
			return false, err
		}
		r.next = seq + 1
		if r.upto != 0 && seq == r.upto {
			return false, nil
		}
		if r.upto == 0 {
			if r.left--; r.left == 0 {
				return false, nil
			}
		}
	}
}

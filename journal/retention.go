package journal

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Suggested retention for a runtime that configures none: a week of
// history for time travel, and the last 1,000 entries of objects written
// less often than that. (Cloudflare keeps 30 days of point-in-time
// recovery; the journal's cost is its size, which discard-new turns into
// rejected appends when Config.MaxBytes is reached.)
const (
	DefaultKeepEntries = 1_000
	DefaultKeepFor     = 7 * 24 * time.Hour
)

// Retention says which entries Purge keeps although a snapshot covers
// them. The zero Retention keeps none of them: only the entries after the
// snapshot, and the subject's last entry, which Purge always keeps.
type Retention struct {
	// KeepEntries keeps at least the newest KeepEntries entries of each
	// subject (0 and 1 keep just the last).
	KeepEntries uint64
	// KeepFor keeps the entries stored less than KeepFor before now, by
	// the stream's timestamps (the server's clock); 0 keeps none for age.
	KeepFor time.Duration
}

// probeGet is a direct get of the first message of a subject at or after
// a sequence (with Batch 1, the reply tells how many follow) or a time.
type probeGet struct {
	Seq       uint64     `json:"seq,omitempty"`
	NextFor   string     `json:"next_by_subj"`
	Batch     int        `json:"batch,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
}

// purgeRequest and purgeResponse are the stream purge API's
// (nats.go's Stream.Purge does not return the count).
type purgeRequest struct {
	Filter string `json:"filter"`
	Seq    uint64 `json:"seq"`
}

type purgeResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Success bool                `json:"success"`
	Purged  uint64              `json:"purged"`
}

// Purge removes the entries of subject that a snapshot at coveredSeq
// includes (seq <= coveredSeq) and that r does not keep, and returns how
// many it removed. It never removes an entry after coveredSeq, nor the
// subject's last entry, so LastSeq, fencing and Append's retry detection
// are unaffected; Read just starts at the first entry left (see FirstSeq).
//
// Pass the sequence of the oldest snapshot still kept (the first of
// Snapshots.List), not the newest, so that any kept snapshot can be rolled
// forward if a newer one fails to fetch. Purges of one subject should not
// run concurrently; appends may.
//
// It uses the stream purge API with the subject as filter and the first
// kept sequence as bound ("up to but not including"), so the stream must
// not deny purges (journal streams created by Open do not; DenyPurge can
// never be turned off once set). Finding the bound costs a few direct
// gets: one for KeepFor (by start time), and a binary search over
// sequences (~log2 of the covered range) when KeepEntries binds.
func (j *Journal) Purge(ctx context.Context, subject string, coveredSeq uint64, r Retention, now time.Time) (uint64, error) {
	if err := j.checkSubject(subject); err != nil {
		return 0, err
	}
	if r.KeepFor < 0 {
		return 0, fmt.Errorf("%w: negative KeepFor %v", ErrInvalidArgument, r.KeepFor)
	}
	if coveredSeq == 0 {
		return 0, nil
	}
	last, err := j.LastSeq(ctx, subject)
	if err != nil || last == 0 {
		return 0, err
	}
	first, total, ok, err := j.probe(ctx, subject, 1)
	if err != nil || !ok || total <= 1 {
		return 0, err
	}
	// Purge the entries before cut.
	cut := last
	if coveredSeq < cut {
		cut = coveredSeq + 1
	}
	if r.KeepFor > 0 && cut > first {
		seq, ok, err := j.firstSince(ctx, subject, now.Add(-r.KeepFor))
		if err != nil {
			return 0, err
		}
		if ok && seq < cut {
			cut = seq
		}
	}
	if r.KeepEntries > 1 && cut > first {
		if cut, err = j.newest(ctx, subject, first, total, cut, r.KeepEntries); err != nil {
			return 0, err
		}
	}
	if cut <= first {
		return 0, nil
	}
	return j.purgeBefore(ctx, subject, cut)
}

// FirstSeq returns the sequence of subject's first entry, 0 if it has none.
func (j *Journal) FirstSeq(ctx context.Context, subject string) (uint64, error) {
	if err := j.checkSubject(subject); err != nil {
		return 0, err
	}
	seq, _, _, err := j.probe(ctx, subject, 1)
	return seq, err
}

// newest lowers cut so that at least k entries of subject are at or after
// it. first is the subject's first entry and total its number of entries.
// It binary-searches the sequences for the k-th newest entry, counting the
// entries from a sequence on with one direct get each. Appends meanwhile
// only raise those counts, which errs on the side of keeping.
func (j *Journal) newest(ctx context.Context, subject string, first, total, cut, k uint64) (uint64, error) {
	if total <= k {
		return first, nil
	}
	_, n, _, err := j.probe(ctx, subject, cut)
	if err != nil || n >= k {
		return cut, err
	}
	// At least k entries from lo on (lo is an entry), fewer than k from hi.
	lo, hi := first, cut
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		seq, n, ok, err := j.probe(ctx, subject, mid)
		if err != nil {
			return 0, err
		}
		if ok && n >= k && seq < hi {
			lo = seq
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// probe returns subject's first entry at or after seq and how many entries
// are at or after seq; ok is false if there are none.
func (j *Journal) probe(ctx context.Context, subject string, seq uint64) (at, n uint64, ok bool, err error) {
	m, err := j.getDirect(ctx, probeGet{Seq: seq, NextFor: subject, Batch: 1})
	if err != nil || m == nil {
		return 0, 0, false, err
	}
	if at, err = strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64); err != nil {
		return 0, 0, false, fmt.Errorf("journal: %s: direct get reply without sequence", subject)
	}
	np, err := strconv.ParseUint(m.Header.Get(numPendingHeader), 10, 63)
	if err != nil {
		return 0, 0, false, fmt.Errorf("journal: %s: direct get reply without pending count", subject)
	}
	return at, np + 1, true, nil
}

// firstSince returns the sequence of subject's first entry stored at or
// after t (by the stream's timestamps); ok is false if there is none.
func (j *Journal) firstSince(ctx context.Context, subject string, t time.Time) (uint64, bool, error) {
	t = t.UTC()
	m, err := j.getDirect(ctx, probeGet{NextFor: subject, StartTime: &t})
	if err != nil || m == nil {
		return 0, false, err
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("journal: %s: direct get reply without sequence", subject)
	}
	return seq, true, nil
}

// getDirect sends a direct get and returns the first reply, nil if no
// message matched.
func (j *Journal) getDirect(ctx context.Context, req probeGet) (*nats.Msg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := j.withTimeout(ctx)
	defer cancel()
	m, err := j.js.Conn().RequestWithContext(ctx, j.shardOf(req.NextFor).direct, body)
	if err != nil {
		return nil, fmt.Errorf("journal: direct get %s: %w", req.NextFor, err)
	}
	if len(m.Data) == 0 {
		switch m.Header.Get(statusHeader) {
		case "":
		case statusNoMessages:
			return nil, nil
		default:
			return nil, fmt.Errorf("journal: direct get %s: %s %s",
				req.NextFor, m.Header.Get(statusHeader), m.Header.Get(descHeader))
		}
	}
	return m, nil
}

// purgeBefore purges subject's entries before seq and returns how many
// the server removed.
func (j *Journal) purgeBefore(ctx context.Context, subject string, seq uint64) (uint64, error) {
	body, err := json.Marshal(purgeRequest{Filter: subject, Seq: seq})
	if err != nil {
		return 0, err
	}
	ctx, cancel := j.withTimeout(ctx)
	defer cancel()
	m, err := j.js.Conn().RequestWithContext(ctx, j.api+"STREAM.PURGE."+j.shardOf(subject).name, body)
	if err != nil {
		return 0, fmt.Errorf("journal: purge %s before %d: %w", subject, seq, err)
	}
	var resp purgeResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return 0, fmt.Errorf("journal: purge %s before %d: bad response: %w", subject, seq, err)
	}
	if resp.Error != nil {
		return 0, fmt.Errorf("journal: purge %s before %d: %w", subject, seq, resp.Error)
	}
	if !resp.Success {
		return 0, fmt.Errorf("journal: purge %s before %d: not successful", subject, seq)
	}
	return resp.Purged, nil
}

// withTimeout bounds ctx by the JetStream default timeout if it has no
// deadline.
func (j *Journal) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || j.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, j.timeout)
}

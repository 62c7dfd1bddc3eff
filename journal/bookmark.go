package journal

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// ErrInvalidBookmark: a string is not a bookmark, or names no entry of the
// object it is used with.
var ErrInvalidBookmark = errors.New("journal: invalid bookmark")

// Bookmark names an object's state as of one of its journal entries: the
// state after the entry with sequence Seq, whose CommitID it also holds
// (so that a bookmark of a journal that was deleted and recreated, or of
// another object, is refused rather than silently misread). The zero
// Bookmark is the empty state before the first entry.
//
// Its string form is 16 lowercase hex digits of Seq, a dash and the
// CommitID's 26 ULID characters:
// "00000000000004d2-01JQ0000000000000000000001". Bookmarks of one object
// sort as strings in the order of their sequences.
type Bookmark struct {
	Seq      uint64
	CommitID ulid.ULID
}

// bookmarkLen is the length of a bookmark's string form.
const bookmarkLen = 16 + 1 + ulid.EncodedSize

// String returns the bookmark's string form.
func (b Bookmark) String() string {
	s := make([]byte, 0, bookmarkLen)
	hex := strconv.FormatUint(b.Seq, 16)
	for i := len(hex); i < 16; i++ {
		s = append(s, '0')
	}
	s = append(s, hex...)
	s = append(s, '-')
	return string(append(s, b.CommitID.String()...))
}

// ParseBookmark parses a bookmark's string form. Errors wrap
// ErrInvalidBookmark.
func ParseBookmark(s string) (Bookmark, error) {
	var b Bookmark
	if len(s) != bookmarkLen || s[16] != '-' {
		return b, fmt.Errorf("%w: %q is not of the form SEQ-COMMITID (16 hex digits, a dash, a ULID)", ErrInvalidBookmark, s)
	}
	for _, c := range s[:16] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return b, fmt.Errorf("%w: %q: sequence is not 16 lowercase hex digits", ErrInvalidBookmark, s)
		}
	}
	seq, err := strconv.ParseUint(s[:16], 16, 64)
	if err != nil {
		return b, fmt.Errorf("%w: %q: %v", ErrInvalidBookmark, s, err)
	}
	id, err := ulid.ParseStrict(s[17:])
	if err != nil {
		return b, fmt.Errorf("%w: %q: commit ID: %v", ErrInvalidBookmark, s, err)
	}
	if b = (Bookmark{Seq: seq, CommitID: id}); b.String() != s {
		return Bookmark{}, fmt.Errorf("%w: %q is not in canonical form (%s)", ErrInvalidBookmark, s, b)
	}
	if (seq == 0) != (id == ulid.ULID{}) {
		return Bookmark{}, fmt.Errorf("%w: %q: only sequence 0 has the zero commit ID", ErrInvalidBookmark, s)
	}
	return b, nil
}

// EntryAt returns subject's entry with sequence seq; ok is false if the
// stream has no entry of subject there (another subject's message, or a
// purged entry).
func (j *Journal) EntryAt(ctx context.Context, subject string, seq uint64) (e *Entry, ok bool, err error) {
	if err := j.checkSubject(subject); err != nil {
		return nil, false, err
	}
	if seq == 0 {
		return nil, false, nil
	}
	m, err := j.getDirect(ctx, probeGet{Seq: seq, NextFor: subject, Batch: 1})
	if err != nil || m == nil {
		return nil, false, err
	}
	at, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, false, fmt.Errorf("journal: %s: direct get reply without sequence", subject)
	}
	if at != seq {
		return nil, false, nil
	}
	if e, err = Decode(m.Data); err != nil {
		return nil, false, fmt.Errorf("journal: %s seq %d: %w", subject, seq, err)
	}
	return e, true, nil
}

// Check returns an error wrapping ErrInvalidBookmark unless b names an
// entry of subject (or is the zero bookmark; a sequence 0 with another
// commit ID names nothing). A subject outside the journal is an error
// wrapping ErrInvalidArgument, whatever b.
func (j *Journal) Check(ctx context.Context, subject string, b Bookmark) error {
	if err := j.checkSubject(subject); err != nil {
		return err
	}
	switch {
	case b == Bookmark{}:
		return nil
	case b.Seq == 0:
		return fmt.Errorf("%w: %s: only sequence 0 has the zero commit ID", ErrInvalidBookmark, b)
	}
	e, ok, err := j.EntryAt(ctx, subject, b.Seq)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("%w: %s: %s has no entry at seq %d (another object's bookmark, or history purged)", ErrInvalidBookmark, b, subject, b.Seq)
	case e.CommitID != b.CommitID:
		return fmt.Errorf("%w: %s: the entry of %s at seq %d is %s (the journal was recreated?)", ErrInvalidBookmark, b, subject, b.Seq, e.CommitID)
	}
	return nil
}

// Origin describes where what is left of subject's history starts: its
// first entry left (0 if none), and whether that entry is the subject's
// very first one, applied to the empty state — appended with
// expected last sequence 0, and not a fork's first entry (FromSnapshot).
// When fromStart is false, states before the oldest snapshot can only be
// rebuilt through a restore entry.
func (j *Journal) Origin(ctx context.Context, subject string) (first uint64, fromStart bool, err error) {
	if err := j.checkSubject(subject); err != nil {
		return 0, false, err
	}
	m, err := j.getDirect(ctx, probeGet{Seq: 1, NextFor: subject, Batch: 1})
	if err != nil || m == nil {
		return 0, false, err
	}
	if first, err = strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64); err != nil {
		return 0, false, fmt.Errorf("journal: %s: direct get reply without sequence", subject)
	}
	if m.Header.Get(jetstream.ExpectedLastSubjSeqHeader) != "0" {
		return first, false, nil
	}
	e, err := Decode(m.Data)
	if err != nil {
		return 0, false, fmt.Errorf("journal: %s seq %d: %w", subject, first, err)
	}
	return first, !e.FromSnapshot, nil
}

package journal

import (
	"errors"
	"fmt"
)

// Sentinel errors. Compare with errors.Is: the errors returned by this
// package wrap them with context (subject, sequence, offset).
var (
	// ErrCorrupt: bytes are not a valid journal entry (bad magic, bad
	// checksum, truncated, trailing bytes, unknown op, impossible counts, ...),
	// or a stored message could not be decoded.
	ErrCorrupt = errors.New("journal: corrupt entry")
	// ErrVersion: the entry was written in a format version this build does
	// not know (a newer writer). Such errors also match ErrCorrupt; test for
	// ErrVersion first when the difference matters.
	ErrVersion = errors.New("journal: unsupported entry version")
	// ErrInvalidEntry: an Entry cannot be encoded (no transactions, unknown
	// op, unsupported SQL argument type, time out of range).
	ErrInvalidEntry = errors.New("journal: invalid entry")
	// ErrInvalidArgument: a bad Config, subject or sequence range.
	ErrInvalidArgument = errors.New("journal: invalid argument")
	// ErrConflict: an append was fenced off because the subject's last
	// sequence is not the one the writer expected — another writer appended
	// since. Nothing was written. The returned error is a *ConflictError.
	ErrConflict = errors.New("journal: conflict")
	// ErrLayout: the journal's streams are laid out otherwise than asked
	// (Config.Streams, Config.Partitions), or the recorded layout is bad.
	ErrLayout = errors.New("journal: layout")
	// ErrTooLarge: the encoded entry does not fit in one NATS message
	// (connection max_payload or stream max_msg_size). Nothing was written.
	ErrTooLarge = errors.New("journal: entry too large")
)

// ConflictError reports a fenced append: Subject's last sequence was not
// Expected. It matches ErrConflict.
type ConflictError struct {
	Subject  string
	Expected uint64 // the writer's expected last sequence (0 = empty subject)
	// Actual is the subject's last sequence as read after the conflict; 0
	// if the subject is empty or the read failed.
	Actual uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("journal: conflict on %s: expected last sequence %d, found %d",
		e.Subject, e.Expected, e.Actual)
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// versionError is returned for an unknown format version; it matches both
// ErrVersion and ErrCorrupt.
type versionError struct{ got byte }

func (e versionError) Error() string {
	return fmt.Sprintf("journal: unsupported entry version %d (this build reads 1 to %d)", e.got, Version)
}

func (e versionError) Is(target error) bool { return target == ErrVersion || target == ErrCorrupt }

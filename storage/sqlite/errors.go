package sqlite

import (
	"errors"
	"fmt"

	"modernc.org/sqlite"
	lib "modernc.org/sqlite/lib"

	"github.com/opendo/opendo/storage"
)

// ErrCorrupt: the database file itself is damaged, or is not an object
// database this build can read. SQLite reported SQLITE_CORRUPT or
// SQLITE_NOTADB (or one of their extended codes) while reading the file,
// or opendo's reserved table _cf_META holds values no build writes (a
// schema version other than this build's, a journal sequence that is
// negative or not an integer).
//
// Failures to open, lock, read or write a healthy file never match: too
// many open files (SQLITE_CANTOPEN), out of memory, a full disk, I/O
// errors, busy or locked files, permissions, a path that is a directory, a
// canceled context. The file is a cache of the journal: on ErrCorrupt the
// runtime may delete it and rebuild it from the journal; on any other
// error it must leave the file alone.
//
// Open's error matches ErrCorrupt exactly when the file is damaged. Errors
// of a DB's other methods match it when SQLite finds damage later (in a
// page Open did not read). Matching errors still unwrap to the SQLite
// error (*sqlite.Error, whose Code gives the extended result code).
var ErrCorrupt = errors.New("sqlite: corrupt database file")

var (
	errClosed    = fmt.Errorf("%w: database is closed", storage.ErrInvalidState)
	errNoRequest = fmt.Errorf("%w: no request transaction is open", storage.ErrInvalidState)
	errInRequest = fmt.Errorf("%w: a request transaction is open", storage.ErrInvalidState)
)

// corruptRC reports the SQLite result codes, primary or extended, that
// mean the file's content is damaged.
func corruptRC(rc int32) bool {
	switch rc & 0xff {
	case lib.SQLITE_CORRUPT, lib.SQLITE_NOTADB:
		return true
	}
	return false
}

// markCorrupt returns err unchanged, except that it matches ErrCorrupt
// when it carries a SQLite error whose code says the file is damaged.
func markCorrupt(err error) error {
	var se *sqlite.Error
	if err == nil || errors.Is(err, ErrCorrupt) || !errors.As(err, &se) || !corruptRC(int32(se.Code())) {
		return err
	}
	return &corruptError{err}
}

// corruptError is a SQLite error that reports a damaged file. Its message
// is SQLite's ("database disk image is malformed", "file is not a
// database"); it matches ErrCorrupt and unwraps to the SQLite error.
type corruptError struct{ err error }

func (e *corruptError) Error() string        { return e.err.Error() }
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }
func (e *corruptError) Unwrap() error        { return e.err }

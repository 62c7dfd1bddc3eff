package storage

import "errors"

// Sentinel errors. Every error returned by a Storage wraps one of these when
// it is caused by the caller's input; the call then changed nothing.
var (
	// ErrKeyTooLarge: a key is longer than MaxKeySize bytes.
	ErrKeyTooLarge = errors.New("storage: key too large")
	// ErrValueTooLarge: a value is longer than MaxValueSize bytes.
	ErrValueTooLarge = errors.New("storage: value too large")
	// ErrTooManyKeys: a multi call names more than MaxBatch keys or entries.
	ErrTooManyKeys = errors.New("storage: too many keys")
	// ErrInvalidArgument: the arguments are inconsistent (e.g. both Start and
	// StartAfter, or a negative Limit).
	ErrInvalidArgument = errors.New("storage: invalid argument")
	// ErrInvalidState: the call is not allowed here (e.g. DeleteAll inside a
	// Transaction), or the storage is used outside its request.
	ErrInvalidState = errors.New("storage: invalid state")
	// ErrLimitExceeded: a SQL limit was exceeded (parameters, statement
	// length, columns, LIKE pattern).
	ErrLimitExceeded = errors.New("storage: limit exceeded")
	// ErrSQL: SQLite rejected the statement (syntax, constraint, ...).
	ErrSQL = errors.New("storage: sql error")
	// ErrForbiddenSQL: the statement is not allowed (BEGIN/COMMIT, ATTACH,
	// VACUUM, journaling PRAGMAs, ...).
	ErrForbiddenSQL = errors.New("storage: forbidden sql")
	// ErrReservedName: the statement names one of opendo's reserved tables
	// (prefix "_cf_" or "_opendo_").
	ErrReservedName = errors.New("storage: reserved name")
	// ErrNotFound: Cursor.One found no row.
	ErrNotFound = errors.New("storage: no rows")
	// ErrMultipleRows: Cursor.One found more than one row.
	ErrMultipleRows = errors.New("storage: multiple rows")
	// ErrTransactionTooLarge: one transaction's journal record would exceed
	// the journal's maximum message size.
	ErrTransactionTooLarge = errors.New("storage: transaction too large")
	// ErrInvalidBookmark: a string is not a bookmark of this object.
	ErrInvalidBookmark = errors.New("storage: invalid bookmark")
	// ErrBookmarkExpired: the history a bookmark or a time needs is no
	// longer kept (journal retention).
	ErrBookmarkExpired = errors.New("storage: bookmark expired")
	// ErrNotImplemented: the feature is not built yet.
	ErrNotImplemented = errors.New("storage: not implemented")
)

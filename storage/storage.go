package storage

import (
	"context"
	"strconv"
	"time"
)

// Limits of the KV API (Cloudflare's).
const (
	MaxKeySize   = 2048   // bytes of a key
	MaxValueSize = 131072 // bytes of a value
	MaxBatch     = 128    // keys or entries per multi call
)

// Entry is one key/value pair.
type Entry struct {
	Key   string
	Value []byte
}

// ListOptions select a range of keys for List. Keys are compared as bytes
// (UTF-8 byte order). Zero values mean "no bound".
type ListOptions struct {
	Start      string // inclusive lower bound ("" = none)
	StartAfter string // exclusive lower bound; HasStartAfter tells whether it is set
	// HasStartAfter is true when StartAfter is set (an empty StartAfter skips only the empty key).
	HasStartAfter bool
	End           string // exclusive upper bound; HasEnd tells whether it is set
	HasEnd        bool   // an empty End selects nothing
	Prefix        string // keep keys with this prefix ("" = all)
	Reverse       bool   // descending order
	Limit         int    // at most this many entries (0 = no limit; negative is an error)
}

// KV is the key-value API of an object's storage, with Cloudflare semantics.
// Every method returns an error that wraps one of the sentinels in errors.go
// when the input is invalid; a call that fails changes nothing.
type KV interface {
	// Get returns the value of key and whether it exists.
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
	// GetMulti returns the existing keys among keys, sorted by key, each once.
	GetMulti(ctx context.Context, keys []string) ([]Entry, error)
	// Put stores value under key.
	Put(ctx context.Context, key string, value []byte) error
	// PutMulti stores all entries atomically.
	PutMulti(ctx context.Context, entries []Entry) error
	// Delete removes key and reports whether it existed.
	Delete(ctx context.Context, key string) (bool, error)
	// DeleteMulti removes keys and returns how many distinct keys existed.
	DeleteMulti(ctx context.Context, keys []string) (int, error)
	// List returns entries in key order, filtered by opts.
	List(ctx context.Context, opts ListOptions) ([]Entry, error)
}

// Alarms is the one-alarm-per-object API.
type Alarms interface {
	// Alarm returns the scheduled alarm time, if any. Inside an alarm handler it
	// returns ok=false (as Cloudflare's getAlarm returns null).
	Alarm(ctx context.Context) (t time.Time, ok bool, err error)
	// SetAlarm schedules the alarm, replacing any other. A time in the past is
	// stored as now and fires as soon as possible.
	SetAlarm(ctx context.Context, t time.Time) error
	// DeleteAlarm removes the alarm.
	DeleteAlarm(ctx context.Context) error
}

// Tx is the storage seen inside a Transaction: everything but DeleteAll
// (which returns ErrInvalidState there) works, and reads see the
// transaction's own writes.
type Tx interface {
	KV
	Alarms
	SQL() SQL
	// Transaction runs fn in a nested transaction (a savepoint).
	Transaction(ctx context.Context, fn func(tx Tx) error) error
	// DeleteAll returns ErrInvalidState inside a transaction.
	DeleteAll(ctx context.Context) error
}

// Storage is an object's transactional storage, as seen by its handler.
//
// All writes made while one request is handled form one atomic transaction,
// journaled and made durable before the reply is released. Storage is not
// safe for concurrent use: only the object's own goroutine calls it.
type Storage interface {
	Tx
	// Sync returns once every write made so far is durable. Writes are made
	// durable before the reply anyway; Sync is for handlers that talk to the
	// outside world in the middle of a request.
	Sync(ctx context.Context) error
	// DatabaseSize returns the bytes in use by the object's database.
	DatabaseSize(ctx context.Context) (int64, error)
	Bookmarks
}

// Bookmarks is point-in-time recovery from inside an object, like
// Cloudflare's bookmarks. A bookmark is an opaque string naming the
// object's state as of one of its journal entries; bookmarks of one object
// sort as strings in history order. Only a journaled runtime (package
// actor) has them; elsewhere the methods return ErrNotImplemented.
// docs/bookmarks.md has the details.
type Bookmarks interface {
	// Bookmark returns a bookmark of the state left by every transaction
	// committed before the current request, waiting until they are
	// journaled. The current request's own writes are not part of it.
	Bookmark(ctx context.Context) (string, error)
	// BookmarkForTime returns a bookmark of the state as of t: after the
	// last journal entry written at or before t (entries carry the
	// runtime clock's time). A t before the object's first entry names the
	// empty state. It fails with ErrBookmarkExpired if the history of t is
	// no longer kept.
	BookmarkForTime(ctx context.Context, t time.Time) (string, error)
	// RestoreBookmark asks for the object's state to become the one named
	// by bookmark, and returns a bookmark of the state before the restore
	// (to undo it). The restore is journaled as the current request's
	// transaction, replacing the request's own writes (made before or
	// after the call; they are discarded). It applies when the request
	// returns successfully: the object is then closed, and its next
	// activation (the next request or alarm) sees the restored state, its
	// KV pairs, SQL tables and alarm. Until the request returns, it sees
	// the current state. Errors wrap ErrInvalidBookmark (not a bookmark of
	// this object) or ErrBookmarkExpired (history purged).
	RestoreBookmark(ctx context.Context, bookmark string) (undo string, err error)
}

// SQL runs SQL against the object's own database. Writes are journaled with
// the request's transaction and replayed deterministically (docs/sql.md).
type SQL interface {
	// Exec runs the statements of query one at a time, in order, inside the
	// request's transaction (or the enclosing Transaction). The Cursor
	// describes the last statement; its rows are read in full. When a
	// statement fails, the ones before it keep their effects. args bind to
	// the last statement's parameters (?, ?NNN, :name, @name, $name in
	// SQLite's numbering) and must match their number; earlier statements
	// may not have parameters. Arguments are nil, integers, floats, bool
	// (INTEGER 0/1), string (TEXT) or []byte (BLOB; a nil slice is NULL).
	//
	// Errors wrap ErrInvalidArgument (no statement, wrong number of
	// arguments), ErrSQL (SQLite's own errors), ErrForbiddenSQL
	// (transaction control, ATTACH, VACUUM, TEMP objects, most PRAGMAs),
	// ErrReservedName (the runtime's _cf_ tables) or ErrLimitExceeded.
	Exec(ctx context.Context, query string, args ...any) (*Cursor, error)
}

// Op is the kind of a Mutation.
type Op uint8

// Mutation kinds. The numbers are part of the journal format: never reuse one.
const (
	OpPut         Op = 1 // Key, Value
	OpDelete      Op = 2 // Key
	OpDeleteAll   Op = 3 // (no fields)
	OpSQL         Op = 4 // SQL, Args
	OpSetAlarm    Op = 5 // Alarm
	OpDeleteAlarm Op = 6 // (no fields)
	// OpRestore replaces the whole state (KV, SQL, alarm) by the object's
	// state as of journal sequence Target (a bookmark restore). It is alone
	// in its transaction, and that transaction alone in its journal entry.
	OpRestore Op = 7 // Target
)

func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpDeleteAll:
		return "deleteAll"
	case OpSQL:
		return "sql"
	case OpSetAlarm:
		return "setAlarm"
	case OpDeleteAlarm:
		return "deleteAlarm"
	case OpRestore:
		return "restore"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Mutation is one recorded state change. A transaction is an ordered list
// of mutations; replaying them in order on the state before the transaction
// yields the state after it.
type Mutation struct {
	Op    Op
	Key   string // OpPut, OpDelete
	Value []byte // OpPut
	SQL   string // OpSQL: one statement
	Args  []any  // OpSQL: nil, int64, float64, string or []byte
	Alarm int64  // OpSetAlarm: Unix milliseconds
	// Target is, for OpRestore, the journal sequence of the object's entry
	// whose state is restored (0: the empty state before the first entry).
	Target uint64
}

// TxContext holds a transaction's deterministic inputs: SQL functions that
// would differ on replay (current time, random) derive their results from it.
type TxContext struct {
	Time time.Time // the transaction's "now"
	Seed uint64    // seeds random() and randomblob()
}

// Txn is one committed transaction as it is journaled and replayed: the
// request that made it, its deterministic inputs and its ordered mutations.
type Txn struct {
	RequestID string
	Context   TxContext
	Mutations []Mutation
}

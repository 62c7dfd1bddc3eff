// Package sqlite implements storage.Storage on one SQLite database file per
// object (modernc.org/sqlite, no cgo).
//
// # Model
//
// A DB is one object's file with a single connection, owned by the object's
// goroutine. The runtime drives it request by request:
//
//	db.Begin(ctx, tc, inAlarm)     // BEGIN DEFERRED
//	handler(db.Storage())          // KV, alarm, Transaction (savepoints)
//	muts, err := db.Commit(ctx)    // COMMIT; muts go to the journal
//	db.MarkDurable(ctx, seq, ...)  // once the journal has them
//
// or db.Rollback(ctx) to abandon the request. Every effective write is
// recorded, in order, as a storage.Mutation: OpPut (value copied), OpDelete
// (only for keys that existed), OpDeleteAll, OpSQL (one statement and its
// arguments), OpSetAlarm (Unix ms, already clamped to the transaction's
// now) and OpDeleteAlarm (only when an alarm existed). Writes undone by a
// failed Transaction are dropped from the log. Apply replays journaled mutations and must reproduce the same file
// content; the tests check this by comparing ContentHash.
//
// # Durability
//
// The journal, not the file, is the source of truth, so the file runs with
// journal_mode=WAL and synchronous=NORMAL. The reserved table _cf_META
// records the journal sequence the file reflects ("seq") and whether
// locally committed transactions may exist beyond it ("dirty"). Commit
// sets dirty in the same SQLite transaction as the request's writes;
// MarkDurable and Apply record seq. Seq reports both; a dirty file cannot
// take a journal tail through Apply (its local commits may or may not be
// in the journal) and has to be rebuilt.
//
// # Creating and opening files
//
// Open creates a new file by writing an embedded template (template.db:
// the empty file its SQL setup makes, checked byte for byte by
// TestTemplate) with O_EXCL and no fsync, instead of running that setup.
// Opening any file reads its journal mode, the rows of _cf_META and the
// root of _cf_KV in one statement, and prepares the runtime's statements
// only when they are first used.
//
// A file whose content is damaged fails Open with an error matching
// ErrCorrupt (SQLITE_CORRUPT, SQLITE_NOTADB, or impossible values in
// _cf_META); such a file, including a new one torn by a crash, may be
// deleted and rebuilt from the journal. Every other failure (too many open
// files, out of memory, disk full, I/O errors, locks) says nothing about
// the file, which must then be kept. Open itself never deletes a file.
//
// # File layout
//
//	_cf_KV(key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID
//	_cf_META(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID
//	        rows: schema (1), seq, seqtx and lasttx (transaction seeds, see
//	        Seq and LastTx), alarm (Unix ms; absent if none)
//
// Keys are always bound as BLOBs (a CHECK enforces it), so SQLite's memcmp
// order is the storage's key order: UTF-8 byte order, empty key first. A
// value's existence is the row's; an empty value is an empty BLOB, which
// the driver reads back as nil and this package returns as []byte{}.
// List selects one range of the primary key: a prefix p becomes
// [p, successor(p)), intersected with Start/StartAfter/End.
//
// # Limits and errors
//
// Keys of at most storage.MaxKeySize bytes, values of at most
// storage.MaxValueSize bytes, at most storage.MaxBatch keys or entries per
// multi call; every limit is checked before anything is written, so a
// failing call changes nothing and its error wraps a storage sentinel. A
// SQLite failure in the middle of a request (I/O, out of memory) leaves the
// request's state unknown: later calls fail and Commit rolls back.
//
// # SQL
//
// User tables live beside the reserved tables in the same file and the same
// request transaction, so SQL and KV writes commit or roll back together.
// SQL().Exec prepares the statements of a query one at a time with
// SQLite's C API (capi.go): an authorizer keeps user SQL away from the
// reserved tables (names starting with _cf_ or _opendo_), transaction
// control, ATTACH, TEMP objects and PRAGMAs that touch the connection or
// durability; sqlite3_limit enforces Cloudflare's limits. Every statement
// that can change the database (not sqlite3_stmt_readonly, or a journaled
// PRAGMA) is recorded as one OpSQL mutation with its normalized arguments;
// a statement that fails is not recorded (SQLite undoes it). ON CONFLICT
// FAIL and ROLLBACK are refused: their effects could not be journaled.
//
// Replay runs the same statements again. SQLite's outside inputs come from
// the transaction's storage.TxContext: the clock of a VFS private to the
// DB (date('now'), CURRENT_TIMESTAMP, ...), random() and randomblob()
// keyed by the seed and the statement's position in the transaction, and
// changes(), total_changes() and last_insert_rowid() counted per
// transaction (determinism.go). ContentHash hashes what replay must
// reproduce; the tests rebuild files from journals and compare hashes.
// docs/sql.md lists what stays outside this guarantee.
//
// DeleteAll also drops every user table, index, view and trigger (and
// AUTOINCREMENT counters, statistics and user_version); its replay does the
// same.
//
// # Concurrency
//
// A DB and its Storage are not safe for concurrent use. Statements run with
// context.Background() inside the driver (a cancelable context would cost a
// goroutine per statement); each call checks its ctx before it starts. User
// SQL is also interrupted when its ctx ends (a progress handler checks it
// every 1000 virtual machine steps); an interrupted write fails the
// request. Never open one file twice at a time.
package sqlite

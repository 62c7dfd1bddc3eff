// Package sqlite implements storage.Storage on one SQLite database file per
// object (modernc.org/sqlite, no cgo).
//
// # Model
//
// A DB is one object's file with a single connection, owned by the object's
// goroutine. The runtime drives it request by request:
//
//	db.Begin(ctx, tc, inAlarm)     // BEGIN IMMEDIATE
//	handler(db.Storage())          // KV, alarm, Transaction (savepoints)
//	muts, err := db.Commit(ctx)    // COMMIT; muts go to the journal
//	db.MarkDurable(ctx, seq, ...)  // once the journal has them
//
// or db.Rollback(ctx) to abandon the request. Every effective write is
// recorded, in order, as a storage.Mutation: OpPut (value copied), OpDelete
// (only for keys that existed), OpDeleteAll, OpSetAlarm (Unix ms, already
// clamped to the transaction's now) and OpDeleteAlarm (only when an alarm
// existed). Writes undone by a failed Transaction are dropped from the log.
// Apply replays journaled mutations and must reproduce the same file
// content; the tests check this by comparing dumps.
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
// # File layout
//
//	_cf_KV(key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID
//	_cf_META(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID
//	        rows: schema (1), seq, dirty (0/1), alarm (Unix ms; absent if none)
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
// User SQL is not built yet: SQL().Exec returns storage.ErrNotImplemented,
// DeleteAll drops no SQL tables and Apply rejects OpSQL (see sql.go for the
// seams). User tables will live beside the reserved _cf_ tables.
//
// # Concurrency
//
// A DB and its Storage are not safe for concurrent use. Statements run with
// context.Background() inside the driver (a cancelable context would cost a
// goroutine per statement); each call checks its ctx before it starts.
// Never open one file twice at a time.
package sqlite

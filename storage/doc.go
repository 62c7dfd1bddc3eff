// Package storage defines the storage API that an object's handler sees —
// key-value (with Cloudflare Durable Objects semantics), SQL, one alarm and
// transactions — and the vocabulary of recorded changes (Mutation, Txn)
// that the journal persists and replays.
//
// Implementations live in sub-packages (storage/sqlite). This package
// imports nothing else of opendo.
//
// # Semantics
//
// Keys are strings compared as bytes (UTF-8 byte order, which is code-point
// order); values are opaque bytes. A key is at most MaxKeySize bytes, a
// value at most MaxValueSize bytes, and a multi call names at most MaxBatch
// keys. A call that fails (any error wrapping a sentinel of errors.go)
// changes nothing.
//
// All writes made while one request is handled form one transaction.
// Transaction gives an explicit atomic unit that is rolled back when its
// function returns an error or panics; nested calls are savepoints.
//
// # Concurrency
//
// A Storage belongs to one object and is used only by that object's
// goroutine; it is not safe for concurrent use.
package storage

// Package actor is opendo's runtime: it hosts objects — single-threaded
// actors with a name and transactional storage — and serves their requests
// from NATS.
//
// # Model
//
// A namespace is a class of objects registered with a Factory. An object is
// addressed by name (its ID is derived with NameID) or by a unique ID
// (NewUniqueID). Each active object has one goroutine that takes requests
// from its mailbox one at a time, in arrival order, and calls its Handler.
//
// # Durability and the output gate
//
// All storage writes made while one request is handled form one
// transaction. When the handler returns, the transaction is committed to
// the object's SQLite file and appended to its journal subject on
// JetStream, fenced with the subject's expected last sequence. The reply
// leaves only when that append is acknowledged. Meanwhile the object goes
// on with later requests; their replies wait behind the earlier append, and
// transactions that pile up while an append is in flight share the next
// journal entry (group commit). If an append fails, every held reply gets
// an error and the object is reset to its last durable state by rebuilding
// its file from the journal. No caller ever sees a write that is not
// durable.
//
// A handler that returns an error or panics has its writes rolled back and
// its caller gets an error reply; a panicking handler is rebuilt by its
// factory. Other objects do not notice.
//
// # Bookmarks
//
// Storage().Bookmark, BookmarkForTime and RestoreBookmark give objects
// point-in-time restore, like Cloudflare's bookmarks: a restore is
// journaled as the request's transaction, the object closes once it is
// durable, and the next activation rebuilds the state the bookmark names
// (docs/bookmarks.md).
//
// # Lifecycle
//
// New → Register → Start → Close. Objects idle for Config.IdleTimeout are
// evicted (file closed) and reactivated by their next request.
package actor

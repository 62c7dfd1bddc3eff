package sqlite

import "github.com/opendo/opendo/storage"

// Pending returns the mutations recorded so far in the open request
// transaction, without copying: the runtime sizes the journal record with
// it before committing. The slice is valid until the next write.
func (db *DB) Pending() []storage.Mutation { return db.log }

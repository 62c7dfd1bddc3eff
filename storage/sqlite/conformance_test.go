package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opendo/opendo/storage"
	"github.com/opendo/opendo/storage/sqlite"
	"github.com/opendo/opendo/storage/storagetest"
)

type session struct {
	db  *sqlite.DB
	now time.Time
}

func (s *session) Storage() storage.Storage { return s.db.Storage() }
func (s *session) Now() time.Time           { return s.now }

// LaxCounters is true: Cloudflare's rowsRead/rowsWritten come from a
// patched SQLite (libsql's per-statement counters of cursor visits and of
// table and index writes), which modernc.org/sqlite does not have. This
// package reports approximations (rows changed, rows stepped in full scans
// or returned); see docs/sql.md. OPENDO_STRICT_COUNTERS=1 compares them
// exactly, to measure how far off they are.
func (s *session) LaxCounters() bool { return os.Getenv("OPENDO_STRICT_COUNTERS") == "" }

func TestConformance(t *testing.T) {
	dir := storagetest.CorpusDir(t)
	storagetest.RunConformance(t, dir, func(t *testing.T) storagetest.Session {
		ctx := t.Context()
		db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "object.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Error(err)
			}
		})
		now := time.Now().Truncate(time.Millisecond)
		if err := db.Begin(ctx, storage.TxContext{Time: now, Seed: 1}, false); err != nil {
			t.Fatal(err)
		}
		return &session{db: db, now: now}
	})
}

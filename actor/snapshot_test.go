package actor_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/journal"
)

// TestSnapshotAndRetention: snapshots are taken as entries pile up, the
// journal history they cover is purged, and an object whose files are all
// gone comes back from the latest snapshot plus the journal tail.
func TestSnapshotAndRetention(t *testing.T) {
	srv := natstest.Start(t)
	data := t.TempDir()
	cfg := func(c *actor.Config) {
		c.SnapshotEvery = 5
		c.Retention = &journal.Retention{KeepEntries: 2}
	}
	e := newEnv(t, srv, data, cfg)
	const n = 23
	for i := 1; i <= n; i++ {
		if got := e.mustCall(t, "counter", "snap", "incr", ""); got != strconv.Itoa(i) {
			t.Fatalf("incr %d: %s", i, got)
		}
	}
	jr := openJournal(t, e)
	snaps, err := journal.OpenSnapshots(t.Context(), e.srv.JetStream(t), journal.SnapshotConfig{})
	if err != nil {
		t.Fatal(err)
	}
	subject := e.rt.Subjects().Journal("counter", string(actor.NameID("counter", "snap")))
	// Uploads and purges run in the background: wait for them.
	var kept int
	waitFor(t, func() bool {
		info, ok, err := snaps.Latest(t.Context(), subject)
		if err != nil || !ok || info.Seq == 0 {
			return false
		}
		entries, err := jr.Subjects(t.Context(), subject)
		if err != nil {
			return false
		}
		kept = int(entries[subject])
		return kept < n
	})
	t.Logf("%d of %d journal entries kept after purges", kept, n)
	closeRuntime(t, e.rt)

	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, srv, data, cfg)
	if got := e2.mustCall(t, "counter", "snap", "get", ""); got != strconv.Itoa(n) {
		t.Fatalf("restored from snapshot + tail: %s, want %d", got, n)
	}
	if got := e2.mustCall(t, "counter", "snap", "incr", ""); got != strconv.Itoa(n+1) {
		t.Fatalf("incr after restore: %s", got)
	}
}

package bus

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestStoreSyncerSeesNewBlocks: the syncer's cached listings never miss a
// message block, a stream or an account created after a sync, even at once
// (within the file system's timestamp granularity).
func TestStoreSyncerSeesNewBlocks(t *testing.T) {
	store := t.TempDir()
	s := newStoreSyncer(store)
	defer s.close()
	mk := func(parts ...string) string {
		p := filepath.Join(append([]string{store, "jetstream"}, parts...)...)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	want := []string{mk("$G", "streams", "A", "msgs", "1.blk")}
	mk("$G", "streams", "A", "msgs", "1.idx") // not a block
	check := func(step string) {
		t.Helper()
		if err := s.sync(); err != nil {
			t.Fatalf("%s: sync: %v", step, err)
		}
		got := s.blocks()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: blocks %v, want %v", step, got, want)
		}
	}
	check("first")
	for i, parts := range [][]string{
		{"$G", "streams", "A", "msgs", "2.blk"},  // a new block, right after a sync
		{"$G", "streams", "B", "msgs", "1.blk"},  // a new stream
		{"ACC", "streams", "C", "msgs", "1.blk"}, // a new account
		{"$G", "streams", "A", "msgs", "3.blk"},
	} {
		want = append(want, mk(parts...))
		check("step " + string(rune('1'+i)))
		check("again") // cached
	}
	if err := os.Remove(want[0]); err != nil {
		t.Fatal(err)
	}
	want = want[1:]
	check("removed")
}

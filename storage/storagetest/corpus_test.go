package storagetest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/opendo/opendo/storage/storagetest"
)

// TestCorpusMatchesShared: the corpus kept in the repository is the one in
// the team's shared/conformance folder, when that folder is checked out
// beside the repository (a fresh clone has no such folder: skipped).
func TestCorpusMatchesShared(t *testing.T) {
	if os.Getenv("OPENDO_CONFORMANCE_DIR") != "" {
		t.Skip("OPENDO_CONFORMANCE_DIR is set")
	}
	mine := storagetest.CorpusDir(t)
	root := filepath.Join(mine, "..", "..", "..", "..") // the module root
	shared := filepath.Join(root, "..", "shared", "conformance", "public")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("no shared corpus beside the repository (%v)", err)
	}
	for _, sub := range []string{"cases", "expected"} {
		theirs, err := filepath.Glob(filepath.Join(shared, sub, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		ours, err := filepath.Glob(filepath.Join(mine, sub, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ours) != len(theirs) {
			t.Errorf("%s: %d files here, %d in %s", sub, len(ours), len(theirs), shared)
		}
		for _, p := range theirs {
			want, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(mine, sub, filepath.Base(p)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s/%s differs from the shared corpus (%v): copy it again", sub, filepath.Base(p), err)
			}
		}
	}
}

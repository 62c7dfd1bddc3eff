package e2e

import (
	"context"
	"strings"
	"testing"
)

// TestRestoreSurvivesKill restores a counter to a bookmark, kills
// `opendo dev` with SIGKILL right after the restore is acknowledged, and
// checks that the restart serves the restored state, then undoes it.
func TestRestoreSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts and kills the opendo binary; skipped with -short")
	}
	const name = "restored"
	dataDir := t.TempDir()
	p := startDev(t, "first run", dataDir)
	c := newClient(t, connect(t, p.URL))
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	call := func(path, body string) string {
		t.Helper()
		resp, err := c.Namespace("counter").Get(name).Do(ctx, path, []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return strings.TrimSpace(string(resp.Body))
	}
	for range 5 {
		call("incr", "")
	}
	bookmark := call("bookmark", "")
	for range 5 {
		call("incr", "")
	}
	undo := call("restore", bookmark)
	p.kill()

	p = startDev(t, "restart", dataDir)
	if n := getCounter(t, p, name); n != 5 {
		t.Fatalf("after restore and SIGKILL: counter %d, want 5", n)
	}
	c = newClient(t, connect(t, p.URL))
	if got := call("incr", ""); got != "6" {
		t.Fatalf("incr after the restore: %s, want 6", got)
	}
	call("restore", undo)
	if got := call("get", ""); got != "10" {
		t.Fatalf("after undoing the restore: %s, want 10", got)
	}
}

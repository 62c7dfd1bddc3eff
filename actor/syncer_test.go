package actor_test

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opendo/opendo/actor"
)

// TestSyncGroupCommit: with Config.Sync every reply waits for a Sync that
// started after its append was acknowledged, and concurrent writes share
// Sync calls.
func TestSyncGroupCommit(t *testing.T) {
	var calls atomic.Int64
	e := newEnv(t, nil, "", func(c *actor.Config) {
		c.Sync = func() error { calls.Add(1); return nil }
	})
	const callers, each = 16, 20
	var wg sync.WaitGroup
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := e.call(t, "counter", "o"+strconv.Itoa(c%4), "incr", ""); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	n := calls.Load()
	if n == 0 || n > callers*each {
		t.Fatalf("%d syncs for %d writes", n, callers*each)
	}
	t.Logf("%d writes, %d syncs", callers*each, n)
	for o := 0; o < 4; o++ {
		if got := e.mustCall(t, "counter", "o"+strconv.Itoa(o), "get", ""); got != strconv.Itoa(callers*each/4) {
			t.Fatalf("o%d = %s", o, got)
		}
	}
}

func TestSyncFailureFailsReplies(t *testing.T) {
	var fail atomic.Bool
	e := newEnv(t, nil, "", func(c *actor.Config) {
		c.Sync = func() error {
			if fail.Load() {
				return errors.New("disk on fire")
			}
			return nil
		}
	})
	e.mustCall(t, "counter", "s", "incr", "")
	fail.Store(true)
	_, err := e.call(t, "counter", "s", "incr", "")
	wantCode(t, err, actor.CodeUnavailable)
	fail.Store(false)
	// The object was reset and rebuilt from the journal: the failed
	// write's append was acknowledged by the journal, so it is there.
	if got := e.mustCall(t, "counter", "s", "get", ""); got != "2" {
		t.Fatalf("after a failed sync: %s, want 2 (the journal has both writes)", got)
	}
}

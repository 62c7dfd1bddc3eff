package actor_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/internal/clocktest"
	"github.com/opendo/opendo/storage"
	"github.com/opendo/opendo/storage/storagetest"
)

// TestConformanceThroughRuntime runs the storage conformance corpus
// (recorded from workerd) on what a handler gets: each case is one request
// to a brand-new object of a real runtime, its ops run inside the handler
// on the object's storage, and the request's writes are journaled as any
// handler's are. The runtime's clock stands still, so that the alarm ops'
// relative times are exact and no alarm fires during a case.
func TestConformanceThroughRuntime(t *testing.T) {
	dir := storagetest.CorpusDir(t)
	clock := clocktest.New(time.Now().Truncate(time.Millisecond))
	var (
		mu    sync.Mutex
		execs = map[string]func(storage.Storage, time.Time){}
	)
	e := newEnvWith(t, nil, "", func(c *actor.Config) { c.Clock = clock }, func(rt *actor.Runtime) {
		err := rt.Register("conformance", func(state *actor.State) actor.Handler {
			return actor.HandlerFunc(func(ctx context.Context, req *actor.Request) (*actor.Response, error) {
				mu.Lock()
				exec := execs[string(req.Body)]
				mu.Unlock()
				if exec == nil {
					return actor.Text("no case"), nil
				}
				exec(state.Storage(), clock.Now())
				return actor.Text("ran"), nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	var n atomic.Int64
	lax := os.Getenv("OPENDO_STRICT_COUNTERS") == ""
	storagetest.RunConformanceInside(t, dir, func(t *testing.T, exec func(storage.Storage, time.Time)) bool {
		key := t.Name() + "#" + strconv.FormatInt(n.Add(1), 10)
		mu.Lock()
		execs[key] = exec
		mu.Unlock()
		resp, err := e.client.Namespace("conformance").Get(key).Do(context.Background(), "run", []byte(key))
		if err != nil {
			t.Fatalf("the case's request: %v", err)
		}
		if string(resp.Body) != "ran" {
			t.Fatalf("the case's request: %q", resp.Body)
		}
		return lax
	})
}

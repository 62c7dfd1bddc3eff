package actor_test

import (
	"context"
	"testing"
	"time"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/examples/counter"
	"github.com/opendo/opendo/internal/natstest"
)

// BenchmarkRestoreBookmark measures a restore of a counter with 1,000
// entries to a bookmark 500 entries back (the request: validation, a
// rebuild of the target in a scratch file, the journal append) and the
// next request (the activation that rebuilds the restored state), against
// a plain increment measured side by side.
//
//	go test -run '^$' -bench RestoreBookmark -benchtime 50x ./actor/
func BenchmarkRestoreBookmark(b *testing.B) {
	srv := natstest.Start(b)
	nc := srv.Conn(b)
	ctx := context.Background()
	rt, c := counterRuntime(b, actor.Config{Conn: nc, DataDir: b.TempDir(), SnapshotEvery: 250})
	defer rt.Close(ctx)
	obj := c.Namespace(counter.Namespace).Get("bench")
	call := func(path, body string) string {
		resp, err := obj.Do(ctx, path, []byte(body))
		if err != nil {
			b.Fatalf("%s: %v", path, err)
		}
		return string(resp.Body)
	}
	var bookmark string
	for i := 1; i <= 1000; i++ {
		call("incr", "")
		if i == 500 {
			bookmark = call("bookmark", "")
		}
	}
	var restore, activate, incr time.Duration
	for b.Loop() {
		start := time.Now()
		undo := call("restore", bookmark)
		restore += time.Since(start)
		start = time.Now()
		if got := call("get", ""); got != "500" {
			b.Fatalf("after restore: %s", got)
		}
		activate += time.Since(start)
		start = time.Now()
		call("incr", "")
		incr += time.Since(start)
		call("restore", undo) // back to 1000 entries of history ahead
	}
	n := float64(b.N)
	b.ReportMetric(float64(restore.Microseconds())/1000/n, "ms/restore")
	b.ReportMetric(float64(activate.Microseconds())/1000/n, "ms/activation")
	b.ReportMetric(float64(incr.Microseconds())/1000/n, "ms/incr")
	b.ReportMetric(float64(restore)/float64(incr), "restore/incr")
}

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opendo/opendo/actor"
)

const (
	crashObject    = "crash"
	crashCallers   = 16
	maxCallsRound  = 20000 // bound on the calls of one round, whatever the load time
	minLoad        = 200 * time.Millisecond
	maxLoad        = 600 * time.Millisecond
	drainTimeout   = 30 * time.Second // callers must all return this long after the kill
	defaultRounds  = 5
	roundsEnvVar   = "OPENDO_E2E_ROUNDS"
	gracefulObject = "graceful"
)

// crashRounds returns the number of rounds: OPENDO_E2E_ROUNDS or def.
func crashRounds(t *testing.T, def int) int {
	t.Helper()
	s := os.Getenv(roundsEnvVar)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", roundsEnvVar, s)
	}
	return n
}

// TestCrashLosesNoAcknowledgedWrite kills `opendo dev` with SIGKILL while
// 16 callers increment one counter, restarts it on the same data directory,
// and checks that every acknowledged increment survived and that nothing
// that was never sent appeared.
func TestCrashLosesNoAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts and kills the opendo binary; skipped with -short")
	}
	rounds := crashRounds(t, defaultRounds)
	t.Run("sync=default", func(t *testing.T) {
		runCrashRounds(t, rounds)
	})
	t.Run("sync=always", func(t *testing.T) {
		runCrashRounds(t, max(1, rounds*2/5), "-sync", "always")
	})
}

// roundStats are the figures of one load-and-kill round.
type roundStats struct {
	load        time.Duration
	sent        int64 // calls issued
	acked       int64 // successful replies
	maxAcked    int64 // largest value acknowledged (0 if none)
	values      []int64
	errsBefore  map[string]int // errors seen before the kill
	errsAfter   map[string]int // errors seen from the kill on
	callsCapped bool           // the round stopped at maxCallsRound before the timer
}

// totals accumulate the figures of every round so far.
type totals struct {
	sent, acked, maxAcked int64
	seen                  map[int64]int // acknowledged value -> round
}

func runCrashRounds(t *testing.T, rounds int, devArgs ...string) {
	dataDir := t.TempDir()
	tot := totals{seen: make(map[int64]int)}
	for r := 1; r <= rounds; r++ {
		p := startDev(t, fmt.Sprintf("round %d", r), dataDir, devArgs...)
		before := getCounter(t, p, crashObject)
		if r > 1 {
			checkFinal(t, r-1, before, tot)
		} else if before != 0 {
			t.Fatalf("fresh data directory: counter = %d, want 0", before)
		}
		st := loadAndKill(t, p)

		for _, v := range st.values {
			if prev, dup := tot.seen[v]; dup {
				t.Errorf("round %d: value %d acknowledged twice (also in round %d): an acknowledged increment was lost", r, v, prev)
			}
			tot.seen[v] = r
			if v <= before || v > before+st.sent {
				t.Errorf("round %d: acknowledged value %d outside (%d, %d] (counter at start + calls sent)", r, v, before, before+st.sent)
			}
		}
		tot.sent += st.sent
		tot.acked += st.acked
		tot.maxAcked = max(tot.maxAcked, st.maxAcked)
		t.Logf("round %d: start=%d load=%v sent=%d acked=%d max_acked=%d capped=%v | totals sent=%d acked=%d max_acked=%d | errors before kill %v, after kill %v",
			r, before, st.load.Round(time.Millisecond), st.sent, st.acked, st.maxAcked, st.callsCapped,
			tot.sent, tot.acked, tot.maxAcked, fmtErrs(st.errsBefore), fmtErrs(st.errsAfter))
		if st.acked == 0 {
			t.Errorf("round %d: no call acknowledged before the kill: the round checks nothing", r)
		}
		if t.Failed() {
			return
		}
	}
	p := startDev(t, "final restart", dataDir, devArgs...)
	final := getCounter(t, p, crashObject)
	checkFinal(t, rounds, final, tot)
	p.kill()
}

// checkFinal checks the counter read after restarting from round r.
func checkFinal(t *testing.T, r int, final int64, tot totals) {
	t.Helper()
	t.Logf("after round %d: final=%d (acked_total=%d ≤ final ≤ sent_total=%d, final ≥ max_acked=%d)",
		r, final, tot.acked, tot.sent, tot.maxAcked)
	if final < tot.acked {
		t.Errorf("after round %d: counter %d < %d acknowledged increments: acknowledged writes lost", r, final, tot.acked)
	}
	if final > tot.sent {
		t.Errorf("after round %d: counter %d > %d increments sent: writes from nowhere", r, final, tot.sent)
	}
	if final < tot.maxAcked {
		t.Errorf("after round %d: counter %d < %d, a value already acknowledged: acknowledged writes lost", r, final, tot.maxAcked)
	}
}

// loadAndKill runs crashCallers concurrent incrementers against p for a
// random 200–600 ms (at most maxCallsRound calls), SIGKILLs p while calls
// are in flight, and waits for every caller to return.
func loadAndKill(t *testing.T, p *devProc) roundStats {
	t.Helper()
	st := roundStats{
		load:       minLoad + rand.N(maxLoad-minLoad+1),
		errsBefore: make(map[string]int),
		errsAfter:  make(map[string]int),
	}
	var (
		mu       sync.Mutex // guards st.values, st.errs*, st.maxAcked
		reserved atomic.Int64
		sent     atomic.Int64
		acked    atomic.Int64
		stop     atomic.Bool
		killed   atomic.Bool
		wg       sync.WaitGroup
	)
	clients := make([]*actor.Client, crashCallers)
	for i := range clients {
		clients[i] = newClient(t, connect(t, p.URL))
	}
	allDone := make(chan struct{})
	for _, c := range clients {
		wg.Go(func() {
			for !stop.Load() && reserved.Add(1) <= maxCallsRound {
				sent.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				n, err := callInt(ctx, c, crashObject, "incr")
				cancel()
				mu.Lock()
				if err != nil {
					if killed.Load() {
						st.errsAfter[errKind(err)]++
					} else {
						st.errsBefore[errKind(err)]++
					}
				} else {
					acked.Add(1)
					st.values = append(st.values, n)
					st.maxAcked = max(st.maxAcked, n)
				}
				mu.Unlock()
				if err != nil && killed.Load() {
					return // the server is gone; the connection does not reconnect
				}
			}
		})
	}
	go func() { wg.Wait(); close(allDone) }()

	timer := time.NewTimer(st.load)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-allDone:
		st.callsCapped = true
	}
	killed.Store(true)
	p.kill()
	stop.Store(true)
	select {
	case <-allDone:
	case <-time.After(drainTimeout):
		t.Fatalf("%s: callers still running %v after the kill", p.name, drainTimeout)
	}
	st.sent = sent.Load()
	st.acked = acked.Load()
	slices.Sort(st.values)
	return st
}

// errKind names an error for the round's summary.
func errKind(err error) string {
	var e *actor.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func fmtErrs(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q×%d", k, m[k])
	}
	return b.String()
}

// TestGracefulShutdown stops `opendo dev` with SIGTERM and checks that it
// exits 0 and that its writes are there after a restart.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the opendo binary; skipped with -short")
	}
	dataDir := t.TempDir()
	p := startDev(t, "first run", dataDir)
	c := newClient(t, connect(t, p.URL))
	for want := int64(1); want <= 10; want++ {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		n, err := callInt(ctx, c, gracefulObject, "incr")
		cancel()
		if err != nil {
			t.Fatalf("incr %d: %v", want, err)
		}
		if n != want {
			t.Fatalf("incr %d returned %d", want, n)
		}
	}
	start := time.Now()
	if code := p.stop(); code != 0 {
		t.Fatalf("opendo dev exited with code %d after SIGTERM (%v), want 0", code, p.err)
	}
	t.Logf("SIGTERM: exited 0 after %v", time.Since(start).Round(time.Millisecond))

	p = startDev(t, "restart", dataDir)
	if n := getCounter(t, p, gracefulObject); n != 10 {
		t.Fatalf("after restart: counter = %d, want 10", n)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("restarted opendo dev exited with code %d after SIGTERM (%v), want 0", code, p.err)
	}
}

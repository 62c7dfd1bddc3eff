package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opendo/opendo/actor"
)

// benchResult is one line of `opendo bench -json`.
type benchResult struct {
	Workload          string  `json:"workload"`
	Sync              string  `json:"sync"` // default, always, or server (external NATS)
	Callers           int     `json:"callers"`
	Conns             int     `json:"conns"`
	DurationS         float64 `json:"duration_s"` // measured time
	Ops               int     `json:"ops"`
	OpsPerSec         float64 `json:"ops_per_sec"`
	P50us             float64 `json:"p50_us"`
	P99us             float64 `json:"p99_us"`
	Errors            int64   `json:"errors"` // failed operations, warmup included
	FirstError        string  `json:"first_error,omitempty"`
	Baseline          string  `json:"baseline"`
	BaselineOpsPerSec float64 `json:"baseline_ops_per_sec"`
	Ratio             float64 `json:"ratio"`
	// VsJSPub1 compares a write workload with one caller publishing
	// synchronously (jspub-1 of the same mode): above 1 means more than one
	// write per sync.
	VsJSPub1 float64 `json:"vs_jspub1,omitempty"`

	// touch-100k only.
	Objects     int      `json:"objects,omitempty"`
	PeakRSSMB   *float64 `json:"peak_rss_mb,omitempty"` // VmHWM: bench + embedded server
	PeakFDs     *int     `json:"peak_fds,omitempty"`
	FDsBefore   int      `json:"fds_before,omitempty"`
	PeakActive  int      `json:"peak_active,omitempty"`
	ActiveAfter int      `json:"active_after_idle"`
	FDsAfter    int      `json:"fds_after_idle,omitempty"`
	SettleAfter string   `json:"settle_wait,omitempty"`
	RSSNote     string   `json:"peak_rss_scope,omitempty"`

	*BenchAlarmStats  // alarm-1 and alarm-10k only
	*BenchFloodStats  // burst and flood only
	*BenchNodeStats   // incr-1000-2n and incr-1000-3n only
	*BenchStreamStats // jspub-3s and incr-1000-3s only
}

// benchOp is one operation of one caller.
type benchOp func(ctx context.Context) error

// benchTimed runs callers concurrently, each calling its op (built by mk)
// in a loop: warmup unmeasured, then dur measured. An operation counts if
// it completes inside the measured window; failures count whenever they
// happen. With profile set, the measured window is CPU-profiled into it.
func benchTimed(ctx context.Context, callers int, warmup, dur time.Duration, profile string, mk func(i int) benchOp) (*benchResult, error) {
	ops := make([]benchOp, callers)
	for i := range ops {
		ops[i] = mk(i)
	}
	// Room for 200k ops/s without growing.
	lat := newBenchLatencies(callers, int(dur.Seconds()*200000)/callers)
	errs := &benchErrors{}
	start := time.Now().Add(warmup)
	end := start.Add(dur)
	// Every operation shares one deadline: no timer per operation.
	rctx, cancel := context.WithDeadline(ctx, end.Add(30*time.Second))
	defer cancel()

	profErr := make(chan error, 1)
	if profile != "" {
		go func() {
			if !benchSleepUntil(rctx, start) {
				profErr <- rctx.Err()
				return
			}
			stop, err := benchProfile(profile)
			if err != nil {
				profErr <- err
				return
			}
			benchSleepUntil(rctx, end)
			profErr <- stop()
		}()
	} else {
		profErr <- nil
	}

	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			op := ops[i]
			for rctx.Err() == nil {
				t0 := time.Now()
				err := op(rctx)
				t1 := time.Now()
				if err != nil {
					errs.add(err)
				} else if !t1.Before(start) && t1.Before(end) {
					lat.add(i, t1.Sub(t0))
				}
				if !t1.Before(end) {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := <-profErr; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := lat.result(dur)
	r.Errors, r.FirstError = errs.get()
	return r, nil
}

func benchSleepUntil(ctx context.Context, t time.Time) bool {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// benchParallel runs f for k = 0..n-1 on callers goroutines (i is the
// goroutine) and returns the first error, which stops the others.
func benchParallel(ctx context.Context, callers, n int, f func(ctx context.Context, i, k int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for i := range min(callers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= n {
					return
				}
				if err := f(ctx, i, k); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// benchLatencies holds per-caller operation durations, preallocated; each
// caller appends to its own slice only.
type benchLatencies [][]time.Duration

func newBenchLatencies(callers, per int) benchLatencies {
	per = min(max(per, 1024), 1<<20)
	l := make(benchLatencies, callers)
	for i := range l {
		l[i] = make([]time.Duration, 0, per)
	}
	return l
}

func (l benchLatencies) add(i int, d time.Duration) { l[i] = append(l[i], d) }

// result merges the durations into ops, ops/s over elapsed, p50 and p99.
func (l benchLatencies) result(elapsed time.Duration) *benchResult {
	var all []time.Duration
	for _, s := range l {
		all = append(all, s...)
	}
	slices.Sort(all)
	r := &benchResult{Ops: len(all), DurationS: round(elapsed.Seconds(), 3)}
	if elapsed > 0 {
		r.OpsPerSec = round(float64(len(all))/elapsed.Seconds(), 1)
	}
	r.P50us = round(percentile(all, 0.50).Seconds()*1e6, 1)
	r.P99us = round(percentile(all, 0.99).Seconds()*1e6, 1)
	return r
}

// percentile returns the nearest-rank p-quantile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func round(x float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(x*p) / p
}

// benchErrors counts failures and keeps the first one.
type benchErrors struct {
	mu    sync.Mutex
	n     int64
	first string
}

func (e *benchErrors) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == 0 {
		e.first = err.Error()
		var ae *actor.Error
		if errors.As(err, &ae) {
			e.first = ae.Code + ": " + ae.Message
		}
	}
	e.n++
}

func (e *benchErrors) get() (int64, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n, e.first
}

// benchSampler samples open fds and active objects until stopped.
type benchSampler struct {
	stopc chan struct{}
	done  chan benchPeak
}

type benchPeak struct{ fds, active int }

func startBenchSampler(rt *actor.Runtime) *benchSampler {
	s := &benchSampler{stopc: make(chan struct{}), done: make(chan benchPeak, 1)}
	go func() {
		var p benchPeak
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			p.fds = max(p.fds, countFDs())
			p.active = max(p.active, rt.ActiveObjects())
			select {
			case <-t.C:
			case <-s.stopc:
				s.done <- p
				return
			}
		}
	}()
	return s
}

func (s *benchSampler) stop() benchPeak {
	close(s.stopc)
	return <-s.done
}

// countFDs returns how many files this process has open (Linux), or -1.
func countFDs() int {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return -1
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return -1
	}
	return len(names) - 1 // minus d itself
}

// resetPeakRSS resets the process's VmHWM (Linux ≥ 4.0) and reports
// whether it could.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// readPeakRSSMB returns VmHWM, the peak resident set size, in MB (0 if
// unknown).
func readPeakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := bytes.Fields(v) // "123456 kB"
			if len(f) >= 1 {
				kb, err := strconv.ParseFloat(string(f[0]), 64)
				if err == nil {
					return round(kb/1024, 1)
				}
			}
		}
	}
	return 0
}

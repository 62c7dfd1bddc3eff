package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/actor"
)

// BenchFloodStats are the figures of the burst and flood workloads: what
// every caller got, and what the process held meanwhile.
type BenchFloodStats struct {
	Requests   int     `json:"requests"`
	OK         int64   `json:"ok"`
	Overloaded int64   `json:"overloaded"`
	Timeouts   int64   `json:"timeouts"` // no answer within the callers' 30 s
	Other      int64   `json:"other_errors"`
	MaxAnswerS float64 `json:"max_answer_s"` // slowest answer
	// burst: an object active before the burst, called in a loop by one
	// caller during it.
	ExistingCalls int     `json:"existing_calls,omitempty"`
	ExistingP99us float64 `json:"existing_p99_us,omitempty"`
	ExistingErrs  int64   `json:"existing_errors,omitempty"`
	PeakActive    int     `json:"peak_active"`
	MaxActive     int     `json:"max_active"`
	PeakFDs       int     `json:"peak_fds"`
	FDLimit       int     `json:"fd_limit"`
	PeakQueuedMB  float64 `json:"peak_queued_mb"`
	PeakHeapMB    float64 `json:"peak_heap_mb"` // Go heap in use, sampled
	PeakRSSMB     float64 `json:"peak_rss_mb"`  // VmHWM of the whole process
	HeapAfterMB   float64 `json:"heap_after_mb"`
	Rebuilds      int64   `json:"rebuilt_files"` // "does not open; rebuilding" warnings: must be 0
	Files         int     `json:"files"`         // object files on disk afterwards
}

// benchBurstTimeout is how long a burst or flood caller waits.
const benchBurstTimeout = 30 * time.Second

// benchSlowDelay is how long a "slow" request holds its object.
const benchSlowDelay = 20 * time.Millisecond

// runFlood runs burst (one request to each of -burst new objects, all sent
// at once, while one caller keeps calling an object activated before) or
// flood (-flood requests of -flood-size bytes, all at once, to one object
// that takes benchSlowDelay per request), each on a runtime of its own.
func (e *benchEnv) runFlood(ctx context.Context, w benchWorkload) (_ *benchResult, err error) {
	o := e.o
	tag, suffix := "b", "_BURST_JOURNAL"
	if w.name == "flood" {
		tag, suffix = "f", "_FLOOD_JOURNAL"
	}
	rt, done, err := e.ownRuntime(ctx, tag, suffix, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, done()) }()
	ns := make([]*actor.NamespaceClient, len(e.conns))
	for i, nc := range e.conns {
		c, err := actor.NewClient(nc, actor.ClientConfig{Prefix: rt.Subjects().Prefix, Timeout: benchBurstTimeout})
		if err != nil {
			return nil, err
		}
		ns[i] = c.Namespace(benchNamespace)
	}
	// The existing object is in steady use before the burst (a few calls
	// in a row), as an object that its callers keep using is.
	for range 5 {
		if err := benchCall(ctx, ns[0].Get("existing"), "incr"); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	rebuildsBefore := e.rtLogs.rebuilds.Load()
	runtime.GC()
	rssReset := resetPeakRSS()
	s := &BenchFloodStats{MaxActive: rt.Stats().MaxActive}
	s.FDLimit = benchFDLimit()

	// Sample what the process holds.
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			st := rt.Stats()
			s.PeakActive = max(s.PeakActive, st.Active)
			s.PeakFDs = max(s.PeakFDs, countFDs())
			s.PeakQueuedMB = max(s.PeakQueuedMB, float64(st.QueuedBytes)/(1<<20))
			runtime.ReadMemStats(&ms)
			s.PeakHeapMB = max(s.PeakHeapMB, float64(ms.HeapInuse)/(1<<20))
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
	}()

	var body []byte
	path, name := "read", func(k int) string { return "burst-" + strconv.Itoa(k) }
	n := o.burst
	if w.name == "flood" {
		n, path = o.flood, "slow"
		body = make([]byte, o.floodSize)
		name = func(int) string { return "flood" }
	}
	s.Requests = n

	// The existing object, during a burst.
	var exLat []time.Duration
	var exErrs atomic.Int64
	exDone := make(chan struct{})
	burstOver := make(chan struct{})
	go func() {
		defer close(exDone)
		if w.name != "burst" {
			return
		}
		st := ns[0].Get("existing")
		for {
			select {
			case <-burstOver:
				return
			default:
			}
			t0 := time.Now()
			if err := benchCall(ctx, st, "read"); err != nil {
				exErrs.Add(1)
				continue
			}
			exLat = append(exLat, time.Since(t0))
		}
	}()

	var wg sync.WaitGroup
	var ok, over, timeouts, other atomic.Int64
	var maxNs atomic.Int64
	var firstOther sync.Once
	start := time.Now()
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, benchBurstTimeout)
			defer cancel()
			_, err := ns[k%len(ns)].Get(name(k)).Do(cctx, path, body)
			el := int64(time.Since(start))
			for m := maxNs.Load(); el > m && !maxNs.CompareAndSwap(m, el); m = maxNs.Load() {
			}
			var ae *actor.Error
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &ae) && ae.Code == actor.CodeOverloaded:
				over.Add(1)
			case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
				timeouts.Add(1)
			default:
				other.Add(1)
				firstOther.Do(func() { fmt.Fprintf(e.stderr, "opendo bench: %s: first unexpected error: %v\n", w.name, err) })
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(burstOver)
	<-exDone
	close(stop)
	<-sampled
	s.PeakRSSMB = readPeakRSSMB()
	if !rssReset {
		s.PeakRSSMB = -s.PeakRSSMB
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.HeapAfterMB = float64(ms.HeapInuse) / (1 << 20)
	s.OK, s.Overloaded, s.Timeouts, s.Other = ok.Load(), over.Load(), timeouts.Load(), other.Load()
	s.MaxAnswerS = round(float64(maxNs.Load())/1e9, 2)
	s.Rebuilds = e.rtLogs.rebuilds.Load() - rebuildsBefore
	s.Files = countObjectFiles(filepath.Join(e.dir, "objects-"+rt.Subjects().Prefix))
	if len(exLat) > 0 {
		sort.Slice(exLat, func(i, j int) bool { return exLat[i] < exLat[j] })
		s.ExistingCalls = len(exLat)
		s.ExistingP99us = float64(exLat[len(exLat)*99/100].Microseconds())
	}
	s.ExistingErrs = exErrs.Load()
	r := &benchResult{Workload: w.name, Sync: e.mode, Callers: n, Conns: len(e.conns), DurationS: round(elapsed.Seconds(), 2),
		Ops: int(s.OK), OpsPerSec: round(float64(s.OK)/elapsed.Seconds(), 0), Errors: s.Overloaded + s.Timeouts + s.Other,
		Baseline: benchNoBaseline, BenchFloodStats: s}
	return r, nil
}

// benchFDLimit returns the process's descriptor limit (-1 if unknown).
func benchFDLimit() int {
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return -1
}

// countObjectFiles counts the *.db files under dir.
func countObjectFiles(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".db") {
			n++
		}
		return nil
	})
	return n
}

func benchFloodFooter(w io.Writer, r *benchResult) {
	s := r.BenchFloodStats
	fmt.Fprintf(w, "\n%s (sync %s): %d requests at once: %d ok, %d overloaded, %d timed out, %d other errors; slowest answer %.2f s (callers wait %v)\n",
		r.Workload, r.Sync, s.Requests, s.OK, s.Overloaded, s.Timeouts, s.Other, s.MaxAnswerS, benchBurstTimeout)
	if r.Workload == "burst" {
		fmt.Fprintf(w, "  existing object during the burst: %d calls, p99 %.1f ms, %d errors\n", s.ExistingCalls, s.ExistingP99us/1e3, s.ExistingErrs)
	}
	rss := fmt.Sprintf("%.0f MB", s.PeakRSSMB)
	if s.PeakRSSMB < 0 {
		rss = fmt.Sprintf("%.0f MB (peak since process start)", -s.PeakRSSMB)
	}
	fmt.Fprintf(w, "  peak: %d active objects (cap %d), %d open fds (limit %d), %.0f MB queued, Go heap %.0f MB, RSS %s (bench process, embedded server and callers included); heap after GC %.0f MB\n",
		s.PeakActive, s.MaxActive, s.PeakFDs, s.FDLimit, s.PeakQueuedMB, s.PeakHeapMB, rss, s.HeapAfterMB)
	fmt.Fprintf(w, "  object files rebuilt: %d; object files on disk: %d\n", s.Rebuilds, s.Files)
}

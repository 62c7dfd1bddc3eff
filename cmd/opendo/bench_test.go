package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// runBenchJSON runs `opendo bench args... -json` in-process and returns its
// lines, decoded twice: as generic maps (to check the field names) and as
// results.
func runBenchJSON(t *testing.T, args ...string) ([]map[string]any, []benchResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args = append([]string{"bench", "-data", t.TempDir(), "-json"}, args...)
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("bench %v: %v\nstderr:\n%s", args, err, stderr.String())
	}
	t.Logf("stderr:\n%s", stderr.String())
	var maps []map[string]any
	var rs []benchResult
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		line := sc.Bytes()
		t.Logf("%s", line)
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		var r benchResult
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		maps = append(maps, m)
		rs = append(rs, r)
	}
	return maps, rs
}

func checkBenchLine(t *testing.T, m map[string]any, r benchResult, extra ...string) {
	t.Helper()
	for _, f := range append([]string{"workload", "ops_per_sec", "p50_us", "p99_us", "baseline",
		"baseline_ops_per_sec", "ratio", "sync", "errors", "callers", "duration_s"}, extra...) {
		if _, ok := m[f]; !ok {
			t.Errorf("%s: no field %q in %v", r.Workload, f, m)
		}
	}
	if r.OpsPerSec <= 0 || r.Ops <= 0 {
		t.Errorf("%s: ops_per_sec %v, ops %d", r.Workload, r.OpsPerSec, r.Ops)
	}
	if r.Errors != 0 {
		t.Errorf("%s: %d errors, first: %s", r.Workload, r.Errors, r.FirstError)
	}
	if r.P50us <= 0 || r.P99us < r.P50us {
		t.Errorf("%s: p50 %v µs, p99 %v µs", r.Workload, r.P50us, r.P99us)
	}
	if r.BaselineOpsPerSec <= 0 || r.Ratio <= 0 {
		t.Errorf("%s: baseline %s %v ops/s, ratio %v", r.Workload, r.Baseline, r.BaselineOpsPerSec, r.Ratio)
	}
	if r.Baseline == r.Workload && r.Ratio != 1 {
		t.Errorf("%s is its own baseline but has ratio %v", r.Workload, r.Ratio)
	}
}

func TestBenchWorkloads(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	maps, rs := runBenchJSON(t, "-duration", "200ms", "-warmup", "50ms", "-callers", "4",
		"-workloads", "echo,read,incr-1,incr-1000,jspub", "-cpuprofile", prof)
	var got []string
	for i, r := range rs {
		got = append(got, r.Workload)
		checkBenchLine(t, maps[i], r)
		if r.Sync != "default" || r.Callers != 4 || r.DurationS != 0.2 {
			t.Errorf("%s: sync %q callers %d duration %v", r.Workload, r.Sync, r.Callers, r.DurationS)
		}
		want := map[string]string{"echo": "echo", "read": "echo", "jspub": "jspub", "incr-1": "jspub", "incr-1000": "jspub"}[r.Workload]
		if r.Baseline != want {
			t.Errorf("%s: baseline %q, want %q", r.Workload, r.Baseline, want)
		}
		// One profile per workload when several run.
		if fi, err := os.Stat(benchProfileName(prof, r.Workload, "default")); err != nil || fi.Size() == 0 {
			t.Errorf("%s: no CPU profile: %v", r.Workload, err)
		}
	}
	if want := []string{"echo", "read", "jspub", "incr-1", "incr-1000"}; !slices.Equal(got, want) {
		t.Errorf("workloads %v, want %v", got, want)
	}
}

func TestBenchSyncBoth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	// jspub-1 pulls in nothing; incr-1 pulls in its baseline jspub. Each
	// runs once per mode.
	maps, rs := runBenchJSON(t, "-duration", "100ms", "-warmup", "20ms", "-callers", "2",
		"-workloads", "jspub-1,incr-1", "-sync", "both")
	var got []string
	for i, r := range rs {
		got = append(got, r.Workload+"/"+r.Sync)
		checkBenchLine(t, maps[i], r)
		if r.Workload == "jspub-1" && r.Callers != 1 {
			t.Errorf("jspub-1 ran %d callers", r.Callers)
		}
		if r.Workload == "incr-1" && r.VsJSPub1 <= 0 {
			t.Errorf("incr-1/%s: vs_jspub1 %v", r.Sync, r.VsJSPub1)
		}
	}
	want := []string{"jspub/default", "jspub-1/default", "incr-1/default", "jspub/always", "jspub-1/always", "incr-1/always"}
	if !slices.Equal(got, want) {
		t.Errorf("ran %v, want %v", got, want)
	}
}

func TestBenchTouch(t *testing.T) {
	maps, rs := runBenchJSON(t, "-duration", "100ms", "-warmup", "20ms", "-callers", "4",
		"-workloads", "touch-100k", "-objects", "300", "-idle", "300ms")
	if len(rs) != 3 {
		t.Fatalf("got %d lines, want echo, read, touch-100k", len(rs))
	}
	for i, r := range rs {
		if r.Workload != "touch-100k" {
			continue
		}
		checkBenchLine(t, maps[i], r, "peak_rss_mb", "peak_fds")
		if r.Ops != 300 || r.Objects != 300 {
			t.Errorf("touched %d of %d objects", r.Ops, r.Objects)
		}
		if r.Baseline != "read" {
			t.Errorf("baseline %q", r.Baseline)
		}
		if *r.PeakRSSMB <= 0 || *r.PeakFDs <= 0 || r.PeakActive <= 0 {
			t.Errorf("peak rss %v MB, fds %d, active %d", *r.PeakRSSMB, *r.PeakFDs, r.PeakActive)
		}
		if r.ActiveAfter != 0 {
			t.Errorf("%d objects still active after the idle timeout", r.ActiveAfter)
		}
		return
	}
	t.Fatal("no touch-100k line")
}

func TestBenchTable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "-data", t.TempDir(), "-duration", "100ms", "-warmup", "0s",
		"-callers", "2", "-workloads", "read"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	out := stdout.String()
	t.Log(out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "workload") || !strings.HasPrefix(lines[1], "echo") || !strings.HasPrefix(lines[2], "read") {
		t.Errorf("table:\n%s", out)
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-workloads", "nope"},
		{"-sync", "sometimes"},
		{"-callers", "0"},
		{"-duration", "0s"},
		{"-nats", "nats://127.0.0.1:1", "-sync", "always"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"bench"}, args...), &stdout, &stderr)
		if exitCode(err) != 2 {
			t.Errorf("bench %v: err %v, want a usage error", args, err)
		}
	}
	ws, err := benchSelect("")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.name == "touch-100k" {
			t.Error("touch-100k runs by default")
		}
	}
	if ws, _ := benchSelect("all"); len(ws) != len(benchWorkloads) {
		t.Errorf("all selects %d workloads", len(ws))
	}
	if got := benchProfileName("/x/cpu.pprof", "incr-1", "always"); got != "/x/cpu.incr-1-always.pprof" {
		t.Errorf("profile name %q", got)
	}
}

// TestBenchNodes: incr-1000 with 2 runtime nodes, on one server and on a
// local 3-server cluster, compared with one node in the same run; every
// partition has one owner and no call fails.
func TestBenchNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several runtimes (and a 3-server cluster)")
	}
	for _, args := range [][]string{nil, {"-cluster", "3"}} {
		maps, rs := runBenchJSON(t, append(args, "-workloads", "incr-1000-2n", "-duration", "300ms", "-warmup", "100ms", "-callers", "8")...)
		var seen bool
		for i, r := range rs {
			if r.Workload != "incr-1000-2n" {
				continue
			}
			seen = true
			checkBenchLine(t, maps[i], r, "nodes", "owned", "forwarded_share", "fences")
			if r.Baseline != "incr-1000" || r.BenchNodeStats == nil || r.Nodes != 2 || len(r.Owned) != 2 {
				t.Fatalf("%v: %+v", args, r)
			}
			if r.Owned[0]+r.Owned[1] != 128 || r.Owned[0] == 0 || r.Owned[1] == 0 {
				t.Errorf("%v: partitions owned %v, want 128 split between both", args, r.Owned)
			}
			if r.Fences != 0 {
				t.Errorf("%v: %d fences in steady state", args, r.Fences)
			}
			if r.Forwarded <= 0 {
				t.Errorf("%v: nothing forwarded", args)
			}
		}
		if !seen {
			t.Fatalf("%v: no incr-1000-2n line", args)
		}
	}
}

// TestBenchSpread: jspub-3s and incr-1000-3s on a local 3-server cluster
// write to 3 streams, each with a leader, and no call fails.
func TestBenchSpread(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-server cluster")
	}
	maps, rs := runBenchJSON(t, "-cluster", "3", "-workloads", "jspub-3s,incr-1000-3s", "-duration", "300ms", "-warmup", "100ms", "-callers", "8")
	seen := 0
	for i, r := range rs {
		if r.Workload != "jspub-3s" && r.Workload != "incr-1000-3s" {
			continue
		}
		seen++
		checkBenchLine(t, maps[i], r, "streams", "leaders")
		if r.BenchStreamStats == nil || r.Streams != 3 || len(r.Leaders) != 3 || slices.Contains(r.Leaders, "") {
			t.Fatalf("%s: %+v", r.Workload, r.BenchStreamStats)
		}
		if l := r.Leaders; l[0] == l[1] || l[1] == l[2] || l[0] == l[2] {
			t.Errorf("%s: leaders %v, want 3 distinct servers", r.Workload, l)
		}
	}
	if seen != 2 {
		t.Fatalf("%d of the 2 workloads reported", seen)
	}
	// On one server (here in -sync always mode, where the runtime's server
	// is not the raw baselines' one) there are no leaders to place.
	maps, rs = runBenchJSON(t, "-sync", "always", "-workloads", "incr-1000-3s", "-duration", "300ms", "-warmup", "100ms", "-callers", "8")
	for i, r := range rs {
		if r.Workload == "incr-1000-3s" {
			checkBenchLine(t, maps[i], r, "streams")
			if r.BenchStreamStats == nil || r.Streams != 3 || r.Leaders != nil {
				t.Errorf("one server: %+v", r.BenchStreamStats)
			}
			return
		}
	}
	t.Fatal("no incr-1000-3s line in -sync always")
}

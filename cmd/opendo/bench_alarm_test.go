package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBenchAlarmWorkloads(t *testing.T) {
	maps, rs := runBenchJSON(t, "-warmup", "0s", "-callers", "8",
		"-workloads", "alarm-1,alarm-10k", "-rounds", "3", "-alarms", "200")
	var got []string
	for i, r := range rs {
		got = append(got, r.Workload)
		m := maps[i]
		for _, f := range []string{"workload", "sync", "ops_per_sec", "p50_us", "p99_us", "max_us", "errors",
			"baseline", "alarms", "fired", "unfired", "set_errors", "runtime_errors", "target", "target_met"} {
			if _, ok := m[f]; !ok {
				t.Errorf("%s: no field %q in %v", r.Workload, f, m)
			}
		}
		s := r.BenchAlarmStats
		if s == nil {
			t.Fatalf("%s: no alarm fields", r.Workload)
		}
		if r.Baseline != benchNoBaseline || r.Ratio != 0 || r.BaselineOpsPerSec != 0 {
			t.Errorf("%s: baseline %q %v ops/s, ratio %v", r.Workload, r.Baseline, r.BaselineOpsPerSec, r.Ratio)
		}
		if r.Errors != 0 || s.Unfired != 0 || s.SetErrors != 0 || s.RuntimeErrors != 0 {
			t.Errorf("%s: %d errors (%d failed sets, %d unfired, %d runtime), first: %s",
				r.Workload, r.Errors, s.SetErrors, s.Unfired, s.RuntimeErrors, r.FirstError)
		}
		if s.Duplicates != 0 {
			t.Errorf("%s: %d duplicate firings", r.Workload, s.Duplicates)
		}
		// Lateness: positive (the handler runs at or after the due time),
		// ordered, and bounded generously (-race, a loaded machine).
		if r.P50us < 0 || r.P99us < r.P50us || s.MaxUs < r.P99us || s.MaxUs > 10e6 {
			t.Errorf("%s: lateness p50 %v µs, p99 %v µs, max %v µs", r.Workload, r.P50us, r.P99us, s.MaxUs)
		}
		if r.OpsPerSec <= 0 || r.Ops != s.Fired {
			t.Errorf("%s: ops %d, ops/s %v, fired %d", r.Workload, r.Ops, r.OpsPerSec, s.Fired)
		}
		switch r.Workload {
		case "alarm-1":
			if s.Alarms != 3 || s.Fired != 3 || r.Callers != 1 {
				t.Errorf("alarm-1: %d alarms, %d fired, %d callers; want 3, 3, 1", s.Alarms, s.Fired, r.Callers)
			}
			if _, ok := m["all_fired_ms"]; ok {
				t.Error("alarm-1 has all_fired_ms")
			}
		case "alarm-10k":
			if s.Alarms != 200 || s.Fired != 200 || r.Objects != 200 || r.Callers != 8 {
				t.Errorf("alarm-10k: %d alarms, %d fired, %d objects, %d callers; want 200, 200, 200, 8", s.Alarms, s.Fired, r.Objects, r.Callers)
			}
			if s.AllFiredMs == nil || *s.AllFiredMs < 0 || *s.AllFiredMs > benchAlarmsWait.Seconds()*1e3 {
				t.Errorf("alarm-10k: all_fired_ms %v", s.AllFiredMs)
			}
			if s.SetPerSec <= 0 || s.LeadMs < float64(benchAlarmsMargin.Milliseconds()) || s.SlackMs == nil || s.LateSets != 0 {
				t.Errorf("alarm-10k: %v sets/s, lead %v ms, slack %v ms, %d late sets", s.SetPerSec, s.LeadMs, s.SlackMs, s.LateSets)
			}
			if r.PeakActive <= 0 || r.PeakFDs == nil || *r.PeakFDs <= 0 {
				t.Errorf("alarm-10k: peak active %d, peak fds %v", r.PeakActive, r.PeakFDs)
			}
		}
	}
	// No baseline is pulled in.
	if want := []string{"alarm-1", "alarm-10k"}; !slices.Equal(got, want) {
		t.Errorf("workloads %v, want %v", got, want)
	}
}

func TestBenchAlarmTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"bench", "-data", t.TempDir(), "-warmup", "0s", "-workloads", "alarm-1", "-rounds", "1"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	out := stdout.String()
	t.Log(out)
	lines := strings.Split(out, "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "alarm-1 ") || !strings.Contains(out, "alarm-1 (sync default): 1 isolated alarms") {
		t.Errorf("table:\n%s", out)
	}
}

func TestBenchAlarmSelect(t *testing.T) {
	names := func(ws []benchWorkload) []string {
		var n []string
		for _, w := range ws {
			n = append(n, w.name)
		}
		return n
	}
	def, err := benchSelect("")
	if err != nil {
		t.Fatal(err)
	}
	if n := names(def); slices.Contains(n, "alarm-1") || slices.Contains(n, "alarm-10k") {
		t.Errorf("default runs %v", n)
	}
	all, _ := benchSelect("all")
	if n := names(all); !slices.Contains(n, "alarm-1") || !slices.Contains(n, "alarm-10k") {
		t.Errorf("all runs %v", n)
	}
	one, _ := benchSelect("alarm-10k")
	if n := names(one); !slices.Equal(n, []string{"alarm-10k"}) {
		t.Errorf("alarm-10k runs %v", n)
	}
	for _, args := range [][]string{{"-alarms", "0"}, {"-rounds", "-1"}} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), append([]string{"bench"}, args...), &stdout, &stderr); exitCode(err) != 2 {
			t.Errorf("bench %v: err %v, want a usage error", args, err)
		}
	}
}

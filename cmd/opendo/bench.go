package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

// benchWorkload describes one workload of `opendo bench`.
type benchWorkload struct {
	name     string
	baseline string // the workload this one is compared with (itself for a baseline)
	write    bool   // writes to JetStream: run in both modes with -sync both
	explicit bool   // only when named, or with -workloads all
	summary  string
}

// benchWorkloads in run order: every baseline comes before the workloads
// compared with it.
var benchWorkloads = []benchWorkload{
	{name: "echo", baseline: "echo", summary: "core NATS request/reply to a plain responder"},
	{name: "read", baseline: "echo", summary: "request to one object that reads one key"},
	{name: "jspub", baseline: "jspub", write: true, summary: "JetStream publish + ack, one stream, every caller"},
	{name: "jspub-1", baseline: "jspub-1", write: true, summary: "JetStream publish + ack, ONE caller (one sync per write)"},
	{name: "incr-1", baseline: "jspub", write: true, summary: "durable increments on one object"},
	{name: "incr-1000", baseline: "jspub", write: true, summary: "durable increments spread over 1,000 objects"},
	{name: "incr-1000-2n", baseline: "incr-1000", write: true, summary: "incr-1000 served by 2 runtime nodes sharing the partitions (own prefix and journal)"},
	{name: "incr-1000-3n", baseline: "incr-1000", write: true, summary: "incr-1000 served by 3 runtime nodes sharing the partitions (own prefix and journal)"},
	{name: "jspub-3s", baseline: "jspub", write: true, summary: "jspub's publishes spread over 3 streams, leaders spread over the servers"},
	{name: "incr-1000-3s", baseline: "incr-1000", write: true, summary: "incr-1000 with the journal spread over 3 streams (-journal-streams 3), leaders spread"},
	{name: "touch-100k", baseline: "read", explicit: true, summary: "activate -objects distinct objects once each (read), evicted after -idle"},
	{name: "alarm-1", baseline: benchNoBaseline, explicit: true, summary: "lateness of -rounds isolated alarms, each set 200 ms ahead"},
	{name: "alarm-10k", baseline: benchNoBaseline, explicit: true, summary: "lateness of -alarms alarms due at the same instant (own runtime)"},
	{name: "burst", baseline: benchNoBaseline, explicit: true, summary: "one request to each of -burst new objects, all at once, while an existing object is called (own runtime)"},
	{name: "flood", baseline: benchNoBaseline, explicit: true, summary: "-flood requests of -flood-size bytes at once to one slow object (own runtime)"},
}

func benchWorkloadByName(name string) (benchWorkload, bool) {
	for _, w := range benchWorkloads {
		if w.name == name {
			return w, true
		}
	}
	return benchWorkload{}, false
}

// benchOptions are the parsed flags of `opendo bench`.
type benchOptions struct {
	duration, warmup time.Duration
	callers, conns   int
	objects          int
	rounds, alarms   int
	burst, flood     int
	floodSize        int
	idle             time.Duration
	replicas         int
	payload          int
	json             bool
	cpuprofile       string
	dataParent       string
	nats             natsFlags
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr, "bench [flags]")
	var o benchOptions
	workloads := fs.String("workloads", "", "comma-separated workloads: "+strings.Join(benchNames(), ", ")+
		"\n(default: all but touch-100k; 'all' adds it). Baselines of the chosen workloads always run too")
	syncMode := fs.String("sync", "default", "JetStream durability of the embedded server: 'default' (fsync every 2 min), 'always'\n(fsync before every ack) or 'both' (write workloads in both modes, a fresh server each)")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per workload")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured time before each workload")
	fs.IntVar(&o.callers, "callers", 64, "concurrent callers")
	fs.IntVar(&o.conns, "conns", 0, "client connections the callers are spread over, round-robin (0: 2 per CPU, at most -callers).\nMeasured on 2 cores, 64 callers: 2-8 connections beat 1 (callers serialize on its lock)\nby ~10-25% and 64 (one per caller: more wakeups) by ~20-40%")
	fs.IntVar(&o.objects, "objects", 100000, "objects touched by touch-100k")
	fs.IntVar(&o.rounds, "rounds", 20, "isolated alarms of alarm-1 (0: as many as fit in -duration)")
	fs.IntVar(&o.alarms, "alarms", 10000, "alarms of alarm-10k, all due at the same instant")
	fs.IntVar(&o.burst, "burst", 20000, "new objects of the burst workload")
	fs.IntVar(&o.flood, "flood", 400, "requests of the flood workload")
	fs.IntVar(&o.floodSize, "flood-size", 7<<20, "body bytes of each flood request (the embedded server takes 8 MiB messages)")
	fs.DurationVar(&o.idle, "idle", 2*time.Second, "IdleTimeout of touch-100k's runtime (the other workloads keep the default)")
	fs.IntVar(&o.replicas, "replicas", 1, "replicas of the bench streams (with -nats on a cluster)")
	fs.IntVar(&o.payload, "payload", 128, "bytes per echo request and per jspub message (an incr journal entry: ~90 bytes + ~90 bytes of headers)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per workload instead of a table")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured phases to `FILE` (one file per workload,\nFILE with the workload inserted before its extension, when several run)")
	fs.StringVar(&o.dataParent, "data", "", "directory for the temporary data directory (default $TMPDIR);\nput it on the disk you want to measure, tmpfs makes fsync free")
	clusterN := fs.Int("cluster", 0, "measure against a local cluster of this many embedded NATS servers (3: the\nproduction shape; streams of -replicas replicas, 3 if not given) instead of one server")
	o.nats.register(fs, "nats")
	fs.Lookup("nats").Usage = "measure against this external NATS server instead of an embedded one\n(the bench uses its own subjects and streams and deletes its streams afterwards)"
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"bench takes no arguments"}
	}
	switch {
	case o.duration <= 0:
		return usageError{"-duration must be positive"}
	case o.warmup < 0:
		return usageError{"-warmup must not be negative"}
	case o.callers < 1:
		return usageError{"-callers must be at least 1"}
	case o.conns < 0:
		return usageError{"-conns must not be negative"}
	case o.objects < 1:
		return usageError{"-objects must be at least 1"}
	case o.rounds < 0:
		return usageError{"-rounds must not be negative"}
	case o.burst < 1 || o.flood < 1 || o.floodSize < 0:
		return usageError{"-burst and -flood must be at least 1, -flood-size not negative"}
	case o.alarms < 1:
		return usageError{"-alarms must be at least 1"}
	case o.idle <= 0:
		return usageError{"-idle must be positive"}
	case o.payload < 0:
		return usageError{"-payload must not be negative"}
	}
	if *clusterN != 0 {
		if o.nats.url != "" || *clusterN < 2 || *clusterN > 9 {
			return usageError{"-cluster takes 2 to 9 servers, and not with -nats"}
		}
		replicasSet := false
		fs.Visit(func(f *flag.Flag) { replicasSet = replicasSet || f.Name == "replicas" })
		if !replicasSet {
			o.replicas = min(3, *clusterN)
		}
		dir, err := os.MkdirTemp(o.dataParent, "opendo-bench-cluster-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		urls, stop, err := startLocalNATS(ctx, dir, *clusterN, 0)
		if err != nil {
			return err
		}
		defer stop()
		o.nats.url = strings.Join(urls, ",")
		fmt.Fprintf(stderr, "opendo bench: local cluster of %d NATS servers, streams of %d replicas\n", *clusterN, o.replicas)
	}
	if o.conns == 0 {
		o.conns = 2 * runtime.GOMAXPROCS(0)
	}
	o.conns = min(o.conns, o.callers)
	external := o.nats.url != ""
	var modes []string
	switch *syncMode {
	case "default", "always":
		modes = []string{*syncMode}
	case "both":
		modes = []string{"default", "always"}
	default:
		return usageError{fmt.Sprintf("bad -sync %q: want default, always or both", *syncMode)}
	}
	if external {
		if *syncMode != "default" {
			return usageError{"-sync applies to the embedded server only; with -nats the server's own setting applies"}
		}
		modes = []string{"server"}
	}
	selected, err := benchSelect(*workloads)
	if err != nil {
		return err
	}

	// The plan: (mode, workload) pairs, with -sync both running only the
	// write workloads in the second mode.
	type step struct {
		mode string
		w    benchWorkload
	}
	var plan []step
	for i, m := range modes {
		for _, w := range selected {
			if i > 0 && !w.write {
				continue
			}
			plan = append(plan, step{m, w})
		}
	}

	var tw *benchTable
	if !o.json {
		tw = newBenchTable(stdout)
	}
	enc := json.NewEncoder(stdout)
	for _, m := range modes {
		var ws []benchWorkload
		for _, s := range plan {
			if s.mode == m {
				ws = append(ws, s.w)
			}
		}
		if len(ws) == 0 {
			continue
		}
		if err := benchMode(ctx, m, ws, &o, len(plan) > 1, stderr, func(r *benchResult) error {
			if o.json {
				return enc.Encode(r)
			}
			tw.row(r)
			return nil
		}); err != nil {
			return err
		}
	}
	if tw != nil {
		tw.footer()
	}
	return nil
}

// benchSelect parses -workloads and adds the baselines the chosen workloads
// need, in run order.
func benchSelect(list string) ([]benchWorkload, error) {
	want := map[string]bool{}
	switch strings.TrimSpace(list) {
	case "":
		for _, w := range benchWorkloads {
			want[w.name] = !w.explicit
		}
	case "all":
		for _, w := range benchWorkloads {
			want[w.name] = true
		}
	default:
		for _, n := range strings.Split(list, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if _, ok := benchWorkloadByName(n); !ok {
				return nil, usageError{fmt.Sprintf("unknown workload %q (have %s, all)", n, strings.Join(benchNames(), ", "))}
			}
			want[n] = true
		}
	}
	// Baselines, transitively (touch-100k → read → echo).
	for changed := true; changed; {
		changed = false
		for n, ok := range want {
			if !ok {
				continue
			}
			w, _ := benchWorkloadByName(n)
			if w.baseline != benchNoBaseline && !want[w.baseline] {
				want[w.baseline] = true
				changed = true
			}
		}
	}
	var out []benchWorkload
	for _, w := range benchWorkloads {
		if want[w.name] {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return nil, usageError{"no workload selected"}
	}
	return out, nil
}

// benchMode runs workloads ws against one server (a fresh embedded one, or
// the external one) and reports each result as it is measured.
func benchMode(ctx context.Context, mode string, ws []benchWorkload, o *benchOptions, several bool, stderr io.Writer, report func(*benchResult) error) (err error) {
	env, err := newBenchEnv(ctx, mode, o, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := env.close(); err == nil {
			err = cerr
		}
	}()
	done := map[string]*benchResult{}
	for _, w := range ws {
		if err := ctx.Err(); err != nil {
			return err
		}
		prof := ""
		if o.cpuprofile != "" {
			prof = o.cpuprofile
			if several {
				prof = benchProfileName(o.cpuprofile, w.name, mode)
			}
		}
		fmt.Fprintf(stderr, "opendo bench: %s (sync %s): %s\n", w.name, mode, w.summary)
		r, err := env.run(ctx, w, prof)
		if err != nil {
			return fmt.Errorf("bench %s (sync %s): %w", w.name, mode, err)
		}
		if prof != "" {
			fmt.Fprintf(stderr, "opendo bench: CPU profile of %s in %s\n", w.name, prof)
		}
		if r.FirstError != "" {
			fmt.Fprintf(stderr, "opendo bench: %s: %d errors, first: %s\n", w.name, r.Errors, r.FirstError)
		}
		r.Baseline = w.baseline
		if b := done[w.baseline]; w.baseline == w.name {
			r.BaselineOpsPerSec = r.OpsPerSec
		} else if b != nil {
			r.BaselineOpsPerSec = b.OpsPerSec
		}
		if r.BaselineOpsPerSec > 0 {
			r.Ratio = round(r.OpsPerSec/r.BaselineOpsPerSec, 3)
		}
		if j1 := done["jspub-1"]; j1 != nil && j1.OpsPerSec > 0 && w.write && w.name != "jspub-1" {
			r.VsJSPub1 = round(r.OpsPerSec/j1.OpsPerSec, 3)
		}
		done[w.name] = r
		if err := report(r); err != nil {
			return err
		}
	}
	return nil
}

// benchProfileName inserts the workload (and mode) before the extension of
// file: cpu.pprof → cpu.incr-1000.pprof.
func benchProfileName(file, workload, mode string) string {
	ext := filepath.Ext(file)
	tag := workload
	if mode != "default" && mode != "server" {
		tag += "-" + mode
	}
	return strings.TrimSuffix(file, ext) + "." + tag + ext
}

// benchProfile starts a CPU profile into file; stop ends it.
func benchProfile(file string) (stop func() error, err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// benchTable prints results as an aligned table, one row as soon as each
// workload is measured.
type benchTable struct {
	w      io.Writer
	rows   int
	ext    []*benchResult
	alarm  []*benchResult
	flood  []*benchResult
	spread []*benchResult
}

const benchRowFormat = "%-11s %-7s %7s %11s %9s %9s %7s  %-8s %11s %7s %8s\n"

func newBenchTable(w io.Writer) *benchTable {
	fmt.Fprintf(w, benchRowFormat, "workload", "sync", "callers", "ops/s", "p50 µs", "p99 µs", "errors", "baseline", "base ops/s", "ratio", "/jspub-1")
	return &benchTable{w: w}
}

func (t *benchTable) row(r *benchResult) {
	vs := "-"
	if r.VsJSPub1 > 0 {
		vs = fmt.Sprintf("%.2f", r.VsJSPub1)
	}
	base, ratio := fmt.Sprintf("%.0f", r.BaselineOpsPerSec), fmt.Sprintf("%.2f", r.Ratio)
	if r.Baseline == benchNoBaseline {
		base, ratio = "-", "-"
	}
	fmt.Fprintf(t.w, benchRowFormat, r.Workload, r.Sync, fmt.Sprint(r.Callers), fmt.Sprintf("%.0f", r.OpsPerSec),
		fmt.Sprintf("%.0f", r.P50us), fmt.Sprintf("%.0f", r.P99us), fmt.Sprint(r.Errors), r.Baseline, base, ratio, vs)
	t.rows++
	if r.BenchFloodStats != nil {
		t.flood = append(t.flood, r)
	} else if r.BenchAlarmStats != nil {
		t.alarm = append(t.alarm, r)
	} else if r.PeakFDs != nil {
		t.ext = append(t.ext, r)
	} else if r.BenchStreamStats != nil {
		t.spread = append(t.spread, r)
	}
}

func (t *benchTable) footer() {
	for _, r := range t.ext {
		fmt.Fprintf(t.w, "\n%s (sync %s): %d objects in %.1f s; peak RSS %.0f MB (%s), open fds %d before, %d at peak, peak active objects %d; %s after the last touch: %d active, %d fds\n",
			r.Workload, r.Sync, r.Objects, r.DurationS, derefF(r.PeakRSSMB), r.RSSNote, r.FDsBefore, derefI(r.PeakFDs), r.PeakActive, r.SettleAfter, r.ActiveAfter, r.FDsAfter)
	}
	for _, r := range t.alarm {
		benchAlarmFooter(t.w, r)
	}
	for _, r := range t.flood {
		benchFloodFooter(t.w, r)
	}
	for _, r := range t.spread {
		leaders := "one server"
		if len(r.Leaders) > 0 {
			leaders = "leaders " + strings.Join(r.Leaders, ", ")
		}
		fmt.Fprintf(t.w, "\n%s (sync %s): %d streams, %s\n", r.Workload, r.Sync, r.Streams, leaders)
	}
	if t.rows > 0 {
		fmt.Fprintf(t.w, "\nratio = ops/s ÷ baseline ops/s; /jspub-1 = ops/s ÷ one caller's publish rate (>1: more than one write per sync)\n")
	}
}

func derefF(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

func derefI(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// benchNames lists the workloads in run order.
func benchNames() []string {
	var n []string
	for _, w := range benchWorkloads {
		n = append(n, w.name)
	}
	return n
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opendo/opendo/actor"
)

// The alarm workloads measure lateness: when an alarm's handler runs minus
// when the alarm was due (actor.AlarmInfo.ScheduledTime).
//
//   - alarm-1: -rounds sequential rounds, each a fresh object whose alarm
//     is due benchAlarmLead after it is set; one alarm at a time, so what
//     is measured is the local timer plus the object's mailbox.
//   - alarm-10k: -alarms objects whose alarms are all due at the same
//     instant T, set by every caller concurrently. With more objects than
//     the runtime keeps active (actor.Config.MaxActive), the objects it
//     evicted fire through the durable JetStream schedule plus a
//     re-activation: that is the path measured for most of them.

const (
	// benchAlarmNamespace is the namespace of the alarm bench objects:
	// "set" with body = Unix milliseconds sets the alarm; Alarm records
	// the firing.
	benchAlarmNamespace = "benchalarm"
	// benchNoBaseline is the baseline of a workload compared with nothing.
	benchNoBaseline = "-"
	// benchAlarmLead is how far ahead alarm-1 sets each alarm.
	benchAlarmLead = 200 * time.Millisecond
	// benchAlarmWait bounds alarm-1's wait for one firing after its due time.
	benchAlarmWait = 5 * time.Second
	// benchAlarmsWait bounds alarm-10k's wait for all firings after T.
	benchAlarmsWait = 60 * time.Second
	// benchAlarmsMargin is added to alarm-10k's estimate of the time it
	// takes to set every alarm.
	benchAlarmsMargin = 2 * time.Second
	// benchAlarmTarget1 and benchAlarmTargetAll are the targets of
	// docs/alarms.md.
	benchAlarmTarget1   = 20 * time.Millisecond
	benchAlarmTargetAll = time.Second
)

// BenchAlarmStats are the fields only the alarm workloads have (exported:
// encoding/json decodes an embedded pointer to exported types only).
type BenchAlarmStats struct {
	Alarms     int     `json:"alarms"`            // alarms set successfully
	Fired      int     `json:"fired"`             // of those, fired (first firing per object)
	Duplicates int     `json:"duplicate_firings"` // handler runs beyond the first per object, seen while waiting
	MaxUs      float64 `json:"max_us"`            // largest lateness
	// alarm-10k: from the due time T until the last firing.
	AllFiredMs  *float64 `json:"all_fired_ms,omitempty"`
	CalibSets   int      `json:"calib_sets,omitempty"`    // alarm-10k: first objects set an hour ahead, to measure the rate
	CalibPerSec float64  `json:"calib_per_sec,omitempty"` // alarm-10k: their rate (activations of new objects)
	SetS        float64  `json:"set_s,omitempty"`         // alarm-10k: time to set every alarm (due T), calib_sets again included
	SetPerSec   float64  `json:"set_per_sec,omitempty"`   // alarm-10k: alarms set per second
	LeadMs      float64  `json:"lead_ms,omitempty"`       // alarm-10k: from the start of the setting to T
	SlackMs     *float64 `json:"slack_ms,omitempty"`      // alarm-10k: from the last set's reply to T (negative: late)
	LateSets    int      `json:"late_sets"`               // sets answered after their alarm was due
	// alarm-10k: how many alarms fired within each lateness, cumulative
	// ("10ms": fired at most 10 ms late).
	FiredWithin []benchBucket `json:"fired_within,omitempty"`
	// Where the errors come from: failed sets, alarms that did not fire in
	// time, and error logs of the runtime (e.g. an activation that failed
	// on "too many open files"), whose first is in first_runtime_error.
	SetErrors         int64  `json:"set_errors"`
	Unfired           int    `json:"unfired"`
	RuntimeErrors     int64  `json:"runtime_errors"`
	RuntimeWarnings   int64  `json:"runtime_warnings"`
	FirstRuntimeError string `json:"first_runtime_error,omitempty"`
	Target            string `json:"target"`
	TargetMet         bool   `json:"target_met"`
	Note              string `json:"note,omitempty"`
}

// benchAlarmFiring is one run of an alarm handler.
type benchAlarmFiring struct {
	id        string
	scheduled time.Time
	at        time.Time
	retry     int
}

func (f benchAlarmFiring) lateness() time.Duration { return f.at.Sub(f.scheduled) }

// benchAlarmLog collects the firings of every benchalarm object of every
// runtime of a bench env (they run in-process). Workloads read it from a
// cursor and tell their objects by ID.
type benchAlarmLog struct {
	mu      sync.Mutex
	firings []benchAlarmFiring
	notify  chan struct{} // a firing was added
}

// wait blocks until a firing is added, deadline passes or ctx ends (its
// error is returned).
func (l *benchAlarmLog) wait(ctx context.Context, deadline time.Time) error {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-l.notify:
	case <-t.C:
	case <-ctx.Done():
	}
	return ctx.Err()
}

func newBenchAlarmLog() *benchAlarmLog {
	return &benchAlarmLog{notify: make(chan struct{}, 1)}
}

func (l *benchAlarmLog) add(f benchAlarmFiring) {
	l.mu.Lock()
	l.firings = append(l.firings, f)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// cursor returns the position after the last firing.
func (l *benchAlarmLog) cursor() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.firings)
}

// since returns the firings from position i on, and the new position.
func (l *benchAlarmLog) since(i int) ([]benchAlarmFiring, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.firings[i:]), len(l.firings)
}

// benchAlarmObject is the handler of a benchalarm object.
type benchAlarmObject struct {
	state *actor.State
	log   *benchAlarmLog
}

func (e *benchEnv) alarmFactory() actor.Factory {
	return func(state *actor.State) actor.Handler {
		return &benchAlarmObject{state: state, log: e.alarmLog}
	}
}

func (b *benchAlarmObject) Handle(ctx context.Context, req *actor.Request) (*actor.Response, error) {
	if req.Path != "set" {
		return &actor.Response{Status: http.StatusNotFound, Body: []byte("unknown path " + strconv.Quote(req.Path))}, nil
	}
	ms, err := strconv.ParseInt(string(req.Body), 10, 64)
	if err != nil {
		return &actor.Response{Status: http.StatusBadRequest, Body: []byte("body: want Unix milliseconds")}, nil
	}
	if err := b.state.Storage().SetAlarm(ctx, time.UnixMilli(ms)); err != nil {
		return nil, err
	}
	return actor.Text("ok"), nil
}

func (b *benchAlarmObject) Alarm(_ context.Context, info actor.AlarmInfo) error {
	b.log.add(benchAlarmFiring{id: string(b.state.ID()), scheduled: info.ScheduledTime, at: time.Now(), retry: info.RetryCount})
	return nil
}

// benchSetAlarm asks the object behind s to set its alarm to at.
func benchSetAlarm(ctx context.Context, s *actor.Stub, at time.Time) error {
	resp, err := s.Do(ctx, "set", strconv.AppendInt(nil, at.UnixMilli(), 10))
	if err != nil {
		return err
	}
	if resp.Status >= 400 {
		return fmt.Errorf("status %d: %s", resp.Status, resp.Body)
	}
	return nil
}

// benchLogCount counts the warnings and errors the bench runtimes log.
type benchLogCount struct {
	rebuilds  atomic.Int64 // object files found damaged and rebuilt
	mu        sync.Mutex
	warnings  int64
	errors    int64
	firstErr  string
	firstWarn string
}

// take returns the counts since the last take and resets them.
func (c *benchLogCount) take() (warnings, errors int64, first string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	warnings, errors, first = c.warnings, c.errors, c.firstErr
	if first == "" {
		first = c.firstWarn
	}
	c.warnings, c.errors, c.firstErr, c.firstWarn = 0, 0, "", ""
	return warnings, errors, first
}

func (c *benchLogCount) add(r slog.Record) {
	if strings.Contains(r.Message, "rebuilding it from the journal") {
		c.rebuilds.Add(1)
	}
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Level >= slog.LevelError {
		c.errors++
		if c.firstErr == "" {
			c.firstErr = b.String()
		}
	} else {
		c.warnings++
		if c.firstWarn == "" {
			c.firstWarn = b.String()
		}
	}
}

// benchCountingHandler passes records on to a handler and counts those
// at warning level and above.
type benchCountingHandler struct {
	slog.Handler
	c *benchLogCount
}

func (h benchCountingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.c.add(r)
	}
	return h.Handler.Handle(ctx, r)
}

func (h benchCountingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return benchCountingHandler{h.Handler.WithAttrs(attrs), h.c}
}

func (h benchCountingHandler) WithGroup(name string) slog.Handler {
	return benchCountingHandler{h.Handler.WithGroup(name), h.c}
}

// runtimeLogger is the bench runtimes' logger: warnings and errors to
// stderr, counted.
func (e *benchEnv) runtimeLogger() *slog.Logger {
	return slog.New(benchCountingHandler{slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), &e.rtLogs})
}

// runAlarm measures alarm-1 or alarm-10k.
func (e *benchEnv) runAlarm(ctx context.Context, w benchWorkload, profile string) (*benchResult, error) {
	_, _, _ = e.rtLogs.take() // only this workload's logs count
	var r *benchResult
	var err error
	if w.name == "alarm-1" {
		r, err = e.alarmOne(ctx, profile)
	} else {
		r, err = e.alarmMany(ctx, profile)
	}
	if err != nil {
		return nil, err
	}
	r.Workload, r.Sync = w.name, e.mode
	s := r.BenchAlarmStats
	s.RuntimeWarnings, s.RuntimeErrors, s.FirstRuntimeError = e.rtLogs.take()
	// errors: failed sets, alarms that did not fire, runtime errors.
	r.Errors = s.SetErrors + int64(s.Unfired) + s.RuntimeErrors
	switch {
	case r.FirstError != "":
	case s.Unfired > 0:
		r.FirstError = fmt.Sprintf("%d of %d alarms did not fire in time", s.Unfired, s.Alarms)
	case s.RuntimeErrors > 0:
		r.FirstError = "runtime: " + s.FirstRuntimeError
	}
	return r, nil
}

// alarmOne runs alarm-1: -rounds isolated alarms, one after the other
// (with -rounds 0, as many as fit in -duration), after one unmeasured
// round when -warmup is not zero.
func (e *benchEnv) alarmOne(ctx context.Context, profile string) (*benchResult, error) {
	o := e.o
	ns := e.clients[0].Namespace(benchAlarmNamespace)
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	errs := &benchErrors{}
	s := &BenchAlarmStats{Target: "p99 ≤ " + benchAlarmTarget1.String()}
	var lat []time.Duration
	var notes []string
	// round sets one alarm and waits for it; it reports whether the alarm
	// was set.
	round := func(name string, measured bool) (bool, error) {
		st := ns.Get(name)
		id := string(st.ID())
		cur := e.alarmLog.cursor()
		due := time.UnixMilli(time.Now().Add(benchAlarmLead).UnixMilli())
		if err := benchSetAlarm(ctx, st, due); err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if measured {
				errs.add(err)
			}
			return false, nil
		}
		setAt := time.Now()
		if measured && !setAt.Before(due) {
			s.LateSets++
		}
		deadline := due.Add(benchAlarmWait)
		seen := 0
		for {
			fs, next := e.alarmLog.since(cur)
			cur = next
			for _, f := range fs {
				if f.id != id {
					continue
				}
				seen++
				if seen > 1 {
					if measured {
						s.Duplicates++
					}
					continue
				}
				if measured {
					s.Fired++
					lat = append(lat, f.lateness())
					if !f.scheduled.Equal(due) && len(notes) < 3 {
						notes = append(notes, fmt.Sprintf("%s: scheduled %s, set for %s", name, f.scheduled.Format(time.StampMilli), due.Format(time.StampMilli)))
					}
				}
			}
			if seen > 0 {
				return true, nil
			}
			if !time.Now().Before(deadline) {
				if measured {
					s.Unfired++
				}
				return true, nil
			}
			if err := e.alarmLog.wait(ctx, deadline); err != nil {
				return false, err
			}
		}
	}
	if o.warmup > 0 {
		if _, err := round("a1-"+tag+"-warmup", false); err != nil {
			return nil, err
		}
	}
	var stop func() error
	if profile != "" {
		var err error
		if stop, err = benchProfile(profile); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	for k := 0; (o.rounds > 0 && k < o.rounds) || (o.rounds == 0 && (k == 0 || time.Since(start)+benchAlarmLead < o.duration)); k++ {
		ok, err := round("a1-"+tag+"-"+strconv.Itoa(k), true)
		if err != nil {
			if stop != nil {
				_ = stop()
			}
			return nil, err
		}
		if ok {
			s.Alarms++
		}
	}
	elapsed := time.Since(start)
	if stop != nil {
		if err := stop(); err != nil {
			return nil, err
		}
	}
	r := benchAlarmResult(lat, elapsed)
	r.Callers, r.Conns = 1, 1
	r.BenchAlarmStats = s
	s.SetErrors, r.FirstError = errs.get()
	s.MaxUs = benchMaxUs(lat)
	s.TargetMet = s.Fired > 0 && s.Unfired == 0 && s.SetErrors == 0 && r.P99us <= float64(benchAlarmTarget1.Microseconds())
	s.Note = strings.Join(notes, "; ")
	return r, nil
}

// alarmMany runs alarm-10k on a runtime of its own (default IdleTimeout,
// default MaxActive), closed afterwards so that its objects' files do not
// outlive the workload.
//
// The due time T must leave time to set every alarm, and that time is
// not known in advance: a first slice of the objects is set with an alarm
// an hour ahead to measure the rate, T is chosen from it (1.5 × the
// estimate for all -alarms sets + benchAlarmsMargin), then every object,
// the first slice included, gets its alarm at T. Sets answered after T are
// counted in late_sets (their alarm was stored as "now").
func (e *benchEnv) alarmMany(ctx context.Context, profile string) (_ *benchResult, err error) {
	o := e.o
	rt, done, err := e.ownRuntime(ctx, "a", "_ALARM_JOURNAL", 0)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, done()) }()
	nss := make([]*actor.NamespaceClient, len(e.conns))
	for i, nc := range e.conns {
		c, err := actor.NewClient(nc, actor.ClientConfig{Prefix: rt.Subjects().Prefix})
		if err != nil {
			return nil, err
		}
		nss[i] = c.Namespace(benchAlarmNamespace)
	}
	n := o.alarms
	names := make([]string, n)
	index := make(map[string]int, n) // object ID → k
	for k := range names {
		names[k] = "a10k-" + strconv.Itoa(k)
		index[string(nss[0].Get(names[k]).ID())] = k
	}
	s := &BenchAlarmStats{Target: "all fired ≤ " + benchAlarmTargetAll.String() + " after T"}
	setErrs := &benchErrors{}
	fds0 := countFDs()
	samp := startBenchAlarmSampler(rt)
	// Two CPU profiles: of the setting (FILE-set.EXT), and of the firing.
	var stop func() error
	startProfile := func(file string) error {
		if file == "" {
			return nil
		}
		var err error
		stop, err = benchProfile(file)
		return err
	}
	stopProfile := func() error {
		if stop == nil {
			return nil
		}
		f := stop
		stop = nil
		return f()
	}
	defer func() { err = errors.Join(err, stopProfile()) }()
	defer func() {
		if err != nil {
			samp.stop()
		}
	}()
	setProfile := ""
	if profile != "" {
		setProfile = strings.TrimSuffix(profile, filepath.Ext(profile)) + "-set" + filepath.Ext(profile)
	}
	if err := startProfile(setProfile); err != nil {
		return nil, err
	}

	// set sets the alarms of objects [from, to) to at, with every caller;
	// it returns how many succeeded, which did, how many replies came
	// after at, and when the last reply came.
	set := func(from, to int, at time.Time) (int, []bool, int, time.Time) {
		ok := make([]bool, to-from)
		var last, done, late atomic.Int64
		_ = benchParallel(ctx, o.callers, to-from, func(ctx context.Context, i, k int) error {
			err := benchSetAlarm(ctx, nss[e.conn(i)].Get(names[from+k]), at)
			now := time.Now().UnixNano()
			for {
				l := last.Load()
				if now <= l || last.CompareAndSwap(l, now) {
					break
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					setErrs.add(err)
				}
				return nil // counted, not fatal
			}
			ok[k] = true
			done.Add(1)
			if now > at.UnixNano() {
				late.Add(1)
			}
			return nil
		})
		return int(done.Load()), ok, int(late.Load()), time.Unix(0, last.Load())
	}

	// Calibrate on the first slice, an hour ahead.
	c := min(n, max(4*o.callers, n/10))
	t0 := time.Now()
	cok, _, _, _ := set(0, c, t0.Add(time.Hour))
	calib := time.Since(t0)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rate := float64(max(cok, 1)) / max(calib.Seconds(), 1e-3)
	s.CalibSets, s.CalibPerSec = c, round(rate, 1)
	estimate := time.Duration(float64(n) / rate * float64(time.Second))
	start := time.Now()
	due := time.UnixMilli(start.Add(estimate*3/2 + benchAlarmsMargin).UnixMilli())
	cur := e.alarmLog.cursor()

	// Every object (the first slice again) gets its alarm at T.
	set0 := time.Now()
	_, ok, late, lastReply := set(0, n, due)
	setDur := time.Since(set0)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := stopProfile(); err != nil {
		return nil, err
	}
	if setProfile != "" {
		fmt.Fprintf(e.stderr, "opendo bench: CPU profile of alarm-10k's setting in %s; of its firing in %s\n", setProfile, profile)
	}
	if err := startProfile(profile); err != nil {
		return nil, err
	}
	want := map[int]bool{}
	for k, b := range ok {
		if b {
			want[k] = true
		}
	}
	s.Alarms = len(want)
	s.SetS = round(setDur.Seconds(), 3)
	s.SetPerSec = round(float64(n)/max(setDur.Seconds(), 1e-3), 1)
	s.LeadMs = round(float64(due.Sub(start).Microseconds())/1e3, 1)
	slack := round(float64(due.Sub(lastReply).Microseconds())/1e3, 1)
	s.SlackMs = &slack
	if s.LateSets = late; late > 0 {
		s.Note = fmt.Sprintf("setting outlasted T by %.0f ms: %d sets were answered after T (an alarm committed after T is due at its commit)", -slack, late)
	}

	// Wait for every alarm set to fire, at most benchAlarmsWait after T.
	fired := map[int]benchAlarmFiring{}
	deadline := due.Add(benchAlarmsWait)
	for len(fired) < len(want) {
		fs, next := e.alarmLog.since(cur)
		cur = next
		for _, f := range fs {
			k, mine := index[f.id]
			if !mine {
				continue
			}
			if _, dup := fired[k]; dup || !want[k] {
				s.Duplicates++ // a second run, or a firing of a failed set
				continue
			}
			fired[k] = f
		}
		if len(fired) == len(want) || !time.Now().Before(deadline) {
			break
		}
		if err := e.alarmLog.wait(ctx, deadline); err != nil {
			return nil, err
		}
	}
	if err := stopProfile(); err != nil {
		return nil, err
	}
	peak := samp.stop()

	lat := make([]time.Duration, 0, len(fired))
	var last time.Time
	for _, f := range fired {
		lat = append(lat, f.lateness())
		if f.at.After(last) {
			last = f.at
		}
	}
	s.Fired = len(fired)
	s.Unfired = len(want) - len(fired)
	window := max(last.Sub(due), time.Millisecond)
	r := benchAlarmResult(lat, window)
	r.Callers, r.Conns = o.callers, len(e.conns)
	r.BenchAlarmStats = s
	if s.Fired > 0 {
		allMs := round(float64(last.Sub(due).Microseconds())/1e3, 1)
		s.AllFiredMs = &allMs
	}
	s.SetErrors, r.FirstError = setErrs.get()
	s.MaxUs = benchMaxUs(lat)
	s.TargetMet = s.Fired > 0 && s.Unfired == 0 && s.SetErrors == 0 && s.AllFiredMs != nil && *s.AllFiredMs <= float64(benchAlarmTargetAll.Milliseconds())
	peakFDs := max(peak.fds, fds0)
	s.FiredWithin = benchBuckets(lat)
	r.Objects = n
	r.PeakFDs = &peakFDs
	r.FDsBefore = fds0
	r.PeakActive = peak.active
	return r, nil
}

// startBenchAlarmSampler samples active objects every 50 ms like
// startBenchSampler, but open fds only every second: listing
// /proc/self/fd with ~15,000 entries costs ~15 ms of CPU: every 50 ms
// it took a fifth of the profile of alarm-10k.
func startBenchAlarmSampler(rt *actor.Runtime) *benchSampler {
	s := &benchSampler{stopc: make(chan struct{}), done: make(chan benchPeak, 1)}
	go func() {
		var p benchPeak
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			if i%20 == 0 {
				p.fds = max(p.fds, countFDs())
			}
			p.active = max(p.active, rt.ActiveObjects())
			select {
			case <-t.C:
			case <-s.stopc:
				p.fds = max(p.fds, countFDs())
				s.done <- p
				return
			}
		}
	}()
	return s
}

// benchAlarmResult turns latenesses into a result: ops = firings, ops/s
// over elapsed, p50 and p99.
func benchAlarmResult(lat []time.Duration, elapsed time.Duration) *benchResult {
	r := benchLatencies{lat}.result(elapsed)
	r.Baseline = benchNoBaseline
	return r
}

// benchBucket counts the alarms that fired at most Within late.
type benchBucket struct {
	Within string `json:"within"`
	Fired  int    `json:"fired"`
}

var benchBucketBounds = []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute}

// benchBuckets counts lat (any order) per bound of benchBucketBounds, up
// to the first bound that holds them all.
func benchBuckets(lat []time.Duration) []benchBucket {
	var out []benchBucket
	for _, b := range benchBucketBounds {
		n := 0
		for _, d := range lat {
			if d <= b {
				n++
			}
		}
		out = append(out, benchBucket{Within: b.String(), Fired: n})
		if n == len(lat) {
			break
		}
	}
	return out
}

func benchMaxUs(lat []time.Duration) float64 {
	if len(lat) == 0 {
		return 0
	}
	return round(slices.Max(lat).Seconds()*1e6, 1)
}

// benchAlarmFooter explains an alarm workload's line of the table.
func benchAlarmFooter(w io.Writer, r *benchResult) {
	s := r.BenchAlarmStats
	met := "met"
	if !s.TargetMet {
		met = "NOT met"
	}
	ms := func(us float64) string { return fmt.Sprintf("%.1f ms", us/1e3) }
	switch r.Workload {
	case "alarm-1":
		fmt.Fprintf(w, "\n%s (sync %s): %d isolated alarms, each set %v ahead; %d fired; lateness p50 %s, p99 %s, max %s; target %s: %s\n",
			r.Workload, r.Sync, s.Alarms, benchAlarmLead, s.Fired, ms(r.P50us), ms(r.P99us), ms(s.MaxUs), s.Target, met)
	default:
		all := "-"
		if s.AllFiredMs != nil {
			all = fmt.Sprintf("%.0f ms", *s.AllFiredMs)
		}
		fmt.Fprintf(w, "\n%s (sync %s): %d new objects set an hour ahead at %.0f/s to calibrate; then %d alarms set in %.1f s (%.0f/s) for T = start + %.1f s (slack %.0f ms); %d fired, the last %s after T; lateness p50 %s, p99 %s, max %s; peak active objects %d, open fds %d before, %d at peak; target %s: %s\n",
			r.Workload, r.Sync, s.CalibSets, s.CalibPerSec, s.Alarms, s.SetS, s.SetPerSec, s.LeadMs/1e3, derefF(s.SlackMs), s.Fired, all, ms(r.P50us), ms(r.P99us), ms(s.MaxUs),
			r.PeakActive, r.FDsBefore, derefI(r.PeakFDs), s.Target, met)
		var b strings.Builder
		for _, x := range s.FiredWithin {
			fmt.Fprintf(&b, " ≤%s: %d,", x.Within, x.Fired)
		}
		fmt.Fprintf(w, "  fired within (lateness):%s\n", strings.TrimSuffix(b.String(), ","))
	}
	if r.Errors > 0 || s.RuntimeWarnings > 0 {
		fmt.Fprintf(w, "  errors: %d failed sets, %d unfired, %d runtime errors, %d runtime warnings; first: %s\n",
			s.SetErrors, s.Unfired, s.RuntimeErrors, s.RuntimeWarnings, firstNonEmpty(r.FirstError, s.FirstRuntimeError))
	}
	if s.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", s.Note)
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/examples/reminder"
)

// Alarm tests drive the reminder example of `opendo dev` in real time:
// every wait is bounded and polls the object, except where the test
// itself needs the process down until a reminder is past due.
const (
	pollInterval = 50 * time.Millisecond
	fireTimeout  = 10 * time.Second // how long a due reminder may take to show in fired
)

// remAdded is what add returned for one reminder.
type remAdded struct {
	ID   int64 `json:"id"`
	Due  int64 `json:"due"`
	text string
}

// remCall calls the reminder object name on path with in (JSON, nil for
// no body) and decodes the reply into out.
func remCall(ctx context.Context, c *actor.Client, name, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	resp, err := c.Namespace(reminder.Namespace).Get(name).Do(ctx, path, body)
	if err != nil {
		return err
	}
	if resp.Status != 0 && resp.Status != 200 {
		return fmt.Errorf("status %d: %s", resp.Status, resp.Body)
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("reply %q: %v", resp.Body, err)
	}
	return nil
}

// remMust is remCall with setupTimeout that fails the test on error.
func remMust(t *testing.T, c *actor.Client, name, path string, in, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := remCall(ctx, c, name, path, in, out); err != nil {
		t.Fatalf("reminder %s %s: %v", name, path, err)
	}
}

func remAdd(t *testing.T, c *actor.Client, name string, inMS int64, text string) remAdded {
	t.Helper()
	var a remAdded
	remMust(t, c, name, "add", map[string]any{"in_ms": inMS, "text": text}, &a)
	if a.ID == 0 || a.Due == 0 {
		t.Fatalf("reminder %s add: reply without id or due: %+v", name, a)
	}
	a.text = text
	return a
}

func remList(t *testing.T, c *actor.Client, name, path string) []reminder.Reminder {
	t.Helper()
	var rs []reminder.Reminder
	remMust(t, c, name, path, nil, &rs)
	return rs
}

// remAlarm returns the object's alarm (Unix ms), or nil if it has none.
func remAlarm(t *testing.T, c *actor.Client, name string) *int64 {
	t.Helper()
	var a struct {
		Alarm *int64 `json:"alarm"`
	}
	remMust(t, c, name, "alarm", nil, &a)
	return a.Alarm
}

// pollFired reads fired of every object in names until done accepts the
// lists or deadline passes, and returns the last lists and whether done
// accepted them.
func pollFired(t *testing.T, c *actor.Client, names []string, deadline time.Time, done func(map[string][]reminder.Reminder) bool) (map[string][]reminder.Reminder, bool) {
	t.Helper()
	for {
		got := make(map[string][]reminder.Reminder, len(names))
		for _, n := range names {
			got[n] = remList(t, c, n, "fired")
		}
		if done(got) {
			return got, true
		}
		if time.Now().After(deadline) {
			return got, false
		}
		time.Sleep(pollInterval)
	}
}

// sleepUntil waits until at: used only where the test needs the process
// to stay down until then.
func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }

func ms(t int64) time.Time { return time.UnixMilli(t) }

// checkDone checks that name has no pending reminder and no alarm left.
func checkDone(t *testing.T, c *actor.Client, name string) {
	t.Helper()
	if p := remList(t, c, name, "pending"); len(p) != 0 {
		t.Errorf("%s: pending = %+v after every reminder fired, want none", name, p)
	}
	if a := remAlarm(t, c, name); a != nil {
		t.Errorf("%s: alarm = %d after every reminder fired, want null", name, *a)
	}
}

// TestAlarmSurvivesKillRightAfterCommit SIGKILLs `opendo dev` as soon as
// an add that sets the alarm is acknowledged, restarts it on the same data
// and checks that the reminder fires once, not before it is due.
func TestAlarmSurvivesKillRightAfterCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts and kills the opendo binary; skipped with -short")
	}
	const name = "k1"
	dataDir := t.TempDir()
	p := startDev(t, "first run", dataDir)
	c := newClient(t, connect(t, p.URL))
	a := remAdd(t, c, name, 1500, "a")
	p.kill()
	killed := time.Now()
	t.Logf("add acknowledged (id %d, due in %v), then SIGKILL", a.ID, ms(a.Due).Sub(killed).Round(time.Millisecond))

	p = startDev(t, "restart", dataDir)
	ready := time.Now()
	t.Logf("restarted: ready %v after the kill, %v before due", ready.Sub(killed).Round(time.Millisecond), ms(a.Due).Sub(ready).Round(time.Millisecond))
	c = newClient(t, connect(t, p.URL))
	got, ok := pollFired(t, c, []string{name}, ready.Add(fireTimeout), func(m map[string][]reminder.Reminder) bool {
		return len(m[name]) > 0
	})
	fired := got[name]
	if !ok {
		t.Fatalf("reminder not fired %v after restart (%v after due); pending %+v, alarm %v",
			fireTimeout, time.Since(ms(a.Due)).Round(time.Millisecond), remList(t, c, name, "pending"), fmtAlarm(remAlarm(t, c, name)))
	}
	if len(fired) != 1 {
		t.Fatalf("fired = %+v, want exactly one entry", fired)
	}
	f := fired[0]
	t.Logf("fired %v after due (%v after restart ready), retry %d", ms(f.FiredAt).Sub(ms(a.Due)), ms(f.FiredAt).Sub(ready).Round(time.Millisecond), f.Retry)
	if f.ID != a.ID || f.Text != "a" || f.Due != a.Due {
		t.Errorf("fired %+v, want id %d text %q due %d", f, a.ID, "a", a.Due)
	}
	if f.FiredAt < a.Due {
		t.Errorf("fired at %d, %v before its due time %d", f.FiredAt, ms(a.Due).Sub(ms(f.FiredAt)), a.Due)
	}
	checkDone(t, c, name)
	if again := remList(t, c, name, "fired"); !slices.Equal(again, fired) {
		t.Errorf("fired changed after the firing: %+v, then %+v", fired, again)
	}
}

// TestAlarmFiresAfterDowntime keeps `opendo dev` down until a reminder is
// 2 s past due, restarts it and checks that the reminder fires right away.
func TestAlarmFiresAfterDowntime(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts and kills the opendo binary; skipped with -short")
	}
	const (
		name     = "down"
		maxDelay = 5 * time.Second
	)
	dataDir := t.TempDir()
	p := startDev(t, "first run", dataDir)
	c := newClient(t, connect(t, p.URL))
	a := remAdd(t, c, name, 1000, "late")
	p.kill()
	sleepUntil(ms(a.Due).Add(2 * time.Second)) // down when due, and 2 s beyond

	spawned := time.Now()
	p = startDev(t, "restart", dataDir)
	ready := time.Now()
	c = newClient(t, connect(t, p.URL))
	got, ok := pollFired(t, c, []string{name}, ready.Add(fireTimeout), func(m map[string][]reminder.Reminder) bool {
		return len(m[name]) > 0
	})
	fired := got[name]
	if !ok {
		t.Fatalf("reminder due %v before the restart not fired %v after it; pending %+v, alarm %v",
			spawned.Sub(ms(a.Due)).Round(time.Millisecond), fireTimeout, remList(t, c, name, "pending"), fmtAlarm(remAlarm(t, c, name)))
	}
	if len(fired) != 1 {
		t.Fatalf("fired = %+v, want exactly one entry", fired)
	}
	f := fired[0]
	at := ms(f.FiredAt)
	delay := at.Sub(ready)
	t.Logf("restart spawned %v after due, ready after %v; fired %v after spawn, %v after ready (retry %d)",
		spawned.Sub(ms(a.Due)).Round(time.Millisecond), ready.Sub(spawned).Round(time.Millisecond),
		at.Sub(spawned).Round(time.Millisecond), delay.Round(time.Millisecond), f.Retry)
	if delay >= maxDelay {
		t.Errorf("fired %v after the restart was ready, want < %v", delay, maxDelay)
	}
	if f.ID != a.ID || f.Text != "late" || f.Due != a.Due {
		t.Errorf("fired %+v, want id %d text %q due %d", f, a.ID, "late", a.Due)
	}
	checkDone(t, c, name)
}

// TestDeletedAlarmNeverFiresAfterCrash cancels the only reminder (deleting
// the alarm), SIGKILLs `opendo dev`, restarts it and checks that nothing
// fires until well after the original due time.
func TestDeletedAlarmNeverFiresAfterCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts and kills the opendo binary; skipped with -short")
	}
	const name = "cancelled"
	dataDir := t.TempDir()
	p := startDev(t, "first run", dataDir)
	c := newClient(t, connect(t, p.URL))
	a := remAdd(t, c, name, 1500, "never")
	var cancelled struct {
		Cancelled bool `json:"cancelled"`
	}
	remMust(t, c, name, "cancel", map[string]int64{"id": a.ID}, &cancelled)
	if !cancelled.Cancelled {
		t.Fatalf("cancel %d: cancelled = false", a.ID)
	}
	p.kill()

	p = startDev(t, "restart", dataDir)
	c = newClient(t, connect(t, p.URL))
	end := ms(a.Due).Add(2500 * time.Millisecond)
	t.Logf("restarted %v before due; watching fired until 2.5 s past due", time.Until(ms(a.Due)).Round(time.Millisecond))
	polls := 0
	got, fired := pollFired(t, c, []string{name}, end, func(m map[string][]reminder.Reminder) bool {
		polls++
		return len(m[name]) > 0
	})
	if fired {
		t.Fatalf("cancelled reminder fired after the crash: %+v", got[name])
	}
	t.Logf("fired stayed empty over %d polls until %v past due", polls, time.Since(ms(a.Due)).Round(time.Millisecond))
	checkDone(t, c, name)
}

// TestAlarmNotFiredTwiceAcrossRestarts spreads 20 reminders over 3 objects,
// due 300–2000 ms ahead, stops `opendo dev` with SIGTERM once some have
// fired, restarts it and checks that every reminder fires exactly once:
// none lost, none fired again (a reminder seen fired before the stop keeps
// its fired_at).
func TestAlarmNotFiredTwiceAcrossRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the opendo binary; skipped with -short")
	}
	const (
		reminders   = 20
		objects     = 3
		firstMS     = 300
		lastMS      = 2000
		firedAtStop = 5 // SIGTERM once this many reminders have fired
	)
	names := make([]string, objects)
	for i := range names {
		names[i] = fmt.Sprintf("multi-%d", i)
	}
	dataDir := t.TempDir()
	p := startDev(t, "first run", dataDir)
	c := newClient(t, connect(t, p.URL))
	added := make(map[string]map[int64]remAdded) // object -> id -> reminder
	for _, n := range names {
		added[n] = make(map[int64]remAdded)
	}
	var lastDue int64
	start := time.Now()
	for i := range reminders {
		n := names[i%objects]
		a := remAdd(t, c, n, int64(firstMS+i*(lastMS-firstMS)/(reminders-1)), fmt.Sprintf("r%02d", i))
		added[n][a.ID] = a
		lastDue = max(lastDue, a.Due)
	}
	t.Logf("added %d reminders in %v", reminders, time.Since(start).Round(time.Millisecond))

	count := func(m map[string][]reminder.Reminder) int {
		k := 0
		for _, rs := range m {
			k += len(rs)
		}
		return k
	}
	before, ok := pollFired(t, c, names, ms(lastDue).Add(fireTimeout), func(m map[string][]reminder.Reminder) bool {
		return count(m) >= firedAtStop
	})
	if !ok {
		t.Fatalf("only %d of %d reminders fired before the stop: %+v", count(before), reminders, before)
	}
	stopAt := time.Now()
	if code := p.stop(); code != 0 {
		t.Fatalf("opendo dev exited with code %d after SIGTERM (%v), want 0", code, p.err)
	}
	spawned := time.Now()
	p = startDev(t, "restart", dataDir)
	ready := time.Now()
	t.Logf("%d fired before SIGTERM at +%v; stopped in %v, restart ready after %v more (at +%v, last due at +%v)",
		count(before), stopAt.Sub(start).Round(time.Millisecond), spawned.Sub(stopAt).Round(time.Millisecond),
		ready.Sub(spawned).Round(time.Millisecond), ready.Sub(start).Round(time.Millisecond), ms(lastDue).Sub(start).Round(time.Millisecond))
	if count(before) == reminders {
		t.Errorf("every reminder fired before the stop: the restart was not exercised")
	}

	c = newClient(t, connect(t, p.URL))
	after, ok := pollFired(t, c, names, maxTime(ready, ms(lastDue)).Add(fireTimeout), func(m map[string][]reminder.Reminder) bool {
		return count(m) >= reminders
	})
	if !ok {
		t.Errorf("only %d of %d reminders fired %v after the restart and the last due time", count(after), reminders, fireTimeout)
	}

	var lateBefore, lateAfter time.Duration
	firedAfter := 0
	for _, n := range names {
		seen := make(map[int64]bool)
		prev := make(map[int64]reminder.Reminder)
		for _, r := range before[n] {
			prev[r.ID] = r
		}
		for _, r := range after[n] {
			if seen[r.ID] {
				t.Errorf("%s: reminder %d listed twice in fired: %+v", n, r.ID, after[n])
			}
			seen[r.ID] = true
			a, ok := added[n][r.ID]
			if !ok {
				t.Errorf("%s: fired %+v was never added", n, r)
				continue
			}
			if r.Due != a.Due || r.Text != a.text {
				t.Errorf("%s: fired %+v, added due %d text %q", n, r, a.Due, a.text)
			}
			if r.FiredAt < r.Due {
				t.Errorf("%s: reminder %d fired %v before due", n, r.ID, ms(r.Due).Sub(ms(r.FiredAt)))
			}
			if r.Retry != 0 {
				t.Logf("%s: reminder %d fired on retry %d", n, r.ID, r.Retry)
			}
			late := ms(r.FiredAt).Sub(ms(r.Due))
			if old, ok := prev[r.ID]; ok {
				if old != r {
					t.Errorf("%s: reminder %d fired again after the restart: %+v before the stop, %+v after", n, r.ID, old, r)
				}
				lateBefore = max(lateBefore, late)
			} else {
				firedAfter++
				lateAfter = max(lateAfter, late)
			}
		}
		for _, r := range before[n] {
			if !seen[r.ID] {
				t.Errorf("%s: reminder %+v fired before the stop but is no longer in fired", n, r)
			}
		}
		for _, id := range slices.Sorted(maps.Keys(added[n])) {
			if !seen[id] {
				t.Errorf("%s: reminder %+v lost: never fired", n, added[n][id])
			}
		}
		checkDone(t, c, n)
	}
	t.Logf("%d fired before the stop (max lateness %v), %d after the restart (max lateness %v)",
		count(before), lateBefore, firedAfter, lateAfter)
	if code := p.stop(); code != 0 {
		t.Errorf("restarted opendo dev exited with code %d after SIGTERM (%v), want 0", code, p.err)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func fmtAlarm(a *int64) string {
	if a == nil {
		return "null"
	}
	return fmt.Sprintf("%d (%v from now)", *a, time.Until(ms(*a)).Round(time.Millisecond))
}

package actor_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/examples/reminder"
	"github.com/opendo/opendo/internal/clocktest"
	"github.com/opendo/opendo/internal/natstest"
)

// flaky is an object whose Alarm fails while fail > 0, recording each
// attempt on a channel.
type flaky struct {
	state    *actor.State
	mu       *sync.Mutex
	fail     *int
	attempts chan actor.AlarmInfo
	inAlarm  chan bool // whether Storage().Alarm() saw an alarm inside Alarm
}

func (f *flaky) Handle(ctx context.Context, req *actor.Request) (*actor.Response, error) {
	st := f.state.Storage()
	switch req.Path {
	case "set":
		var ms int64
		if err := json.Unmarshal(req.Body, &ms); err != nil {
			return nil, err
		}
		return nil, st.SetAlarm(ctx, time.UnixMilli(ms))
	case "set-then-fail":
		if err := st.SetAlarm(ctx, time.Now().Add(time.Hour)); err != nil {
			return nil, err
		}
		return nil, errors.New("no")
	case "alarm":
		t, ok, err := st.Alarm(ctx)
		if err != nil || !ok {
			return actor.Text("none"), err
		}
		return actor.Text(t.UTC().Format(time.RFC3339Nano)), nil
	case "marks":
		v, _, err := st.Get(ctx, "mark")
		return actor.Bytes(v), err
	}
	return nil, nil
}

func (f *flaky) Alarm(ctx context.Context, info actor.AlarmInfo) error {
	st := f.state.Storage()
	_, ok, _ := st.Alarm(ctx)
	f.inAlarm <- ok
	f.mu.Lock()
	fail := *f.fail > 0
	if fail {
		*f.fail--
	}
	f.mu.Unlock()
	if err := st.Put(ctx, "mark", []byte("x")); err != nil {
		return err
	}
	f.attempts <- info
	if fail {
		return errors.New("alarm failed on purpose")
	}
	return nil
}

type alarmEnv struct {
	*env
	clock    *clocktest.Clock
	attempts chan actor.AlarmInfo
	inAlarm  chan bool
	setFail  func(n int)
}

// newAlarmEnv runs a runtime on a fake clock set an hour ahead of real
// time, so that the durable schedules (real time) never fire during the
// test: only the local timers, driven by the fake clock, do.
func newAlarmEnv(t *testing.T) *alarmEnv {
	t.Helper()
	clock := clocktest.New(time.Now().Add(time.Hour).Truncate(time.Millisecond))
	var mu sync.Mutex
	fail := 0
	attempts := make(chan actor.AlarmInfo, 100)
	inAlarm := make(chan bool, 100)
	srv := natstest.Start(t)
	e := newEnvWith(t, srv, "", func(c *actor.Config) { c.Clock = clock }, func(rt *actor.Runtime) {
		if err := rt.Register("flaky", func(s *actor.State) actor.Handler {
			return &flaky{state: s, mu: &mu, fail: &fail, attempts: attempts, inAlarm: inAlarm}
		}); err != nil {
			t.Fatal(err)
		}
		if err := rt.Register("fakereminder", reminder.NewWithClock(clock.Now)); err != nil {
			t.Fatal(err)
		}
	})
	return &alarmEnv{env: e, clock: clock, attempts: attempts, inAlarm: inAlarm, setFail: func(n int) {
		mu.Lock()
		fail = n
		mu.Unlock()
	}}
}

// advanceUntilAttempt advances the fake clock step by step until an
// attempt is seen (the timer is armed asynchronously, after a commit).
func (a *alarmEnv) advanceUntilAttempt(t *testing.T, step time.Duration) actor.AlarmInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		a.clock.Advance(step)
		select {
		case info := <-a.attempts:
			return info
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("no alarm attempt")
	return actor.AlarmInfo{}
}

func (a *alarmEnv) setAlarm(t *testing.T, name string, at time.Time) {
	t.Helper()
	b, _ := json.Marshal(at.UnixMilli())
	a.mustCall(t, "flaky", name, "set", string(b))
}

func TestAlarmFiresOnceAndClears(t *testing.T) {
	a := newAlarmEnv(t)
	due := a.clock.Now().Add(10 * time.Second)
	a.setAlarm(t, "x", due)
	if got := a.mustCall(t, "flaky", "x", "alarm", ""); got != due.UTC().Format(time.RFC3339Nano) {
		t.Fatalf("alarm = %s, want %s", got, due)
	}
	a.clock.Advance(5 * time.Second)
	select {
	case <-a.attempts:
		t.Fatal("alarm fired early")
	default:
	}
	info := a.advanceUntilAttempt(t, time.Second)
	if info.IsRetry || info.RetryCount != 0 || !info.ScheduledTime.Equal(due) {
		t.Fatalf("info = %+v, want first attempt at %v", info, due)
	}
	if saw := <-a.inAlarm; saw {
		t.Fatal("Storage().Alarm() inside Alarm returned the due alarm, want none")
	}
	// The alarm is cleared once the handler succeeded (poll: the clearing
	// transaction commits after the attempt is reported).
	waitFor(t, func() bool { return a.mustCall(t, "flaky", "x", "alarm", "") == "none" })
	a.clock.Advance(time.Hour)
	select {
	case info := <-a.attempts:
		t.Fatalf("fired again: %+v", info)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestAlarmRetriesWithBackoffThenSucceeds(t *testing.T) {
	a := newAlarmEnv(t)
	a.setFail(2)
	a.setAlarm(t, "r", a.clock.Now())
	for want := 0; want <= 2; want++ {
		info := a.advanceUntilAttempt(t, 500*time.Millisecond)
		if info.RetryCount != want || info.IsRetry != (want > 0) {
			t.Fatalf("attempt %d: info %+v", want, info)
		}
	}
	waitFor(t, func() bool { return a.mustCall(t, "flaky", "r", "alarm", "") == "none" })
}

func TestAlarmDroppedAfterMaxRetries(t *testing.T) {
	a := newAlarmEnv(t)
	a.setFail(100)
	a.setAlarm(t, "d", a.clock.Now())
	for want := 0; want <= 6; want++ {
		info := a.advanceUntilAttempt(t, 10*time.Second)
		if info.RetryCount != want {
			t.Fatalf("attempt %d: retry count %d", want, info.RetryCount)
		}
	}
	waitFor(t, func() bool { return a.mustCall(t, "flaky", "d", "alarm", "") == "none" })
	a.clock.Advance(time.Hour)
	select {
	case info := <-a.attempts:
		t.Fatalf("attempt after the alarm was dropped: %+v", info)
	case <-time.After(100 * time.Millisecond):
	}
	// Writes of failed attempts were rolled back (a deliberate difference
	// from workerd, see docs/alarms.md).
	if got := a.mustCall(t, "flaky", "d", "marks", ""); got != "" {
		t.Fatalf("writes of failed alarm attempts survived: %q", got)
	}
}

func TestAlarmSetInFailedRequestIsRolledBack(t *testing.T) {
	a := newAlarmEnv(t)
	if _, err := a.call(t, "flaky", "f", "set-then-fail", ""); err == nil {
		t.Fatal("want an error")
	}
	if got := a.mustCall(t, "flaky", "f", "alarm", ""); got != "none" {
		t.Fatalf("alarm = %s after a failed request", got)
	}
}

func TestReminderExample(t *testing.T) {
	a := newAlarmEnv(t)
	a.mustCall(t, "fakereminder", "me", "add", `{"in_ms": 3000, "text": "tea"}`)
	a.mustCall(t, "fakereminder", "me", "add", `{"in_ms": 1000, "text": "call"}`)
	got := a.mustCall(t, "fakereminder", "me", "alarm", "")
	want := `{"alarm":` + itoa(a.clock.Now().Add(time.Second).UnixMilli()) + `}`
	if got != want {
		t.Fatalf("alarm %s, want %s", got, want)
	}
	fired := func() []reminder.Reminder {
		var rs []reminder.Reminder
		if err := json.Unmarshal([]byte(a.mustCall(t, "fakereminder", "me", "fired", "")), &rs); err != nil {
			t.Fatal(err)
		}
		return rs
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(fired()) < 2 && time.Now().Before(deadline) {
		a.clock.Advance(500 * time.Millisecond)
		time.Sleep(10 * time.Millisecond) // let the object take the timer's firing
	}
	rs := fired()
	if len(rs) != 2 || rs[0].Text != "tea" || rs[1].Text != "call" {
		t.Fatalf("fired %+v", rs)
	}
	if got := a.mustCall(t, "fakereminder", "me", "alarm", ""); got != `{"alarm":null}` {
		t.Fatalf("alarm after all fired: %s", got)
	}
}

// TestAlarmDurableScheduleFiresEvictedObject uses real time: the object is
// evicted, so only the durable JetStream schedule can wake it.
func TestAlarmDurableScheduleFiresEvictedObject(t *testing.T) {
	attempts := make(chan actor.AlarmInfo, 10)
	inAlarm := make(chan bool, 10)
	var mu sync.Mutex
	fail := 0
	e := newEnvWith(t, nil, "", func(c *actor.Config) { c.IdleTimeout = 20 * time.Millisecond }, func(rt *actor.Runtime) {
		if err := rt.Register("flaky", func(s *actor.State) actor.Handler {
			return &flaky{state: s, mu: &mu, fail: &fail, attempts: attempts, inAlarm: inAlarm}
		}); err != nil {
			t.Fatal(err)
		}
	})
	due := time.Now().Add(600 * time.Millisecond)
	b, _ := json.Marshal(due.UnixMilli())
	e.mustCall(t, "flaky", "evicted", "set", string(b))
	waitFor(t, func() bool { return e.rt.ActiveObjects() == 0 })
	select {
	case <-attempts:
		late := time.Since(due)
		t.Logf("durable firing %v late", late)
		if late < -50*time.Millisecond {
			t.Fatalf("fired %v early", -late)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("durable schedule never fired")
	}
	waitFor(t, func() bool { return e.mustCall(t, "flaky", "evicted", "alarm", "") == "none" })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

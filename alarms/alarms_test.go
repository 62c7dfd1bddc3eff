package alarms_test

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/alarms"
	"github.com/opendo/opendo/bus"
	"github.com/opendo/opendo/internal/natstest"
)

func TestScheduleFires(t *testing.T) {
	_, js, a := startServer(t, alarms.Config{})
	ch := consume(t, a, true)

	tests := []struct {
		name string
		at   func(now time.Time) time.Time
		f    alarms.Firing
		// maxLate bounds how late the firing may arrive: the server ticks at
		// most every 250 ms, -race slows everything down.
		maxLate time.Duration
	}{
		// The server's scheduler timer waits at least 250 ms each time it is
		// armed, so an alarm due sooner fires late.
		{"50ms ahead", func(now time.Time) time.Time { return now.Add(50 * time.Millisecond) },
			alarms.Firing{NS: "chat", ID: "room-0", Alarm: 3}, 400 * time.Millisecond},
		{"300ms ahead", func(now time.Time) time.Time { return now.Add(300 * time.Millisecond) },
			alarms.Firing{NS: "chat", ID: "room-1", Alarm: 1767225600000}, 250 * time.Millisecond},
		// Truncating the time to whole seconds (as jetstream.WithScheduleAt
		// does) would fire this early.
		{"600ms ahead, a retry", func(now time.Time) time.Time { return now.Add(600 * time.Millisecond) },
			alarms.Firing{NS: "chat", ID: "room-2", Alarm: 42, Retry: 3}, 250 * time.Millisecond},
		{"an hour ago", func(now time.Time) time.Time { return now.Add(-time.Hour) },
			alarms.Firing{NS: "chat", ID: "room-3", Alarm: -1}, 750 * time.Millisecond},
		{"zero time", func(time.Time) time.Time { return time.Time{} },
			alarms.Firing{NS: "chat", ID: "room-4"}, 750 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			at := tt.at(now)
			if err := a.Schedule(t.Context(), at, tt.f); err != nil {
				t.Fatalf("Schedule: %v", err)
			}
			d := next(t, ch, 5*time.Second)
			if d.f != tt.f {
				t.Fatalf("got firing %+v, want %+v", d.f, tt.f)
			}
			due := at
			if due.Before(now) { // a past time is due at once
				due = now
			}
			if d.at.Before(due) {
				t.Errorf("fired %v early", due.Sub(d.at))
			}
			late := d.at.Sub(due)
			t.Logf("lateness %v", late)
			if late > tt.maxLate {
				t.Errorf("fired %v late, want at most %v", late, tt.maxLate)
			}
		})
	}
	// Acknowledged firings and fired schedules leave nothing behind.
	waitStreamMsgs(t, js, 0)
}

// TestRescheduleAndCancel is the one test that waits to see that something
// does not fire.
func TestRescheduleAndCancel(t *testing.T) {
	_, js, a := startServer(t, alarms.Config{})
	ch := consume(t, a, true)
	ctx := t.Context()
	now := time.Now()

	first := alarms.Firing{NS: "ns", ID: "replaced", Alarm: 1}
	second := alarms.Firing{NS: "ns", ID: "replaced", Alarm: 2}
	cancelled := alarms.Firing{NS: "ns", ID: "cancelled", Alarm: 3}
	for _, s := range []struct {
		f  alarms.Firing
		in time.Duration
	}{
		{first, 300 * time.Millisecond},
		{cancelled, 300 * time.Millisecond},
		{second, 500 * time.Millisecond}, // replaces first
	} {
		if err := a.Schedule(ctx, now.Add(s.in), s.f); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Cancel(ctx, cancelled.NS, cancelled.ID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if err := a.Cancel(ctx, "ns", "never-scheduled"); err != nil {
		t.Errorf("Cancel without a schedule: %v", err)
	}

	if d := next(t, ch, 5*time.Second); d.f != second {
		t.Fatalf("got %+v, want %+v", d.f, second)
	}
	quiet := time.Until(now.Add(1500 * time.Millisecond))
	select {
	case d := <-ch:
		t.Fatalf("unexpected firing %+v", d.f)
	case <-time.After(quiet):
	}
	waitStreamMsgs(t, js, 0)
}

func TestRedeliveryAfterAckWait(t *testing.T) {
	const ackWait = time.Second
	_, js, a := startServer(t, alarms.Config{AckWait: ackWait})
	ch := consume(t, a, false)
	f := alarms.Firing{NS: "ns", ID: "slow", Alarm: 7}
	if err := a.Schedule(t.Context(), time.Now(), f); err != nil {
		t.Fatal(err)
	}

	d1 := next(t, ch, 5*time.Second) // not acknowledged
	d2 := next(t, ch, ackWait+5*time.Second)
	if d1.f != f || d2.f != f {
		t.Fatalf("got %+v then %+v, want %+v twice", d1.f, d2.f, f)
	}
	gap := d2.at.Sub(d1.at)
	t.Logf("redelivered after %v (AckWait %v)", gap, ackWait)
	if gap < ackWait-50*time.Millisecond {
		t.Errorf("redelivered after %v, before AckWait %v", gap, ackWait)
	}
	if err := d2.ack(); err != nil {
		t.Fatal(err)
	}
	if err := d1.ack(); err != nil { // a late ack of an earlier delivery is harmless
		t.Fatal(err)
	}
	waitStreamMsgs(t, js, 0)
}

func TestUnreadableFiringIsTerminated(t *testing.T) {
	var logs logBuffer
	cfg := alarms.Config{AckWait: time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	_, js, a := startServer(t, cfg)
	ch := consume(t, a, true)
	subj, _ := bus.NewSubjects("", 0)

	// Garbage on a fire subject, then a good firing on the same object.
	if _, err := js.Publish(t.Context(), subj.AlarmFire("ns", "x"), []byte("not a firing")); err != nil {
		t.Fatal(err)
	}
	good := alarms.Firing{NS: "ns", ID: "x", Alarm: 1}
	if err := a.Schedule(t.Context(), time.Now(), good); err != nil {
		t.Fatal(err)
	}
	if d := next(t, ch, 5*time.Second); d.f != good {
		t.Fatalf("got %+v, want %+v", d.f, good)
	}
	// Terminated and acknowledged messages both leave a work-queue stream:
	// nothing is left to redeliver.
	waitStreamMsgs(t, js, 0)
	if got := logs.String(); !strings.Contains(got, "unreadable firing") || !strings.Contains(got, subj.AlarmFire("ns", "x")) {
		t.Errorf("log %q does not report the unreadable firing", got)
	}
}

func TestDurableAcrossRestart(t *testing.T) {
	srv, js, a := startServer(t, alarms.Config{}, natstest.WithSyncAlways())
	ch := consume(t, a, true)
	f := alarms.Firing{NS: "ns", ID: "durable", Alarm: 99}
	due := time.Now().Add(1500 * time.Millisecond)
	if err := a.Schedule(t.Context(), due, f); err != nil {
		t.Fatal(err)
	}
	// A cancelled schedule must stay cancelled after the restart, which
	// overwriting it with a plain message would not achieve.
	cancelled := alarms.Firing{NS: "ns", ID: "cancelled", Alarm: 98}
	if err := a.Schedule(t.Context(), due, cancelled); err != nil {
		t.Fatal(err)
	}
	if err := a.Cancel(t.Context(), cancelled.NS, cancelled.ID); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	srv.Restart(t)
	t.Logf("restarted in %v", time.Since(t0))
	s, err := js.Stream(t.Context(), alarms.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := bus.NewSubjects("", 0)
	if m, err := s.GetLastMsgForSubject(t.Context(), subj.AlarmSchedule(cancelled.NS, cancelled.ID)); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("cancelled schedule after restart: %v, %v; want %v", m, err, jetstream.ErrMsgNotFound)
	}

	d := next(t, ch, 10*time.Second)
	if d.f != f {
		t.Fatalf("got %+v, want %+v", d.f, f)
	}
	t.Logf("lateness after a restart: %v", d.at.Sub(due))
	if d.at.Before(due) {
		t.Errorf("fired %v early", due.Sub(d.at))
	}
	// The same consumer keeps working after the restart.
	f2 := alarms.Firing{NS: "ns", ID: "after", Alarm: 100}
	if err := a.Schedule(t.Context(), time.Now(), f2); err != nil {
		t.Fatal(err)
	}
	if d := next(t, ch, 5*time.Second); d.f != f2 {
		t.Fatalf("got %+v, want %+v", d.f, f2)
	}
	waitStreamMsgs(t, js, 0)
}

// TestFiresAfterDowntime: a schedule that fell due while no server ran fires
// when a server starts on the store again.
func TestFiresAfterDowntime(t *testing.T) {
	dir := t.TempDir()
	srv, _, a := startServer(t, alarms.Config{}, natstest.WithStoreDir(dir), natstest.WithSyncAlways())
	f := alarms.Firing{NS: "ns", ID: "missed", Alarm: 5}
	due := time.Now().Add(200 * time.Millisecond)
	if err := a.Schedule(t.Context(), due, f); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	time.Sleep(time.Until(due) + 300*time.Millisecond) // down while due: inherent to the test

	t0 := time.Now()
	_, _, a = startServer(t, alarms.Config{}, natstest.WithStoreDir(dir))
	ch := consume(t, a, true)
	d := next(t, ch, 10*time.Second)
	if d.f != f {
		t.Fatalf("got %+v, want %+v", d.f, f)
	}
	t.Logf("fired %v after the server came back", d.at.Sub(t0))
}

func TestStopWaitsForFn(t *testing.T) {
	_, _, a := startServer(t, alarms.Config{})
	entered := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	stop, err := a.Consume(t.Context(), func(f alarms.Firing, ack func() error, _ func(time.Duration) error) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		_ = ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := a.Schedule(t.Context(), time.Now(), alarms.Firing{NS: "ns", ID: "id" + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no firing")
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while fn was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not return")
	}
	stop() // idempotent
	if got := calls.Load(); got != 1 {
		t.Errorf("fn called %d times, want 1 (no call after stop)", got)
	}
	// The firings the stopped consumer held were released, not left to
	// wait for AckWait (60 s).
	ch := consume(t, a, true)
	for range 2 {
		next(t, ch, 5*time.Second)
	}
}

func TestOpen(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	tests := []struct {
		name    string
		cfg     alarms.Config
		wantErr error
	}{
		{"defaults", alarms.Config{}, nil},
		{"again, same config", alarms.Config{}, nil},
		{"update ack wait", alarms.Config{AckWait: time.Second}, nil},
		{"own prefix and stream", alarms.Config{Subjects: bus.Subjects{Prefix: "app"}, Stream: "APP_ALARMS"}, nil},
		{"bad prefix", alarms.Config{Subjects: bus.Subjects{Prefix: "a.b"}}, alarms.ErrInvalidConfig},
		{"bad partitions", alarms.Config{Subjects: bus.Subjects{Partitions: -1}}, alarms.ErrInvalidConfig},
		{"replicas", alarms.Config{Replicas: 6}, alarms.ErrInvalidConfig},
		{"ack wait", alarms.Config{AckWait: time.Microsecond}, alarms.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := alarms.Open(t.Context(), js, tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open: %v, want %v", err, tt.wantErr)
			}
		})
	}

	s, err := js.Stream(t.Context(), alarms.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.Retention != jetstream.WorkQueuePolicy || !c.AllowMsgSchedules || !c.AllowRollup || c.DenyPurge ||
		c.MaxMsgsPerSubject != 1 || c.Storage != jetstream.FileStorage || len(c.Subjects) != 1 || c.Subjects[0] != "opendo.alarm.>" {
		t.Errorf("stream config %+v", c)
	}

	// A stream of that name with another retention cannot be taken over.
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "TAKEN", Subjects: []string{"taken.alarm.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := alarms.Open(t.Context(), js, alarms.Config{Stream: "TAKEN", Subjects: bus.Subjects{Prefix: "taken"}}); err == nil {
		t.Error("Open took over a limits stream")
	} else {
		t.Logf("Open on a limits stream: %v", err)
	}
}

func TestScheduleRejects(t *testing.T) {
	_, _, a := startServer(t, alarms.Config{})
	tests := []struct {
		name    string
		at      time.Time
		f       alarms.Firing
		wantErr error
	}{
		{"empty namespace", time.Now(), alarms.Firing{ID: "x"}, alarms.ErrInvalidFiring},
		{"dotted id", time.Now(), alarms.Firing{NS: "ns", ID: "a.b"}, alarms.ErrInvalidFiring},
		{"wildcard id", time.Now(), alarms.Firing{NS: "ns", ID: ">"}, alarms.ErrInvalidFiring},
		{"negative retry", time.Now(), alarms.Firing{NS: "ns", ID: "x", Retry: -1}, alarms.ErrInvalidFiring},
		{"year 2300", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), alarms.Firing{NS: "ns", ID: "x"}, alarms.ErrTimeRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := a.Schedule(t.Context(), tt.at, tt.f); !errors.Is(err, tt.wantErr) {
				t.Errorf("Schedule: %v, want %v", err, tt.wantErr)
			}
		})
	}
	if err := a.Cancel(t.Context(), "ns", "a.b"); !errors.Is(err, alarms.ErrInvalidFiring) {
		t.Errorf("Cancel: %v, want %v", err, alarms.ErrInvalidFiring)
	}
	if _, err := a.Consume(t.Context(), nil); !errors.Is(err, alarms.ErrInvalidConfig) {
		t.Errorf("Consume(nil): %v, want %v", err, alarms.ErrInvalidConfig)
	}
}

package alarms

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/bus"
)

// Defaults for Config.
const (
	DefaultStream   = "OPENDO_ALARMS"
	DefaultConsumer = "opendo-alarms"
	DefaultAckWait  = 60 * time.Second
)

// Header names of NATS message schedules (nats-server 2.12+).
const (
	hdrSchedule       = "Nats-Schedule"        // "@at <RFC 3339 time>"
	hdrScheduleTarget = "Nats-Schedule-Target" // the subject the firing is stored on
)

// maxTime is the latest schedule time: the server keeps schedule times as
// int64 Unix nanoseconds.
var maxTime = time.Unix(0, 1<<63-1).UTC()

// Log attribute keys.
const (
	logKeySubject  = "subject"
	logKeyConsumer = "consumer"
	logKeyErr      = "err"
)

// Config configures Open. The zero value works: every field has a default.
type Config struct {
	// Subjects names the alarm subjects: Subjects.AlarmSchedule(ns, id) and
	// Subjects.AlarmFire(ns, id). Zero fields take bus.NewSubjects's
	// defaults.
	Subjects bus.Subjects
	// Stream is the JetStream stream holding schedules and firings; default
	// "OPENDO_ALARMS". It captures <prefix>.alarm.> and must not be shared.
	Stream string
	// Replicas of the stream; default 1.
	Replicas int
	// Consumer is the durable consumer that Consume reads firings with;
	// default "opendo-alarms".
	Consumer string
	// AckWait is how long a delivered firing may stay unacknowledged before
	// it is delivered again; default 60 s.
	AckWait time.Duration
	// Logger receives the package's logs; default slog.Default().
	Logger *slog.Logger
}

// Alarms schedules and delivers durable alarms; see the package doc. It is
// safe for concurrent use and owns no goroutines (Consume's are owned by the
// stop function it returns).
type Alarms struct {
	cfg    Config
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger
}

// Open validates cfg and creates the alarm stream, or updates it to cfg
// (see the package doc for its configuration). Updating fails if the stream
// exists with another retention policy than work queue.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Alarms, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: no JetStream", ErrInvalidConfig)
	}
	subj, err := bus.NewSubjects(cfg.Subjects.Prefix, cfg.Subjects.Partitions)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	cfg.Subjects = subj
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Consumer == "" {
		cfg.Consumer = DefaultConsumer
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Replicas < 1 || cfg.Replicas > 5 {
		return nil, fmt.Errorf("%w: replicas %d out of range 1..5", ErrInvalidConfig, cfg.Replicas)
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.AckWait < time.Millisecond {
		return nil, fmt.Errorf("%w: ack wait %v below 1ms", ErrInvalidConfig, cfg.AckWait)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	stream, err := js.CreateOrUpdateStream(ctx, streamConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("alarms: stream %s: %w", cfg.Stream, err)
	}
	return &Alarms{cfg: cfg, js: js, stream: stream, log: cfg.Logger}, nil
}

// streamConfig is the configuration of the alarm stream; the package doc
// explains each choice.
func streamConfig(cfg Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              cfg.Stream,
		Description:       "opendo alarms: one schedule per object, firings until acknowledged",
		Subjects:          []string{cfg.Subjects.Prefix + ".alarm.>"},
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
		Retention:         jetstream.WorkQueuePolicy,
		MaxMsgsPerSubject: 1,
		Discard:           jetstream.DiscardOld,
		AllowMsgSchedules: true,
		AllowRollup:       true,
		DenyPurge:         false,
	}
}

// Schedule makes f fire at time at, replacing any schedule of the object
// (f.NS, f.ID). A time in the past, or less than 250 ms ahead, fires about
// 250 ms after Schedule (the server's scheduler floor). It
// returns once the schedule is stored, i.e. durable as far as the stream
// is (see NATS-NOTES on fsync). It fails with ErrInvalidFiring if f is
// invalid and with ErrTimeRange if at is after the year 2262.
func (a *Alarms) Schedule(ctx context.Context, at time.Time, f Firing) error {
	if err := f.validate(); err != nil {
		return err
	}
	if at.After(maxTime) {
		return fmt.Errorf("%w: %v", ErrTimeRange, at)
	}
	// The server accepts a past time and fires it on its next tick, but it
	// converts the time to Unix nanoseconds, which overflow before 1678:
	// clamp far-past times (such as the zero time) to the Unix epoch.
	if at.Unix() < 0 {
		at = time.Unix(0, 0)
	}
	msg := &nats.Msg{
		Subject: a.cfg.Subjects.AlarmSchedule(f.NS, f.ID),
		Header:  nats.Header{},
		Data:    f.Marshal(),
	}
	// Set the headers ourselves: jetstream.WithScheduleAt formats the time
	// without fractional seconds, firing up to 1 s early.
	msg.Header.Set(hdrSchedule, "@at "+at.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(hdrScheduleTarget, a.cfg.Subjects.AlarmFire(f.NS, f.ID))
	if _, err := a.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("alarms: schedule %s: %w", f, err)
	}
	return nil
}

// Cancel removes the schedule of the object (ns, id), if any, by purging its
// schedule subject. A firing already stored (or being stored as Cancel runs)
// is still delivered: the runtime drops it as stale.
func (a *Alarms) Cancel(ctx context.Context, ns, id string) error {
	if err := (Firing{NS: ns, ID: id}).validate(); err != nil {
		return err
	}
	subj := a.cfg.Subjects.AlarmSchedule(ns, id)
	if err := a.stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
		return fmt.Errorf("alarms: cancel %s/%s: %w", ns, id, err)
	}
	return nil
}

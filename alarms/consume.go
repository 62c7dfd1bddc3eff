package alarms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// Consume delivers every firing to fn until stop is called. It creates the
// durable consumer Config.Consumer (or updates it to Config.AckWait) on
// <prefix>.alarm.fire.>; ctx bounds only that setup, not the consumption.
//
// fn runs on one goroutine of the NATS client, one firing at a time, so it
// must hand the firing over (to the object's mailbox) and return quickly.
// Call ack once the runtime has handled the firing: it acknowledges the
// message, which removes it from the stream. It is fire-and-forget (no
// round trip), safe to call from any goroutine, at any time, also after
// stop; a second call returns an error. A lost ack shows up as a
// redelivery. A firing not acknowledged
// within AckWait is delivered again, to this or another consumer of the same
// durable (at-least-once). A payload that does not parse is logged and
// terminated: it is never delivered again.
//
// Consumption survives disconnections and server restarts: the NATS client
// reconnects and the consumer issues a new pull, so firings stored while
// disconnected arrive once it is back. Errors of the consumer are logged.
// Should the durable consumer be deleted, consumption ends (logged at error
// level) and Consume must be called again.
//
// stop ends consumption: firings reaching the handler once stop has been
// called are not passed to fn, and stop waits for a running fn to return.
// Firings the client has received but not passed to fn are released (nak)
// for immediate redelivery to another consumer; any still on the wire come
// again after AckWait. stop is idempotent and must not be called from fn.
func (a *Alarms) Consume(ctx context.Context, fn func(f Firing, ack func() error)) (stop func(), err error) {
	if fn == nil {
		return nil, fmt.Errorf("%w: nil consume function", ErrInvalidConfig)
	}
	cons, err := a.js.CreateOrUpdateConsumer(ctx, a.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       a.cfg.Consumer,
		Description:   "opendo alarm firings",
		FilterSubject: a.cfg.Subjects.Prefix + ".alarm.fire.>",
		DeliverPolicy: jetstream.DeliverAllPolicy, // required by work-queue streams
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       a.cfg.AckWait,
		MaxDeliver:    -1, // the runtime stops retrying, not the consumer
	})
	if err != nil {
		return nil, fmt.Errorf("alarms: consumer %s: %w", a.cfg.Consumer, err)
	}

	// running is held while fn runs: stop takes it to wait for fn. Once
	// stopped is set, firings still reaching the handler are released.
	var (
		running sync.Mutex
		stopped atomic.Bool
	)
	handle := func(msg jetstream.Msg) {
		running.Lock()
		defer running.Unlock()
		if stopped.Load() {
			_ = msg.Nak() // let another consumer have it now
			return
		}
		f, err := ParseFiring(msg.Data())
		if err != nil {
			a.log.Error("alarms: dropping unreadable firing",
				slog.String(logKeySubject, msg.Subject()), slog.Any(logKeyErr, err))
			if err := msg.Term(); err != nil {
				a.log.Warn("alarms: terminate firing",
					slog.String(logKeySubject, msg.Subject()), slog.Any(logKeyErr, err))
			}
			return
		}
		fn(f, msg.Ack)
	}
	onErr := func(_ jetstream.ConsumeContext, err error) {
		level := slog.LevelWarn
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			level = slog.LevelError
		}
		a.log.Log(context.Background(), level, "alarms: consume",
			slog.String(logKeyConsumer, a.cfg.Consumer), slog.Any(logKeyErr, err))
	}
	cc, err := cons.Consume(handle, jetstream.ConsumeErrHandler(onErr))
	if err != nil {
		return nil, fmt.Errorf("alarms: consume %s: %w", a.cfg.Consumer, err)
	}

	var once sync.Once
	stop = func() {
		once.Do(func() {
			stopped.Store(true)
			running.Lock() // waits for fn to return
			// After stopped is set no fn starts, so the lock is only a
			// barrier.
			//lint:ignore SA2001 a barrier: waits for a running fn
			running.Unlock()
			cc.Drain() // the handler naks what the client still holds
			<-cc.Closed()
		})
	}
	return stop, nil
}

package alarms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/bus"
)

// ConsumeFunc takes one firing. ack acknowledges it (see Consume); nak
// hands it back, to be delivered again after delay, to any consumer of the
// same durable (a node that does not own the firing's object does so).
type ConsumeFunc func(f Firing, ack func() error, nak func(delay time.Duration) error)

// Consume delivers firings to fn until stop is called: the firings of the
// given namespaces, or of every namespace when none is given.
//
// Each namespace has a durable consumer of its own, Config.Consumer + "-" +
// the namespace, filtered on <prefix>.alarm.fire.*.<ns>.*, so that runtimes
// hosting different namespaces on one deployment receive only their own
// firings, and runtimes hosting the same namespace share its consumer.
// Without namespaces, Consume uses the durable Config.Consumer on
// <prefix>.alarm.fire.>. The alarm stream is a work queue, whose consumers'
// filters may not overlap: consuming by namespace deletes the catch-all
// consumer if an earlier version left it (its pending firings stay in the
// stream and go to the namespace consumers). Consume creates each durable
// (or updates it to Config.AckWait); ctx bounds only that setup, not the
// consumption.
//
// fn runs on one goroutine of the NATS client per consumer, one firing at a
// time, so it must hand the firing over (to the object's mailbox) and
// return quickly. Call ack once the runtime has handled the firing: it
// acknowledges the message, which removes it from the stream. It is
// fire-and-forget (no round trip), safe to call from any goroutine, at any
// time, also after stop; a second call returns an error. A lost ack shows
// up as a redelivery. A firing not acknowledged within AckWait is delivered
// again, to this or another consumer of the same durable (at-least-once). A
// payload that does not parse is logged and terminated: it is never
// delivered again.
//
// Consumption survives disconnections and server restarts: the NATS client
// reconnects and the consumer issues a new pull, so firings stored while
// disconnected arrive once it is back. Errors of the consumer are logged.
// Should a durable consumer be deleted, its consumption ends (logged at
// error level) and Consume must be called again.
//
// stop ends consumption: firings reaching the handler once stop has been
// called are not passed to fn, and stop waits for a running fn to return.
// Firings the client has received but not passed to fn are released (nak)
// for immediate redelivery to another consumer; any still on the wire come
// again after AckWait. stop is idempotent and must not be called from fn.
func (a *Alarms) Consume(ctx context.Context, fn ConsumeFunc, namespaces ...string) (stop func(), err error) {
	if fn == nil {
		return nil, fmt.Errorf("%w: nil consume function", ErrInvalidConfig)
	}
	if len(namespaces) == 0 {
		return a.consume(ctx, a.cfg.Consumer, a.cfg.Subjects.Prefix+".alarm.fire.>", fn)
	}
	for _, ns := range namespaces {
		if err := bus.ValidToken(ns); err != nil {
			return nil, fmt.Errorf("%w: namespace: %w", ErrInvalidConfig, err)
		}
	}
	switch err := a.js.DeleteConsumer(ctx, a.cfg.Stream, a.cfg.Consumer); {
	case err == nil:
		a.log.Info("alarms: deleted the catch-all consumer of an earlier version; firings go to namespace consumers",
			slog.String(logKeyConsumer, a.cfg.Consumer))
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	default:
		return nil, fmt.Errorf("alarms: delete consumer %s: %w", a.cfg.Consumer, err)
	}
	var stops []func()
	stopAll := func() {
		for _, s := range stops {
			s()
		}
	}
	for _, ns := range namespaces {
		s, err := a.consume(ctx, a.cfg.Consumer+"-"+ns, a.cfg.Subjects.Prefix+".alarm.fire.*."+ns+".*", fn)
		if err != nil {
			stopAll()
			return nil, err
		}
		stops = append(stops, s)
	}
	return stopAll, nil
}

// consume consumes the firings of filter with the durable consumer name.
func (a *Alarms) consume(ctx context.Context, name, filter string, fn ConsumeFunc) (stop func(), err error) {
	cons, err := a.js.CreateOrUpdateConsumer(ctx, a.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "opendo alarm firings",
		FilterSubject: filter,
		DeliverPolicy: jetstream.DeliverAllPolicy, // required by work-queue streams
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       a.cfg.AckWait,
		MaxDeliver:    -1, // the runtime stops retrying, not the consumer
	})
	if err != nil {
		return nil, fmt.Errorf("alarms: consumer %s: %w", name, err)
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
		fn(f, msg.Ack, msg.NakWithDelay)
	}
	onErr := func(_ jetstream.ConsumeContext, err error) {
		level := slog.LevelWarn
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			level = slog.LevelError
		}
		a.log.Log(context.Background(), level, "alarms: consume",
			slog.String(logKeyConsumer, name), slog.Any(logKeyErr, err))
	}
	cc, err := cons.Consume(handle, jetstream.ConsumeErrHandler(onErr))
	if err != nil {
		return nil, fmt.Errorf("alarms: consume %s: %w", name, err)
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

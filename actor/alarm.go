package actor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/alarms"
	"github.com/opendo/opendo/storage"
)

// alarmEffect is what a group of transactions did to the alarm.
type alarmEffect struct {
	changed bool
	set     bool
	ms      int64
}

func alarmEffectOf(txns []storage.Txn) alarmEffect {
	var e alarmEffect
	for _, t := range txns {
		for _, m := range t.Mutations {
			switch m.Op {
			case storage.OpSetAlarm:
				e = alarmEffect{changed: true, set: true, ms: m.Alarm}
			case storage.OpDeleteAlarm, storage.OpDeleteAll:
				e = alarmEffect{changed: true}
			}
		}
	}
	return e
}

// armTimer makes the local timer deliver f at its alarm time (or after
// the retry delay already folded into at by the caller).
func (o *object) armTimer(f alarms.Firing) {
	o.armTimerAt(time.UnixMilli(f.Alarm), f)
}

func (o *object) armTimerAt(at time.Time, f alarms.Firing) {
	o.stopTimer()
	d := at.Sub(o.rt.clock.Now())
	local := o.local
	o.timerAt = at
	o.timer = o.rt.clock.AfterFunc(d, func() {
		select {
		case local <- f:
		default: // a firing is already waiting
		}
	})
}

func (o *object) stopTimer() {
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
		o.timerAt = time.Time{}
	}
}

// alarmSoon reports whether the local timer fires within the idle
// timeout: such an object stays active to fire on time.
func (o *object) alarmSoon() bool {
	return o.timer != nil && o.timerAt.Sub(o.rt.clock.Now()) < o.rt.cfg.IdleTimeout
}

// fire runs the alarm handler for firing f (from the local timer when ack
// is nil, else from the durable schedule).
func (o *object) fire(ctx context.Context, f alarms.Firing, ack func() error) {
	ms, ok, err := o.db.AlarmTime(ctx)
	if err != nil {
		if ctx.Err() == nil {
			o.rt.log.Error("read alarm", logNS, o.ns.name, logID, o.id, logErr, err)
		}
		return // unacknowledged: delivered again
	}
	if !ok || ms != f.Alarm || f.Retry < o.retry {
		// Stale: the alarm changed, was deleted, or this attempt already
		// ran. A firing may have purged a newer schedule of this object
		// (see package alarms): schedule the current alarm again.
		if ok && ack != nil && ms == o.alarmMs {
			o.reschedule(ctx, alarms.Firing{NS: o.ns.name, ID: string(o.id), Alarm: ms, Retry: o.retry})
		}
		o.holdAck(ack)
		return
	}
	if err := o.ensureInit(ctx); err != nil {
		o.rt.log.Warn("alarm waits for the object's init", logNS, o.ns.name, logID, o.id, logErr, err)
		return // unacknowledged: delivered again
	}
	o.stopTimer()
	o.retry = f.Retry
	tc := storage.TxContext{Time: o.rt.clock.Now(), Seed: rand.Uint64()}
	if err := o.db.Begin(ctx, tc, true); err != nil {
		o.rt.log.Error("begin alarm", logNS, o.ns.name, logID, o.id, logErr, err)
		return
	}
	reqID := "alarm-" + ulid.Make().String()
	o.restoreTo = nil
	o.sectionErr = nil
	dl, herr := o.withDeadline(ctx, func(ctx context.Context) error { return o.invokeAlarm(ctx, f) }, nil)
	if dl != deadlineMet {
		herr = o.timeoutError()
	}
	if herr == nil && o.sectionErr != nil {
		herr = fmt.Errorf("BlockConcurrencyWhile failed: %w", o.sectionErr)
	}
	if o.sectionErr != nil && dl == deadlineMet {
		defer o.newHandler() // a failed section resets the object
	}
	if herr == nil {
		// The alarm is done unless the handler set a new one.
		if cur, ok, err := o.db.AlarmTime(ctx); err != nil {
			herr = err
		} else if ok && cur == f.Alarm {
			herr = o.db.Storage().DeleteAlarm(ctx)
		}
	}
	if herr == nil {
		if err := o.commit(ctx, reqID, tc); err != nil {
			if ctx.Err() == nil {
				o.rt.log.Error("alarm commit failed", logNS, o.ns.name, logID, o.id, logErr, err)
			}
			return // unacknowledged: delivered again
		}
		o.holdAck(ack)
		return
	}
	o.restoreTo = nil // the failed attempt's restore is abandoned with its writes
	if err := o.db.Rollback(context.WithoutCancel(ctx)); err != nil {
		o.broken = err
		return
	}
	next := f.Retry + 1
	if next > alarms.MaxRetries {
		o.rt.log.Warn("alarm handler failed too often; dropping the alarm", logNS, o.ns.name, logID, o.id, "retries", f.Retry, logErr, herr)
		if err := o.dropAlarm(ctx, tc); err != nil {
			o.rt.log.Error("drop alarm failed", logNS, o.ns.name, logID, o.id, logErr, err)
		}
		o.holdAck(ack)
		return
	}
	o.retry = next
	at := o.rt.clock.Now().Add(alarms.RetryDelay(next, rand.Float64))
	nf := alarms.Firing{NS: o.ns.name, ID: string(o.id), Alarm: f.Alarm, Retry: next}
	o.rt.log.Info("alarm handler failed; will retry", logNS, o.ns.name, logID, o.id, "retry", next, "at", at, logErr, herr)
	o.armTimerAt(at, nf)
	sctx, cancel := context.WithTimeout(ctx, o.rt.cfg.AppendTimeout)
	defer cancel()
	if err := o.rt.alarms.Schedule(sctx, at, nf); err != nil {
		// The local timer still retries; only a crash would lose the retry.
		o.rt.log.Warn("schedule alarm retry failed", logNS, o.ns.name, logID, o.id, logErr, err)
	}
	o.holdAck(ack)
}

// dropAlarm deletes the alarm in a transaction of its own.
func (o *object) dropAlarm(ctx context.Context, tc storage.TxContext) error {
	if err := o.db.Begin(ctx, tc, true); err != nil {
		return err
	}
	if err := o.db.Storage().DeleteAlarm(ctx); err != nil {
		_ = o.db.Rollback(context.WithoutCancel(ctx))
		return err
	}
	return o.commit(ctx, "alarm-drop-"+ulid.Make().String(), tc)
}

func (o *object) reschedule(ctx context.Context, f alarms.Firing) {
	sctx, cancel := context.WithTimeout(ctx, o.rt.cfg.AppendTimeout)
	defer cancel()
	at := time.UnixMilli(f.Alarm)
	if !o.timerAt.IsZero() {
		at = o.timerAt
	}
	if err := o.rt.alarms.Schedule(sctx, at, f); err != nil {
		o.rt.log.Warn("re-schedule alarm failed", logNS, o.ns.name, logID, o.id, logErr, err)
	}
}

// invokeAlarm runs the handler's Alarm method, turning a panic into an
// error. A handler without Alarm fails every attempt.
func (o *object) invokeAlarm(ctx context.Context, f alarms.Firing) (err error) {
	h, ok := o.handler.(AlarmHandler)
	if !ok {
		return Errorf(http.StatusNotImplemented, CodeHandlerError, "namespace %s has no Alarm handler", o.ns.name)
	}
	defer func() {
		if r := recover(); r != nil {
			o.rt.log.Error("alarm handler panicked", logNS, o.ns.name, logID, o.id, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("alarm handler panicked: %v", r)
			o.newHandler()
		}
	}()
	return h.Alarm(ctx, AlarmInfo{RetryCount: f.Retry, IsRetry: f.Retry > 0, ScheduledTime: time.UnixMilli(f.Alarm)})
}

package actor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/storage"
)

// Concurrency control (docs/concurrency.md). An object runs one event at a
// time: a request, an alarm, its init, or a section of background work
// under BlockConcurrencyWhile. Nothing else is delivered to it meanwhile,
// so within an event there is no interleaving at all (the input gate is
// closed for the whole event, not only across storage calls as in
// Cloudflare's runtime).

// Initializer is implemented by handlers that prepare their object before
// its first event: create tables, migrate data, load a cache. Init runs
// once per handler, before anything else reaches it: after activation,
// and again after a panic, a timeout or a failed BlockConcurrencyWhile
// rebuilt the handler. Its writes are one transaction, journaled like a
// request's. If it fails (an error, a panic, its deadline), its writes
// are rolled back, the handler is rebuilt, and the event that waited for
// it fails (a request gets handler_error, an alarm is retried); the next
// event tries Init again.
type Initializer interface {
	Init(ctx context.Context) error
}

// eventKey marks the context of an event of an object: its value is the
// *object whose goroutine runs it.
type eventKey struct{}

// task is a BlockConcurrencyWhile section asked from outside the object's
// events (from WaitUntil work).
type task struct {
	fn   func(context.Context, *State) error
	done chan error // one result
}

// BlockConcurrencyWhile runs fn with no other event of the object running
// or starting until it returns: no request, alarm or other section.
//
// Called within an event (ctx is the handler's, or derived from it), fn
// runs at once, inside that event: it is exclusive already. If fn fails,
// the event fails with it: its writes are rolled back and the handler is
// rebuilt (the object resets to its last committed state).
//
// Called from elsewhere (work started by WaitUntil), fn waits for its turn
// in the object's queue, like a request, and runs as an event of its own:
// it may use the object's storage, its writes are one transaction, and
// BlockConcurrencyWhile returns once they are durable. An error, a panic or
// the handler deadline (Config.HandlerTimeout, 30 s by default) rolls them
// back and rebuilds the handler. If ctx ends first, BlockConcurrencyWhile
// returns ctx.Err() and fn may still run.
func (s *State) BlockConcurrencyWhile(ctx context.Context, fn func(ctx context.Context) error) error {
	o := s.o
	if o == nil {
		return fmt.Errorf("%w: BlockConcurrencyWhile on a state no runtime built", ErrClosed)
	}
	if cur, _ := ctx.Value(eventKey{}).(*object); cur == o {
		// An event's context ends with the event: a stale one (kept by
		// work that outlived its event) cannot run fn inline.
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ctx); err != nil {
			o.sectionErr = err
			return err
		}
		return nil
	}
	return o.rt.runTask(ctx, o.ns.name, o.id, func(ctx context.Context, _ *State) error { return fn(ctx) })
}

// RunInObject runs fn inside the object id of namespace ns as one event of
// its own, as State.BlockConcurrencyWhile runs a section from background
// work: the object is activated if it is not, nothing else runs in it
// meanwhile, fn gets the object's state (its storage among it), its writes
// are one transaction, and RunInObject returns once they are durable. An
// error or a panic rolls them back and resets the object. It is for tests
// and tools (package actortest uses it, as miniflare's runInDurableObject
// is used): fn runs only on the node that owns the object, and fails with
// unavailable on any other.
func (rt *Runtime) RunInObject(ctx context.Context, ns string, id ID, fn func(ctx context.Context, state *State) error) error {
	if _, err := ParseID(string(id)); err != nil {
		return err
	}
	return rt.runTask(ctx, ns, id, fn)
}

// runTask queues fn as a section of object (ns, id) and waits for its result.
func (rt *Runtime) runTask(ctx context.Context, ns string, id ID, fn func(context.Context, *State) error) error {
	t := &task{fn: fn, done: make(chan error, 1)}
	rt.route(ns, id, envelope{task: t, at: rt.clock.Now()})
	select {
	case err := <-t.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitUntil runs fn in a goroutine of its own, after the current event if
// called from one, and keeps the object active (it is not evicted for
// being idle) until fn returns or Config.WaitUntilTimeout (30 s by
// default) passes, when fn's context is cancelled. fn must not use the
// object's storage directly: it runs beside the object's events. To read
// or write the object's state it calls BlockConcurrencyWhile, or calls
// objects (this one too) through a Client. Work still running when the
// object closes (its runtime stops, or another node takes it over) has its
// context cancelled, and its BlockConcurrencyWhile calls fail.
func (s *State) WaitUntil(fn func(ctx context.Context)) {
	o := s.o
	if o == nil {
		return
	}
	ctx, cancel := context.WithTimeout(o.bgCtx, o.rt.cfg.WaitUntilTimeout)
	o.waiting.Add(1)
	var once sync.Once
	end := func() {
		once.Do(func() {
			o.waiting.Add(-1)
			o.poked()
		})
	}
	stop := context.AfterFunc(ctx, end) // bounded: the object is free at the deadline
	go func() {
		defer cancel()
		defer end()
		defer stop()
		defer func() {
			if r := recover(); r != nil {
				o.rt.log.Error("WaitUntil work panicked", logNS, o.ns.name, logID, o.id, "panic", r, "stack", string(debug.Stack()))
			}
		}()
		fn(ctx)
	}()
}

// newHandler builds the object's handler, to be initialized before its
// next event.
func (o *object) newHandler() {
	o.handler = o.ns.factory(o.state)
	o.needInit = true
}

// ensureInit runs the handler's Init if it has not run yet.
func (o *object) ensureInit(ctx context.Context) error {
	if !o.needInit {
		return nil
	}
	in, ok := o.handler.(Initializer)
	if !ok {
		o.needInit = false
		return nil
	}
	err := o.section(ctx, "opendo-init-"+ulid.Make().String(), func(ctx context.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				o.rt.log.Error("Init panicked", logNS, o.ns.name, logID, o.id, "panic", r, "stack", string(debug.Stack()))
				err = fmt.Errorf("panicked: %v", r)
			}
		}()
		return in.Init(ctx)
	}, nil)
	if err != nil {
		return Errorf(http.StatusInternalServerError, CodeHandlerError, "init of %s/%s failed: %v", o.ns.name, o.id, err)
	}
	o.needInit = false
	return nil
}

// runTask runs a BlockConcurrencyWhile section asked from outside an
// event; its result is sent once its writes are durable.
func (o *object) runTask(ctx context.Context, t *task) {
	if err := o.ensureInit(ctx); err != nil {
		t.done <- err
		return
	}
	var answered atomic.Bool
	err := o.section(ctx, "opendo-section-"+ulid.Make().String(), func(ctx context.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				o.rt.log.Error("BlockConcurrencyWhile section panicked", logNS, o.ns.name, logID, o.id, "panic", r, "stack", string(debug.Stack()))
				err = Errorf(http.StatusInternalServerError, CodeHandlerPanic, "section panicked: %v", r)
			}
		}()
		return t.fn(ctx, o.state)
	}, func(err error) { answered.Store(true); t.done <- err })
	switch {
	case answered.Load():
	case err != nil:
		t.done <- err
	default:
		o.holdResult(t.done)
	}
}

// section runs fn as one transaction of the object: committed and queued
// for the journal if it returns nil; otherwise rolled back, with the
// handler rebuilt (the object resets to its last committed state). stuck,
// if set, answers at the deadline when fn does not return.
func (o *object) section(ctx context.Context, reqID string, fn func(context.Context) error, stuck func(error)) error {
	tc := storage.TxContext{Time: o.rt.clock.Now(), Seed: rand.Uint64()}
	if err := o.db.Begin(ctx, tc, false); err != nil {
		return Errorf(http.StatusInternalServerError, CodeInternal, "begin: %v", err)
	}
	o.restoreTo = nil
	o.sectionErr = nil
	dl, err := o.withDeadline(ctx, fn, stuck)
	if dl != deadlineMet {
		err = o.timeoutError()
	}
	if err == nil && o.sectionErr != nil {
		err = o.sectionErr
	}
	if err == nil && o.broken != nil {
		err = Errorf(http.StatusServiceUnavailable, CodeUnavailable, "journal append failed: %v", o.broken)
	}
	if err == nil && !o.owned() {
		err = Errorf(http.StatusServiceUnavailable, CodeUnavailable, "this node lost the ownership of %s/%s meanwhile; it was rolled back", o.ns.name, o.id)
	}
	if err == nil {
		return o.commit(ctx, reqID, tc)
	}
	o.restoreTo = nil
	if rerr := o.db.Rollback(context.WithoutCancel(ctx)); rerr != nil {
		o.rt.log.Error("rollback failed", logNS, o.ns.name, logID, o.id, logErr, rerr)
		o.broken = rerr
	}
	if dl == deadlineMet {
		o.newHandler() // withDeadline rebuilt it otherwise
	}
	return err
}

// holdResult sends nil on done once everything the section wrote or saw is
// durable, or the error that broke the object.
func (o *object) holdResult(done chan error) {
	g := o.gate()
	h := heldReply{ack: func() error { done <- nil; return nil }, fail: func(err error) { done <- err }, gate: g}
	if g <= o.durable && len(o.held) == 0 {
		o.release(h)
		return
	}
	o.held = append(o.held, h)
}

// poked wakes the object's loop (a WaitUntil ended: it may be idle now).
func (o *object) poked() {
	select {
	case o.wakeLoop <- struct{}{}:
	default:
	}
}

// waitUntilDefault is the default Config.WaitUntilTimeout.
const waitUntilDefault = 30 * time.Second

package actor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/alarms"
	"github.com/opendo/opendo/internal/rebuild"
	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
	"github.com/opendo/opendo/storage/sqlite"
)

// object is one active object. Only its own goroutine (run) touches its
// fields after creation, except mailbox (sent to by the runtime under its
// lock) and acks (sent to by its append goroutine).
type object struct {
	rt       *Runtime
	ns       *namespace
	id       ID
	key      string
	pk       pkey   // its partition
	claim    *claim // ownership of pk under which it is active; nil when solo
	subject  string // journal subject
	prev     chan struct{}
	done     chan struct{}
	mailbox  *mailbox
	hasSlot  atomic.Bool  // holds one of the runtime's MaxActive slots
	stuck    atomic.Bool  // a handler runs past its deadline
	idle     atomic.Bool  // nothing queued or in flight: may close when asked
	lastUsed atomic.Int64 // when it last handled something (Unix ns), for eviction
	// lastReq and prevReq are when it started its last two requests (Unix
	// ns): an object in steady use is not evicted under pressure (see
	// evictable).
	lastReq, prevReq atomic.Int64
	acks             chan appendResult
	local            chan alarms.Firing // the local alarm timer fired
	poke             chan struct{}      // a sync finished (Config.Sync)
	evict            chan struct{}      // the runtime is short of file descriptors
	handoff          chan struct{}      // its partition is handed over (or lost): close
	syncMu           sync.Mutex         // guards syncedG and syncErr, set by the syncer
	syncedG          uint64
	syncErr          error

	db      *sqlite.DB
	state   *State
	handler Handler

	needInit   bool               // the handler's Init has not run (Initializer)
	sectionErr error              // a BlockConcurrencyWhile section of the current event failed
	waiting    atomic.Int32       // WaitUntil work running: the object stays active
	bgCtx      context.Context    // context of WaitUntil work, cancelled when the object closes
	bgCancel   context.CancelFunc //
	wakeLoop   chan struct{}      // WaitUntil work ended

	lastSeq      uint64        // last durable journal sequence (the fence)
	lastTx       uint64        // Seed of the last transaction at lastSeq
	lastCommit   ulid.ULID     // CommitID of the entry at lastSeq, if lastCommitOK
	lastCommitOK bool          // lastCommit is known (it is read lazily after activation)
	marked       uint64        // the last sequence recorded in the file (MarkDurable)
	unmarked     int           // entries acknowledged since
	sinceSnap    int           // entries since the last snapshot
	snapDone     chan struct{} // closed when the snapshot in flight (upload, purge) is done; nil if none

	// Output gate. Transactions committed locally go into open; at most
	// one group (journal entry) is in flight. Replies wait in held until
	// the group they depend on is durable.
	open      []storage.Txn
	openSize  int
	inflight  bool
	sentGroup uint64 // last group sent
	acked     uint64 // last group acknowledged by the journal
	durable   uint64 // last group durable: acknowledged (and synced, with Config.Sync)
	held      []heldReply
	broken    error // set when an append failed; the object must reset

	// Bookmark restore: asked for by the current request (restoreTo), then
	// the group holding its journal entry (restoreGroup). Once that group
	// is durable the object closes; its next activation builds the
	// restored state.
	restoreTo    *restoreRequest
	restoreGroup uint64
	restoreAlarm alarmEffect // the restored state's alarm

	// Alarm: the durable alarm (Unix ms, 0 = none), the attempt the object
	// waits for, and the local timer that fires it on time.
	alarmMs int64
	retry   int
	timer   alarms.Timer
	timerAt time.Time
}

// heldReply is a reply (or an alarm firing's acknowledgement) waiting for
// group gate to be durable.
type heldReply struct {
	msg  *nats.Msg
	ack  func() error
	fail func(error) // a BlockConcurrencyWhile section's caller, if the journal breaks
	gate uint64
}

type appendResult struct {
	group  uint64
	seq    uint64
	commit ulid.ULID // the entry's CommitID
	lastTx uint64    // Seed of the entry's last transaction
	alarm  alarmEffect
	err    error
}

func newObject(rt *Runtime, ns *namespace, id ID, key string, prev chan struct{}) *object {
	bgCtx, bgCancel := context.WithCancel(rt.ctx)
	return &object{
		bgCtx:    bgCtx,
		bgCancel: bgCancel,
		wakeLoop: make(chan struct{}, 1),
		rt:       rt,
		ns:       ns,
		id:       id,
		key:      key,
		pk:       pkey{ns.name, rt.subj.Partition(ns.name, string(id))},
		subject:  rt.subj.Journal(ns.name, string(id)),
		prev:     prev,
		done:     make(chan struct{}),
		mailbox:  newMailbox(),
		acks:     make(chan appendResult, 1),
		local:    make(chan alarms.Firing, 1),
		poke:     make(chan struct{}, 1),
		evict:    make(chan struct{}, 1),
		handoff:  make(chan struct{}, 1),
	}
}

// serving reports whether o may start a request now: this node owns its
// partition under the claim o was activated with.
func (o *object) serving() bool { return o.rt.own == nil || o.claim.serving() }

// owned reports whether a request that started under o's claim may still
// finish and reply: the claim has not ended.
func (o *object) owned() bool { return o.rt.own == nil || o.claim.held() }

func (o *object) run() {
	defer o.rt.wg.Done()
	defer o.rt.exited(o)
	defer o.bgCancel() // WaitUntil work ends with the activation
	ctx := o.rt.ctx
	if o.prev != nil {
		select {
		case <-o.prev:
		case <-ctx.Done():
		}
	}
	if !o.rt.acquireSlot(ctx) {
		o.rt.release(o, true)
		o.overloadQueued(overloadActive)
		return
	}
	o.hasSlot.Store(true)
	if o.rt.own != nil {
		if o.claim = o.rt.own.serving(o.pk); o.claim == nil {
			// The partition moved between routing and now.
			o.rt.release(o, true)
			o.redeliverQueued()
			return
		}
	}
	if err := o.activate(ctx); err != nil {
		o.rt.log.Error("activation failed", logNS, o.ns.name, logID, o.id, logErr, err)
		o.rt.release(o, true)
		o.failQueued(Errorf(http.StatusServiceUnavailable, CodeUnavailable, "activate %s/%s: %v", o.ns.name, o.id, err))
		return
	}
	idle := time.NewTimer(o.rt.cfg.IdleTimeout)
	defer idle.Stop()
	for {
		wake := o.mailbox.wake
		if len(o.open) >= o.rt.cfg.MaxPendingTxns {
			wake = nil // backpressure: wait for the journal
		}
		select {
		case <-wake:
			env, ok := o.mailbox.pop()
			if !ok {
				break
			}
			o.rt.dequeued(env)
			if ctx.Err() != nil { // closing: select picked this at random
				o.rt.refuse(env, ErrClosed)
				o.shutdown()
				return
			}
			if env.firing == nil && o.rt.clock.Now().Sub(env.at) > o.rt.cfg.MaxQueueWait {
				o.rt.overloaded(env, overloadWait, o.ns.name, o.id)
				break
			}
			if !o.serving() {
				o.handOff(&env)
				return
			}
			if env.firing != nil {
				o.fire(ctx, *env.firing, env.ack)
			} else if env.task != nil {
				o.runTask(ctx, env.task)
			} else {
				o.prevReq.Store(o.lastReq.Swap(time.Now().UnixNano()))
				o.handle(ctx, env)
			}
		case f := <-o.local:
			if ctx.Err() != nil {
				o.shutdown()
				return
			}
			if !o.serving() {
				// The durable schedule fires it at the next owner.
				o.handOff(nil)
				return
			}
			o.fire(ctx, f, nil)
		case <-o.handoff:
			o.handOff(nil)
			return
		case r := <-o.acks:
			o.onAck(r)
		case <-o.poke:
			o.onSynced()
		case <-o.wakeLoop:
		case <-idle.C:
			if !o.inflight && len(o.open) == 0 && len(o.held) == 0 && o.waiting.Load() == 0 && !o.alarmSoon() && o.rt.release(o, false) {
				o.closeFiles(false)
				o.redeliverQueued()
				return
			}
		case <-o.evict:
			// Under pressure an object with an alarm closes too: its durable
			// schedule fires it. The request may be stale (asked before this
			// object was used again), so evictable is checked again.
			if o.evictable(time.Now().UnixNano()) && !o.inflight && len(o.open) == 0 && len(o.held) == 0 && o.waiting.Load() == 0 && o.rt.release(o, false) {
				o.closeFiles(false)
				o.redeliverQueued()
				return
			}
		case <-ctx.Done():
			o.shutdown()
			return
		}
		if o.broken != nil {
			o.reset()
			return
		}
		if o.restoreGroup != 0 {
			o.finishRestore()
			return
		}
		o.maybeSnapshot()
		o.idle.Store(!o.inflight && len(o.open) == 0 && len(o.held) == 0 && o.mailbox.len() == 0 && o.waiting.Load() == 0)
		o.lastUsed.Store(time.Now().UnixNano())
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(o.rt.cfg.IdleTimeout)
	}
}

// activate opens the object's file and catches up with its journal.
func (o *object) activate(ctx context.Context) error {
	path := o.rt.objectPath(o.ns.name, o.id)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, path, sqlite.Options{CacheKiB: o.rt.cfg.CacheKiB})
	if errors.Is(err, sqlite.ErrCorrupt) && ctx.Err() == nil {
		// A damaged file (torn by a power loss, or corrupted) is only a
		// cache: rebuild it from the journal. Any other failure (too many
		// open files, no memory, a full disk, permissions) leaves the file
		// alone: this activation fails and the next one tries again.
		o.rt.log.Warn("object file does not open; rebuilding it from the journal", logNS, o.ns.name, logID, o.id, logErr, err)
		if rerr := removeDB(path); rerr != nil {
			return errors.Join(err, rerr)
		}
		db, err = sqlite.Open(ctx, path, sqlite.Options{CacheKiB: o.rt.cfg.CacheKiB})
	}
	if err != nil {
		return err
	}
	last, err := o.rt.jr.LastSeq(ctx, o.subject)
	if err != nil {
		db.Close()
		return err
	}
	seq, dirty := db.Seq()
	if dirty && seq <= last {
		// The file holds transactions committed after its recorded
		// sequence: it is the state of the journal entry that ends with
		// its last transaction, if that entry is in the journal.
		at, ok, err := o.findTx(ctx, seq, last, db.LastTx())
		if err != nil {
			db.Close()
			return err
		}
		if ok {
			if err := db.MarkDurable(ctx, at, db.LastTx()); err != nil {
				db.Close()
				return err
			}
			seq, dirty = at, false
		}
	}
	if dirty || seq > last {
		// The file holds transactions that never became durable (a crash
		// or a failed append), or the journal was reset: rebuild from it.
		db.Close()
		if err := removeDB(path); err != nil {
			return err
		}
		if db, err = sqlite.Open(ctx, path, sqlite.Options{CacheKiB: o.rt.cfg.CacheKiB}); err != nil {
			return err
		}
		seq = 0
	}
	if c := o.claim; c != nil && c.fence {
		if _, done := c.fenced.Load(o.id); !done {
			// Taken over from an owner that did not hand it over: fence the
			// journal first, so that an append still on its way from that
			// owner fails instead of landing behind what this node serves.
			at, err := o.fence(last)
			if err != nil {
				db.Close()
				return err
			}
			last = at
			c.fenced.Store(o.id, struct{}{})
		}
	}
	if seq < last {
		src := o.source()
		var st rebuild.Stats
		// Without a usable file, or with a snapshot ahead of it (faster
		// than the journal, and required if the entries in between were
		// purged): build from the latest snapshot (or the whole history)
		// and the tail. Otherwise roll the file forward.
		ahead := seq == 0
		if !ahead {
			info, ok, err := o.rt.snaps.Latest(ctx, o.subject)
			if err != nil {
				db.Close()
				return fmt.Errorf("latest snapshot of %s: %w", o.subject, err)
			}
			ahead = ok && info.Seq > seq && info.Seq <= last
		}
		if ahead {
			db.Close()
			db, st, err = src.Build(ctx, path, last)
		} else {
			db, st, err = src.CatchUp(ctx, db, last)
		}
		if err != nil {
			return fmt.Errorf("rebuild %s: %w", o.subject, err)
		}
		o.sinceSnap += st.Entries
		if st.Restores > 0 && o.rt.cfg.SnapshotEvery >= 0 {
			// Snapshot the restored state soon: rebuilding it needs the
			// restore's target, whose history retention will purge.
			o.sinceSnap = o.rt.cfg.SnapshotEvery
		}
		for _, err := range st.Skips {
			o.rt.log.Warn("skipped a snapshot", logNS, o.ns.name, logID, o.id, logErr, err)
		}
	}
	o.db = db
	o.lastSeq = last
	o.marked = last
	o.lastTx = db.LastTx()
	o.state = &State{ns: o.ns.name, id: o.id, storage: objectStorage{Storage: db.Storage(), o: o}, o: o}
	o.newHandler()
	if ms, ok, err := db.AlarmTime(ctx); err != nil {
		return err
	} else if ok {
		o.alarmMs = ms
		o.armTimer(alarms.Firing{NS: o.ns.name, ID: string(o.id), Alarm: ms})
	}
	return nil
}

// fence appends an entry of one empty transaction after last, and returns
// its sequence.
func (o *object) fence(last uint64) (uint64, error) {
	now := o.rt.clock.Now()
	e := &journal.Entry{CommitID: ulid.Make(), Time: now, Txns: []storage.Txn{{
		RequestID: fenceRequestID,
		Context:   storage.TxContext{Time: now, Seed: rand.Uint64()},
	}}}
	seq, err := o.append(e, last)
	if err != nil {
		return 0, fmt.Errorf("fence %s after a takeover: %w", o.subject, err)
	}
	o.rt.count.fences.Add(1)
	return seq, nil
}

// markEvery bounds how far the sequence recorded in an object's file may
// lag behind its journal (how much activation reads after a crash).
const markEvery = 256

// markDurable records the last durable sequence in the file. It costs a
// SQLite write transaction, so it runs every markEvery entries and when
// the object is closed, not after every append.
func (o *object) markDurable() {
	if o.db == nil || o.marked == o.lastSeq || o.broken != nil {
		return
	}
	if err := o.db.MarkDurable(context.Background(), o.lastSeq, o.lastTx); err != nil {
		o.rt.log.Warn("recording the durable sequence failed", logNS, o.ns.name, logID, o.id, logErr, err)
		return
	}
	o.marked, o.unmarked = o.lastSeq, 0
}

// findTx looks for the journal entry after seq (up to last) whose last
// transaction has Seed tx.
func (o *object) findTx(ctx context.Context, seq, last, tx uint64) (uint64, bool, error) {
	var at uint64
	err := o.rt.jr.Read(ctx, o.subject, seq, last, func(s uint64, e *journal.Entry) error {
		if n := len(e.Txns); n > 0 && e.Txns[n-1].Context.Seed == tx {
			at = s
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("scan %s: %w", o.subject, err)
	}
	return at, at != 0, nil
}

func (o *object) handle(ctx context.Context, env envelope) {
	m := env.msg
	if env.name != "" && o.state.name == "" {
		o.state.name = env.name
	}
	req, err := decodeRequest(m)
	if err != nil {
		o.reply(m, encodeError(m.Reply, err))
		return
	}
	if req.ID == "" {
		req.ID = ulid.Make().String()
	}
	if err := o.ensureInit(ctx); err != nil {
		o.reply(m, encodeError(m.Reply, err))
		return
	}
	tc := storage.TxContext{Time: o.rt.clock.Now(), Seed: rand.Uint64()}
	if err := o.db.Begin(ctx, tc, false); err != nil {
		o.reply(m, encodeError(m.Reply, Errorf(http.StatusInternalServerError, CodeInternal, "begin: %v", err)))
		return
	}
	o.restoreTo = nil
	o.sectionErr = nil
	var resp *Response
	dl, herr := o.withDeadline(ctx, func(ctx context.Context) (err error) {
		resp, err = o.invoke(ctx, req)
		return err
	}, func(err error) { o.rt.replyError(m, err) })
	if dl != deadlineMet {
		o.restoreTo = nil
		herr = o.timeoutError()
	}
	if herr == nil && o.sectionErr != nil {
		herr = Errorf(http.StatusInternalServerError, CodeHandlerError, "BlockConcurrencyWhile failed: %v", o.sectionErr)
	}
	if herr == nil && o.broken != nil {
		herr = Errorf(http.StatusServiceUnavailable, CodeUnavailable, "journal append failed: %v", o.broken)
	}
	if herr == nil && !o.owned() {
		// Another node may own the object by now: what the handler read
		// may be stale, so nothing of it is released.
		herr = Errorf(http.StatusServiceUnavailable, CodeUnavailable, "this node lost the ownership of %s/%s while the request ran; it was rolled back", o.ns.name, o.id)
	}
	if herr == nil {
		herr = o.commit(ctx, req.ID, tc)
	} else if err := o.db.Rollback(context.WithoutCancel(ctx)); err != nil {
		o.rt.log.Error("rollback failed", logNS, o.ns.name, logID, o.id, logErr, err)
		o.broken = err
	}
	if o.sectionErr != nil && dl == deadlineMet {
		o.newHandler() // a failed section resets the object
	}
	if dl == deadlineAnswered {
		return // the caller already has its timeout error
	}
	if herr != nil {
		o.reply(m, encodeError(m.Reply, herr))
		return
	}
	if resp == nil {
		resp = &Response{}
	}
	o.reply(m, encodeResponse(m.Reply, resp))
}

// deadlineOutcome tells how a handler run went against its deadline.
type deadlineOutcome int

const (
	deadlineMet      deadlineOutcome = iota // it returned in time
	deadlineMissed                          // it returned after its deadline
	deadlineAnswered                        // it was still running at the deadline: stuck() ran
)

// withDeadline runs fn with a context that ends after Config.HandlerTimeout.
// If fn is still running then, stuck is called at once from another
// goroutine with the timeout error (to answer the caller), and the object
// refuses new requests until fn returns. Go cannot stop a goroutine: a
// handler that ignores its context keeps its object until it returns.
// Any outcome but deadlineMet means the run's writes must be rolled back
// and the handler rebuilt.
func (o *object) withDeadline(ctx context.Context, fn func(context.Context) error, stuck func(error)) (deadlineOutcome, error) {
	hctx, cancel := context.WithTimeout(context.WithValue(ctx, eventKey{}, o), o.rt.cfg.HandlerTimeout)
	defer cancel()
	var state atomic.Int32 // 0 running, 1 returned, 2 claimed by the watchdog
	stop := context.AfterFunc(hctx, func() {
		if hctx.Err() != context.DeadlineExceeded || !state.CompareAndSwap(0, 2) {
			return
		}
		o.stuck.Store(true)
		o.rt.count.stuck.Add(1)
		o.rt.log.Warn("handler still running past its deadline; the object refuses requests until it returns", logNS, o.ns.name, logID, o.id, "timeout", o.rt.cfg.HandlerTimeout)
		if stuck != nil {
			stuck(o.timeoutError())
		}
	})
	err := fn(hctx)
	stop()
	if !state.CompareAndSwap(0, 1) {
		o.stuck.Store(false)
		o.rt.count.stuck.Add(-1)
		o.rt.count.handlerTimeouts.Add(1)
		o.newHandler()
		return deadlineAnswered, err
	}
	if hctx.Err() == context.DeadlineExceeded {
		o.rt.count.handlerTimeouts.Add(1)
		o.newHandler()
		return deadlineMissed, err
	}
	return deadlineMet, err
}

func (o *object) timeoutError() *Error {
	return Errorf(http.StatusGatewayTimeout, CodeTimeout, "handler of %s/%s ran past its deadline (%v); its writes were rolled back", o.ns.name, o.id, o.rt.cfg.HandlerTimeout)
}

// invoke runs the handler, turning a panic into an error and rebuilding
// the handler (its in-memory state may be broken).
func (o *object) invoke(ctx context.Context, req *Request) (resp *Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			o.rt.log.Error("handler panicked", logNS, o.ns.name, logID, o.id, logReqID, req.ID, "panic", r, "stack", string(debug.Stack()))
			err = Errorf(http.StatusInternalServerError, CodeHandlerPanic, "handler panicked: %v", r)
			o.newHandler()
		}
	}()
	return o.handler.Handle(ctx, req)
}

// commit commits the request's transaction locally and queues it for the
// journal.
func (o *object) commit(ctx context.Context, reqID string, tc storage.TxContext) error {
	if o.restoreTo != nil {
		return o.commitRestore(ctx, reqID, tc)
	}
	size := journal.TxnSize(&storage.Txn{RequestID: reqID, Mutations: o.db.Pending()})
	if size > o.rt.maxSize {
		if err := o.db.Rollback(context.WithoutCancel(ctx)); err != nil {
			o.broken = err
		}
		return fmt.Errorf("%w: %d bytes, the journal takes at most %d", storage.ErrTransactionTooLarge, size, o.rt.maxSize)
	}
	// A commit is not cancelled by the runtime closing: the handler is done.
	muts, err := o.db.Commit(context.WithoutCancel(ctx))
	if err != nil {
		o.broken = err
		return Errorf(http.StatusInternalServerError, CodeInternal, "commit: %v", err)
	}
	if len(muts) == 0 {
		return nil
	}
	if len(o.open) > 0 && o.openSize+size > o.rt.maxSize {
		// The open group is full: it must go out before this one joins.
		o.waitFlush()
		if o.broken != nil {
			return Errorf(http.StatusServiceUnavailable, CodeUnavailable, "journal append failed: %v", o.broken)
		}
	}
	o.open = append(o.open, storage.Txn{RequestID: reqID, Context: tc, Mutations: muts})
	o.openSize += size
	o.flush()
	return nil
}

// waitFlush waits until the open group has been sent.
func (o *object) waitFlush() {
	for len(o.open) > 0 && o.broken == nil {
		if !o.inflight {
			o.flush()
			continue
		}
		o.await()
	}
}

// flush sends the open group as one journal entry unless one is in flight.
func (o *object) flush() {
	if o.inflight || len(o.open) == 0 || o.broken != nil {
		return
	}
	o.sentGroup++
	e := &journal.Entry{CommitID: ulid.Make(), Time: o.rt.clock.Now(), Txns: o.open}
	o.open, o.openSize, o.inflight = nil, 0, true
	group, expected := o.sentGroup, o.lastSeq
	lastTx := e.Txns[len(e.Txns)-1].Context.Seed
	effect := alarmEffectOf(e.Txns)
	if _, ok := e.Restore(); ok {
		effect = o.restoreAlarm
	}
	o.rt.wg.Add(1)
	go func() {
		defer o.rt.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), o.rt.cfg.AppendTimeout)
		defer cancel()
		// A new alarm is scheduled before the journal append: once the
		// append is acknowledged the schedule is durable too. A schedule
		// whose transaction never commits fires stale and is dropped.
		if effect.changed && effect.set {
			f := alarms.Firing{NS: o.ns.name, ID: string(o.id), Alarm: effect.ms}
			if err := o.rt.alarms.Schedule(ctx, time.UnixMilli(effect.ms), f); err != nil {
				o.acks <- appendResult{group: group, err: fmt.Errorf("schedule alarm: %w", err)}
				return
			}
		}
		seq, err := o.append(e, expected)
		if err == nil && effect.changed && !effect.set {
			// Best effort: a firing that survives is stale and dropped.
			if cerr := o.rt.alarms.Cancel(ctx, o.ns.name, string(o.id)); cerr != nil {
				o.rt.log.Warn("cancel alarm schedule failed", logNS, o.ns.name, logID, o.id, logErr, cerr)
			}
		}
		o.acks <- appendResult{group: group, seq: seq, commit: e.CommitID, lastTx: lastTx, alarm: effect, err: err}
	}()
}

// append appends e, retrying after ambiguous failures (timeouts, a lost
// connection): journal.Append is idempotent per entry, so a retry of an
// append that did reach the stream returns its sequence.
func (o *object) append(e *journal.Entry, expected uint64) (uint64, error) {
	const attempts = 3
	var err error
	for i := 0; i < attempts; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), o.rt.cfg.AppendTimeout/attempts)
		var seq uint64
		seq, err = o.rt.jr.Append(ctx, o.subject, expected, e)
		cancel()
		if err == nil || errors.Is(err, journal.ErrConflict) || errors.Is(err, journal.ErrTooLarge) ||
			errors.Is(err, journal.ErrInvalidEntry) {
			return seq, err
		}
		if o.rt.ctx.Err() != nil && i > 0 {
			break // shutting down: do not linger
		}
	}
	return 0, err
}

// gate returns the group a reply produced now must wait for.
func (o *object) gate() uint64 {
	if len(o.open) > 0 {
		return o.sentGroup + 1
	}
	return o.sentGroup
}

// reply sends m once everything it may have observed is durable.
func (o *object) reply(req *nats.Msg, m *nats.Msg) {
	if req.Reply == "" {
		return
	}
	g := o.gate()
	if g <= o.durable && len(o.held) == 0 {
		o.send(m)
		return
	}
	o.held = append(o.held, heldReply{msg: m, gate: g})
}

// holdAck acknowledges an alarm firing once everything it may have
// observed or written is durable.
func (o *object) holdAck(ack func() error) {
	if ack == nil {
		return
	}
	g := o.gate()
	if g <= o.durable && len(o.held) == 0 {
		o.release(heldReply{ack: ack})
		return
	}
	o.held = append(o.held, heldReply{ack: ack, gate: g})
}

func (o *object) release(h heldReply) {
	if h.msg != nil {
		o.send(h.msg)
		return
	}
	if err := h.ack(); err != nil {
		o.rt.log.Warn("alarm ack failed", logNS, o.ns.name, logID, o.id, logErr, err)
	}
}

func (o *object) send(m *nats.Msg) {
	if err := o.rt.replyNC.PublishMsg(m); err != nil {
		o.rt.log.Warn("reply failed", logNS, o.ns.name, logID, o.id, logErr, err)
	}
}

func (o *object) onAck(r appendResult) {
	o.inflight = false
	if r.err != nil {
		o.broken = r.err
		o.failHeld()
		o.rt.log.Warn("journal append failed; resetting object", logNS, o.ns.name, logID, o.id, logErr, r.err)
		return
	}
	o.lastSeq = r.seq
	o.lastTx = r.lastTx
	o.lastCommit, o.lastCommitOK = r.commit, true
	o.acked = r.group
	if r.alarm.changed {
		o.retry = 0
		o.stopTimer()
		o.alarmMs = 0
		if r.alarm.set {
			o.alarmMs = r.alarm.ms
			o.armTimer(alarms.Firing{NS: o.ns.name, ID: string(o.id), Alarm: r.alarm.ms})
		}
	}
	o.sinceSnap++
	if o.unmarked++; o.unmarked >= markEvery {
		o.markDurable()
	}
	if o.rt.syncer != nil {
		o.rt.syncer.request(o, r.group)
	} else {
		o.setDurable(r.group)
	}
	o.flush()
}

// setDurable releases the replies and acknowledgements waiting for group
// g or an earlier one.
func (o *object) setDurable(g uint64) {
	if g <= o.durable {
		return
	}
	o.durable = g
	n := 0
	for _, h := range o.held {
		if h.gate > o.durable {
			break
		}
		o.release(h)
		n++
	}
	o.held = o.held[n:]
}

// synced is called by the syncer (on its goroutine) when a sync covering
// group g is done.
func (o *object) synced(g uint64, err error) {
	o.syncMu.Lock()
	if err != nil && o.syncErr == nil {
		o.syncErr = err
	}
	if g > o.syncedG {
		o.syncedG = g
	}
	o.syncMu.Unlock()
	select {
	case o.poke <- struct{}{}:
	default:
	}
}

// onSynced takes the syncer's news on the object's goroutine.
func (o *object) onSynced() {
	o.syncMu.Lock()
	g, err := o.syncedG, o.syncErr
	o.syncMu.Unlock()
	if err != nil {
		o.broken = err
		o.failHeld()
		return
	}
	o.setDurable(g)
}

// await blocks until an append is acknowledged or a sync is done, and
// takes it into account.
func (o *object) await() {
	select {
	case r := <-o.acks:
		o.onAck(r)
	case <-o.poke:
		o.onSynced()
	}
}

// failHeld answers every held reply with the error that broke the object:
// none of them may reveal state that is not durable.
func (o *object) failHeld() {
	code, status := CodeUnavailable, http.StatusServiceUnavailable
	if errors.Is(o.broken, journal.ErrConflict) {
		code, status = CodeConflict, http.StatusConflict
	}
	msg := fmt.Sprintf("journal append failed, the object was reset to its last durable state: %v", o.broken)
	for _, h := range o.held {
		if h.fail != nil {
			h.fail(Errorf(status, code, "%s", msg))
			continue
		}
		if h.msg == nil {
			continue // an alarm firing stays unacknowledged: delivered again
		}
		h.msg.Header = nats.Header{HeaderStatus: {strconv.Itoa(status)}, HeaderError: {code}}
		h.msg.Data = []byte(msg)
		o.send(h.msg)
	}
	o.held = nil
}

// reset drops the object after a failed append: the file may hold
// transactions that are not in the journal, so it is deleted and the next
// activation rebuilds it from the journal. Queued requests go to that new
// activation.
func (o *object) reset() {
	o.rt.release(o, true)
	for o.inflight {
		<-o.acks
		o.inflight = false
	}
	o.failHeld()
	o.closeFiles(true)
	o.redeliverQueued()
}

// shutdown finishes the journal work and answers queued requests.
func (o *object) shutdown() {
	o.finish()
	o.failQueued(ErrClosed)
}

// finish gives up o's slot, completes its journal appends (releasing
// their replies, or failing them if the journal broke) and closes its
// files.
func (o *object) finish() {
	o.rt.release(o, true)
	for (o.inflight || len(o.open) > 0 || o.durable < o.acked) && o.broken == nil {
		if !o.inflight && len(o.open) > 0 {
			o.flush()
			continue
		}
		o.await()
	}
	for o.inflight {
		<-o.acks
		o.inflight = false
	}
	if o.broken != nil {
		o.failHeld()
	}
	o.closeFiles(o.broken != nil)
}

func (o *object) closeFiles(remove bool) {
	o.stopTimer()
	if o.db == nil {
		return
	}
	if !remove && !o.inflight && len(o.open) == 0 {
		o.markDurable()
	}
	path := o.db.Path()
	if err := o.db.Close(); err != nil {
		o.rt.log.Warn("close failed", logNS, o.ns.name, logID, o.id, logErr, err)
	}
	o.db = nil
	if remove {
		if err := removeDB(path); err != nil {
			o.rt.log.Error("remove failed", logNS, o.ns.name, logID, o.id, logErr, err)
		}
	}
}

// redeliverQueued hands requests still in the mailbox on: to a new
// activation, or to the object's new owner.
func (o *object) redeliverQueued() {
	for env, ok := o.mailbox.pop(); ok; env, ok = o.mailbox.pop() {
		o.rt.dequeued(env)
		o.rt.route(o.ns.name, o.id, env)
	}
}

// handOff closes o because its partition is handed over or lost: it
// finishes its journal appends (their replies go out), closes its files,
// and hands first (if set) and its queued requests on, to be routed again.
func (o *object) handOff(first *envelope) {
	o.finish()
	if first != nil {
		o.rt.route(o.ns.name, o.id, *first)
	}
	o.redeliverQueued()
}

func (o *object) failQueued(err error) {
	for env, ok := o.mailbox.pop(); ok; env, ok = o.mailbox.pop() {
		o.rt.dequeued(env)
		o.rt.refuse(env, err)
	}
}

// overloadQueued refuses every queued request for reason r.
func (o *object) overloadQueued(r overloadReason) {
	for env, ok := o.mailbox.pop(); ok; env, ok = o.mailbox.pop() {
		o.rt.dequeued(env)
		o.rt.overloaded(env, r, o.ns.name, o.id)
	}
}

func removeDB(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// objectStorage is the Storage handed to handlers: the object's database,
// with Sync waiting for the journal.
type objectStorage struct {
	storage.Storage
	o *object
}

// Sync waits until every transaction committed before this request is
// durable. The current request's own writes become durable when it returns.
func (s objectStorage) Sync(ctx context.Context) error {
	o := s.o
	target := o.gate()
	for o.durable < target && o.broken == nil {
		if !o.inflight && len(o.open) > 0 {
			o.flush()
			continue
		}
		select {
		case r := <-o.acks:
			o.onAck(r)
		case <-o.poke:
			o.onSynced()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if o.broken != nil {
		return Errorf(http.StatusServiceUnavailable, CodeUnavailable, "journal append failed: %v", o.broken)
	}
	return nil
}

// evictable reports whether the evictor may close o for a waiting
// activation at now (Unix ns): o has been idle for evictMinIdle, and is not
// in steady use (its last two requests less than evictHotGap apart, the
// last less than evictHotGap ago). Without this, a burst of activations of
// new objects would close every idle object, including one called in a
// loop, which would then queue behind the burst for a slot of its own.
func (o *object) evictable(now int64) bool {
	if now-o.lastUsed.Load() < int64(evictMinIdle) {
		return false
	}
	last, prev := o.lastReq.Load(), o.prevReq.Load()
	return prev == 0 || last-prev >= int64(evictHotGap) || now-last >= int64(evictHotGap)
}

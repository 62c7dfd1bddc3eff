package actor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/alarms"
	"github.com/opendo/opendo/bus"
	"github.com/opendo/opendo/journal"
)

// Log attribute keys.
const (
	logNS    = "ns"
	logID    = "id"
	logErr   = "err"
	logReqID = "request_id"
)

// DefaultLeaseTTL is the default Config.LeaseTTL.
const DefaultLeaseTTL = 3 * time.Second

// Config configures a Runtime. The zero value of every field but Conn and
// DataDir is a sensible default.
type Config struct {
	// Conn is the NATS connection (required). The runtime does not close it.
	Conn *nats.Conn
	// DataDir holds the objects' SQLite files, one directory per namespace,
	// and scratch files in DataDir/.tmp, emptied by Start (required). One
	// runtime per directory.
	DataDir string
	// Prefix is the first token of every subject; default "opendo".
	Prefix string
	// Partitions is the number of partitions; default 64. It must be the
	// same for every node and client of a deployment.
	Partitions int
	// JournalStream names the journal stream; default "OPENDO_JOURNAL".
	JournalStream string
	// JournalStreams spreads the journal of a new deployment over this many
	// streams (partition p in stream p mod JournalStreams: JournalStream,
	// then JournalStream_1, _2, …), so that on a NATS cluster their
	// leaders, and the writes, spread over the servers (docs/cluster.md).
	// 0 (the default) takes the journal's recorded layout, or 1 stream for
	// a new journal. A journal keeps the layout it was created with: a
	// number that differs from it fails Start.
	JournalStreams int
	// Replicas of the journal stream; default 1 (3 on a production cluster).
	Replicas int
	// IdleTimeout evicts an object that had no request for this long;
	// default 2 minutes. Its next request reactivates it.
	IdleTimeout time.Duration
	// MailboxSize bounds each object's queue of waiting requests; a request
	// finding it full gets "overloaded: too many requests queued". Default
	// 1024.
	MailboxSize int
	// MaxQueuedBytes bounds the bytes (subject, reply, headers, body) of
	// the requests waiting at one object; beyond it a request gets
	// "overloaded: too much data queued". Default 64 MiB.
	MaxQueuedBytes int64
	// MaxQueuedBytesTotal bounds the bytes of the requests waiting in all
	// of the runtime's mailboxes together. Default 256 MiB (see
	// docs/operations.md for the whole memory bound).
	MaxQueuedBytesTotal int64
	// MaxQueueWait is how long a request may wait in a mailbox; one that
	// waited longer is not run and gets "overloaded: queued too long".
	// Default 30 s.
	MaxQueueWait time.Duration
	// HandlerTimeout bounds one run of a handler (a request or an alarm);
	// the handler's context ends then. A request whose handler runs past it
	// gets "timeout" at once, its writes are rolled back and the handler is
	// rebuilt, as after a panic. Default 30 s.
	HandlerTimeout time.Duration
	// ReplyPrefixes are the subjects the runtime publishes replies under;
	// a request whose reply subject lies elsewhere (or that has none) is
	// not run, and nothing is published for it. Default
	// [DefaultReplyPrefix] ("_INBOX."); add the prefix of clients that use
	// a custom inbox prefix. No prefix may overlap the runtime's own
	// subjects or "$JS.", "$KV.", "$O.", "$SYS.".
	ReplyPrefixes []string
	// ReplyConn, when set, publishes the replies instead of Conn. Give it a
	// NATS user that may publish only to inboxes: then no reply can reach
	// JetStream or the runtime's own subjects even if the reply check had
	// a bug (docs/security.md). The runtime does not close it.
	ReplyConn *nats.Conn
	// MaxPendingTxns bounds the transactions of one object that are
	// committed locally but not yet durable; the object stops taking
	// requests until its journal catches up. Default 1024.
	MaxPendingTxns int
	// WaitUntilTimeout bounds the work started by State.WaitUntil: past it
	// the work's context is cancelled and the object may be evicted again;
	// default 30 s.
	WaitUntilTimeout time.Duration
	// AppendTimeout bounds one journal append; default 10 s.
	AppendTimeout time.Duration
	// CacheKiB is SQLite's page cache per open object; default 256.
	CacheKiB int
	// SnapshotEvery takes a snapshot of an object (a copy of its file in
	// the JetStream Object Store OPENDO_SNAPSHOTS, tagged with its journal
	// sequence) after this many journal entries since the last one, when
	// the object is idle between requests. Activation without a usable file
	// is then the latest snapshot plus the journal tail. Default 1000;
	// negative: never.
	SnapshotEvery int
	// Retention is the journal history kept behind an object's oldest
	// snapshot; older entries are purged after each snapshot. Default
	// journal.DefaultKeepEntries entries and journal.DefaultKeepFor; set
	// KeepEntries to math.MaxUint64 to keep everything.
	Retention *journal.Retention
	// MaxActive caps the objects holding their files open. An activation
	// beyond it asks idle objects to close early (those with work in
	// flight decline; an alarm of a closed object still fires, through its
	// durable schedule) and waits up to ActivationWait for a slot, then its
	// requests get "overloaded: too many objects active". An open object
	// holds 3 file descriptors; the default keeps them well within the
	// process's descriptor limit, leaving 1024 for NATS (an embedded
	// server's connections and stream files) and the rest of the process:
	// (RLIMIT_NOFILE - 1024) / 4, at least 64 and at most 10,000.
	MaxActive int
	// ActivationWait bounds how long an activation waits for a slot under
	// MaxActive; default 10 s.
	ActivationWait time.Duration
	// MaxActivating bounds the objects waiting for a slot; a request that
	// would make one more gets "overloaded: too many objects active" at
	// once. Default 4096.
	MaxActivating int
	// Logger receives the runtime's logs; default slog.Default().
	Logger *slog.Logger
	// Clock tells time and runs alarm timers; default the real clock.
	// Tests inject a fake (internal/clocktest).
	Clock alarms.Clock
	// AlarmStream names the alarm stream; default "OPENDO_ALARMS".
	AlarmStream string
	// Sync, when set, is called after journal appends are acknowledged
	// and before the replies that depend on them are released; one call
	// serves every append acknowledged before it started (group commit).
	// `opendo dev -sync always` sets it to bus.Embedded.Sync, which fsyncs
	// the embedded server's store: every reply then waits for an fsync,
	// and concurrent writes share it.
	Sync func() error
	// AlarmAckWait is how long a delivered alarm firing may stay
	// unacknowledged before JetStream delivers it again; default 60 s.
	AlarmAckWait time.Duration
	// NodeID names this runtime among the nodes of a deployment (a subject
	// token). Default: the ID stored in DataDir/.node-id, made on first
	// start, so that a restarted node gets its partitions (and their files)
	// back. Two running nodes must not share one.
	NodeID string
	// LeaseTTL is how long a node that stopped renewing its presence (it
	// died, paused, or lost NATS) keeps its partitions; then the other
	// nodes take them over. Whole seconds, default 3 s (docs/cluster.md).
	LeaseTTL time.Duration
	// LeaseBucket names the KV bucket of partition ownership; default
	// "OPENDO_OWNERS".
	LeaseBucket string
}

type namespace struct {
	name    string
	factory Factory
}

// Runtime hosts objects: it receives their requests from NATS, runs each
// object on its own goroutine, and journals their writes.
type Runtime struct {
	cfg        Config
	subj       bus.Subjects
	log        *slog.Logger
	nc         *nats.Conn
	replyNC    *nats.Conn // publishes replies (Config.ReplyConn, else nc)
	js         jetstream.JetStream
	jr         *journal.Journal
	snaps      *journal.Snapshots
	alarms     *alarms.Alarms
	clock      alarms.Clock
	stopAlarms func()
	own        *owner // partition ownership; nil when solo
	ownSub     *nats.Subscription
	ownReady   chan struct{}      // closed once own is set (or Start gave up on it)
	bounceSub  *nats.Subscription // "no responders" of forwards (onBounce)
	fwd        forwards
	solo       bool // tests: serve every partition without ownership
	parked     parking
	syncer     *syncer
	maxSize    int // largest journal entry

	slots     chan struct{} // one token per active object (Config.MaxActive)
	evictWake chan struct{} // an activation waits for a slot
	evictBuf  []*object     // askToEvict's scratch, under mu
	count     counters
	badReply  limitedLog // requests refused for their reply subject
	overload  limitedLog // requests refused as overloaded

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		namespaces map[string]*namespace
		objects    map[string]*object
		exiting    map[string]chan struct{} // objects shutting down, by key
		subs       []*nats.Subscription
		pending    int // objects created that have no slot yet
		started    bool
		closing    bool // Close was called
		closed     bool // no request is queued any more
	}
}

// New validates cfg and returns a runtime. Register namespaces, then Start.
func New(cfg Config) (*Runtime, error) {
	if cfg.Conn == nil {
		return nil, errors.New("actor: Config.Conn is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("actor: Config.DataDir is required")
	}
	subj, err := bus.NewSubjects(cfg.Prefix, cfg.Partitions)
	if err != nil {
		return nil, err
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.MailboxSize <= 0 {
		cfg.MailboxSize = 1024
	}
	if cfg.MaxPendingTxns <= 0 {
		cfg.MaxPendingTxns = 1024
	}
	if cfg.MaxActive <= 0 {
		cfg.MaxActive = defaultMaxActive()
	}
	if cfg.MaxQueuedBytes <= 0 {
		cfg.MaxQueuedBytes = 64 << 20
	}
	if cfg.MaxQueuedBytesTotal <= 0 {
		cfg.MaxQueuedBytesTotal = 256 << 20
	}
	if cfg.MaxQueueWait <= 0 {
		cfg.MaxQueueWait = 30 * time.Second
	}
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = 30 * time.Second
	}
	if cfg.ActivationWait <= 0 {
		cfg.ActivationWait = 10 * time.Second
	}
	if cfg.MaxActivating <= 0 {
		cfg.MaxActivating = 4096
	}
	if cfg.ReplyPrefixes == nil {
		cfg.ReplyPrefixes = []string{DefaultReplyPrefix}
	}
	cfg.ReplyPrefixes = append([]string(nil), cfg.ReplyPrefixes...)
	if err := checkReplyPrefixes(cfg.ReplyPrefixes, subj.Prefix); err != nil {
		return nil, err
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 1000
	}
	if cfg.Retention == nil {
		cfg.Retention = &journal.Retention{KeepEntries: journal.DefaultKeepEntries, KeepFor: journal.DefaultKeepFor}
	}
	if cfg.WaitUntilTimeout <= 0 {
		cfg.WaitUntilTimeout = waitUntilDefault
	}
	if cfg.AppendTimeout <= 0 {
		cfg.AppendTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = alarms.RealClock()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	// The server keeps message TTLs in whole seconds.
	cfg.LeaseTTL = max(time.Second, cfg.LeaseTTL.Round(time.Second))
	if cfg.LeaseBucket == "" {
		cfg.LeaseBucket = "OPENDO_OWNERS"
	}
	if cfg.NodeID != "" {
		if err := bus.ValidToken(cfg.NodeID); err != nil {
			return nil, fmt.Errorf("actor: node ID: %w", err)
		}
	}
	rt := &Runtime{cfg: cfg, subj: subj, log: cfg.Logger, nc: cfg.Conn, replyNC: cfg.Conn, clock: cfg.Clock}
	if cfg.ReplyConn != nil {
		rt.replyNC = cfg.ReplyConn
	}
	rt.slots = make(chan struct{}, cfg.MaxActive)
	rt.evictWake = make(chan struct{}, 1)
	rt.badReply.every = time.Second
	rt.overload.every = time.Second
	rt.mu.namespaces = map[string]*namespace{}
	rt.mu.objects = map[string]*object{}
	rt.mu.exiting = map[string]chan struct{}{}
	return rt, nil
}

// Register serves namespace ns with objects built by f. The namespace must
// be a safe subject token ([A-Za-z0-9_-], 1 to 64 characters).
func (rt *Runtime) Register(ns string, f Factory) error {
	if err := bus.ValidToken(ns); err != nil {
		return fmt.Errorf("actor: namespace: %w", err)
	}
	if f == nil {
		return errors.New("actor: nil factory")
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.mu.started {
		return fmt.Errorf("actor: namespace %q registered after Start", ns)
	}
	if _, ok := rt.mu.namespaces[ns]; ok {
		return fmt.Errorf("actor: namespace %q registered twice", ns)
	}
	rt.mu.namespaces[ns] = &namespace{name: ns, factory: f}
	return nil
}

// Subjects returns the subject naming of this runtime.
func (rt *Runtime) Subjects() bus.Subjects { return rt.subj }

// Start creates the journal stream if needed and subscribes to requests.
func (rt *Runtime) Start(ctx context.Context) error {
	rt.mu.Lock()
	if rt.mu.started {
		rt.mu.Unlock()
		return errors.New("actor: runtime started twice")
	}
	rt.mu.started = true
	rt.mu.Unlock()

	if err := os.MkdirAll(rt.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("actor: data dir: %w", err)
	}
	// Scratch files (snapshot copies, restored states being built) of an
	// earlier run that crashed.
	if err := os.RemoveAll(rt.tmpDir()); err != nil {
		return fmt.Errorf("actor: data dir: %w", err)
	}
	if err := os.Mkdir(rt.tmpDir(), 0o755); err != nil {
		return fmt.Errorf("actor: data dir: %w", err)
	}
	js, err := jetstream.New(rt.nc)
	if err != nil {
		return fmt.Errorf("actor: jetstream: %w", err)
	}
	rt.js = js
	// A cluster that just started (or lost its meta leader) answers
	// "temporarily unavailable" or not at all for a while: retry.
	var jr *journal.Journal
	if err := retryJetStream(ctx, rt.log, "journal", func(ctx context.Context) (err error) {
		jr, err = journal.Open(ctx, js, journal.Config{Prefix: rt.subj.Prefix, Stream: rt.cfg.JournalStream, Replicas: rt.cfg.Replicas,
			Streams: rt.cfg.JournalStreams, Partitions: rt.subj.Partitions})
		return err
	}); err != nil {
		return fmt.Errorf("actor: journal: %w", err)
	}
	rt.jr = jr
	var snaps *journal.Snapshots
	if err := retryJetStream(ctx, rt.log, "snapshots", func(ctx context.Context) (err error) {
		snaps, err = journal.OpenSnapshots(ctx, js, journal.SnapshotConfig{Replicas: rt.cfg.Replicas})
		return err
	}); err != nil {
		return fmt.Errorf("actor: snapshots: %w", err)
	}
	rt.snaps = snaps
	var al *alarms.Alarms
	if err := retryJetStream(ctx, rt.log, "alarms", func(ctx context.Context) (err error) {
		al, err = alarms.Open(ctx, js, alarms.Config{Subjects: rt.subj, Stream: rt.cfg.AlarmStream, Replicas: rt.cfg.Replicas, AckWait: rt.cfg.AlarmAckWait, Logger: rt.log})
		return err
	}); err != nil {
		return fmt.Errorf("actor: alarms: %w", err)
	}
	rt.alarms = al
	rt.maxSize = jr.MaxEntrySize() - 64
	rt.ctx, rt.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if rt.cfg.Sync != nil {
		rt.syncer = newSyncer(rt.cfg.Sync)
	}
	rt.wg.Add(1)
	go rt.evictor()

	// Only the namespaces registered here: runtimes hosting different
	// namespaces share one NATS without receiving each other's requests.
	type subscription struct {
		subject string
		cb      nats.MsgHandler
	}
	names := rt.namespaceNames()
	if len(names) > 0 && !rt.solo {
		// Join the deployment's nodes and claim this node's share of the
		// partitions before taking requests.
		// Requests forwarded to this node may come as soon as others see
		// its presence: subscribe first.
		node, err := nodeID(rt.cfg)
		if err != nil {
			return err
		}
		// Forwards may arrive before the owner is set up (others see this
		// node's presence as soon as it joins): onOwn waits for ownReady.
		rt.ownReady = make(chan struct{})
		ready := sync.OnceFunc(func() { close(rt.ownReady) })
		defer ready()
		sub, err := rt.nc.Subscribe(rt.subj.OwnNode(node), rt.onOwn)
		if err != nil {
			return fmt.Errorf("actor: subscribe %s: %w", rt.subj.OwnNode(node), err)
		}
		_ = sub.SetPendingLimits(1<<16, subPendingBytes)
		rt.ownSub = sub
		rt.fwd.inbox = rt.nc.NewInbox() + "."
		rt.fwd.out = map[uint64]inflight{}
		bsub, err := rt.nc.Subscribe(rt.fwd.inbox+"*", rt.onBounce)
		if err != nil {
			_ = sub.Unsubscribe()
			return fmt.Errorf("actor: subscribe %s: %w", rt.fwd.inbox+"*", err)
		}
		_ = bsub.SetPendingLimits(1<<16, subPendingBytes)
		rt.bounceSub = bsub
		if err := rt.nc.FlushTimeout(10 * time.Second); err != nil {
			_ = sub.Unsubscribe()
			_ = bsub.Unsubscribe()
			return fmt.Errorf("actor: flush: %w", err)
		}
		own, err := rt.startOwner(ctx, node, names)
		if err != nil {
			_ = sub.Unsubscribe()
			_ = bsub.Unsubscribe()
			return err
		}
		rt.own = own
		ready()
	}
	var subs []subscription
	for _, ns := range names {
		subs = append(subs, subscription{rt.subj.RequestNS(ns), rt.onRequestByID}, subscription{rt.subj.Name(ns), rt.onRequestByName})
	}
	for _, s := range subs {
		// A queue group: with several runtimes on one deployment each request
		// reaches one of them, which runs it if it owns the object's
		// partition and forwards it to the owner otherwise.
		sub, err := rt.nc.QueueSubscribe(s.subject, rt.subj.Prefix, s.cb)
		if err != nil {
			rt.abortStart(ctx)
			return fmt.Errorf("actor: subscribe %s: %w", s.subject, err)
		}
		// What waits here, before the callback moves it into a mailbox
		// (where the queue limits apply), is bounded too; beyond it NATS
		// drops messages and their callers time out.
		_ = sub.SetPendingLimits(1<<16, subPendingBytes)
		rt.mu.Lock()
		rt.mu.subs = append(rt.mu.subs, sub)
		rt.mu.Unlock()
	}
	if err := rt.nc.FlushTimeout(10 * time.Second); err != nil {
		rt.abortStart(ctx)
		return fmt.Errorf("actor: flush: %w", err)
	}
	if len(names) > 0 { // Consume without namespaces would take every namespace's firings
		stop, err := al.Consume(ctx, rt.onFiring, names...)
		if err != nil {
			rt.abortStart(ctx)
			return fmt.Errorf("actor: alarms: %w", err)
		}
		rt.stopAlarms = stop
	}
	return nil
}

// namespaceNames returns the registered namespaces, sorted.
func (rt *Runtime) namespaceNames() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	names := make([]string, 0, len(rt.mu.namespaces))
	for ns := range rt.mu.namespaces {
		names = append(names, ns)
	}
	slices.Sort(names)
	return names
}

func (rt *Runtime) unsubscribe() {
	rt.mu.Lock()
	subs := rt.mu.subs
	rt.mu.subs = nil
	rt.mu.Unlock()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
}

// abortStart undoes a Start that failed half way.
func (rt *Runtime) abortStart(ctx context.Context) {
	rt.unsubscribe()
	if rt.ownSub != nil {
		_ = rt.ownSub.Unsubscribe()
		_ = rt.bounceSub.Unsubscribe()
	}
	if rt.own != nil {
		rt.own.close(ctx)
	}
}

// drain drains subs (the messages already received are still handled)
// and waits until they are closed, or ctx ends.
func drain(ctx context.Context, subs ...*nats.Subscription) {
	var wait []<-chan nats.SubStatus
	for _, s := range subs {
		if s == nil {
			continue
		}
		closed := s.StatusChanged(nats.SubscriptionClosed)
		if err := s.Drain(); err != nil {
			_ = s.Unsubscribe()
			continue
		}
		wait = append(wait, closed)
	}
	for _, c := range wait {
		select {
		case <-c:
		case <-ctx.Done():
			return
		}
	}
}

// Close stops taking requests and hands its objects over: with other
// nodes serving the same namespaces, their queued requests go on to the
// partitions' next owners, which take over at once (no caller sees an
// error); alone, queued requests are answered with "unavailable". Every
// object finishes its journal appends (released replies stay correct) and
// closes its files. Close waits for the objects' goroutines, or until ctx
// ends.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	if rt.mu.closing {
		rt.mu.Unlock()
		return nil
	}
	rt.mu.closing = true
	started := rt.cancel != nil
	if rt.own == nil {
		rt.mu.closed = true
	}
	rt.mu.Unlock()
	if !started {
		return nil
	}
	rt.mu.Lock()
	subs := rt.mu.subs
	rt.mu.subs = nil
	rt.mu.Unlock()
	drain(ctx, subs...)
	if rt.stopAlarms != nil {
		rt.stopAlarms()
	}
	if rt.own != nil {
		rt.own.close(ctx)
		drain(ctx, rt.ownSub, rt.bounceSub)
		rt.mu.Lock()
		rt.mu.closed = true
		rt.mu.Unlock()
		rt.unpark(true)
	}
	rt.cancel()
	done := make(chan struct{})
	go func() {
		rt.wg.Wait()
		if rt.syncer != nil {
			rt.syncer.close()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("actor: close: %w", ctx.Err())
	}
}

// ActiveObjects returns how many objects are active now: holding their
// files, at most Config.MaxActive.
func (rt *Runtime) ActiveObjects() int { return len(rt.slots) }

// subPendingBytes bounds the messages a request subscription holds before
// its callback takes them.
const subPendingBytes = 64 << 20

// checkReply refuses a request whose reply subject the runtime must not
// publish to (see Config.ReplyPrefixes): nothing is published for it.
func (rt *Runtime) checkReply(m *nats.Msg) bool {
	why := replyAllowed(m.Reply, rt.cfg.ReplyPrefixes)
	if why == "" {
		return true
	}
	rt.count.refusedReplies.Add(1)
	rt.badReply.warn(rt.log, "request refused: "+why, "subject", m.Subject, "reply", cutLog(m.Reply, 128))
	return false
}

// subjectID parses the namespace and object ID ending m's subject, or
// answers the caller why not.
func (rt *Runtime) subjectID(m *nats.Msg) (string, ID, bool) {
	ns, id, ok := lastTwoTokens(m.Subject)
	if !ok {
		rt.replyError(m, Errorf(http.StatusBadRequest, CodeBadRequest, "bad subject %q", m.Subject))
		return "", "", false
	}
	oid, err := ParseID(id)
	if err != nil {
		rt.replyError(m, err)
		return "", "", false
	}
	return ns, oid, true
}

func (rt *Runtime) onRequestByID(m *nats.Msg) {
	// <prefix>.req.<ns>.<id>
	if !rt.checkReply(m) {
		return
	}
	ns, oid, ok := rt.subjectID(m)
	if !ok {
		return
	}
	name := m.Header.Get(HeaderName)
	if name != "" && NameID(ns, name) != oid {
		rt.replyError(m, Errorf(http.StatusBadRequest, CodeInvalidID, "header %s does not match the object ID", HeaderName))
		return
	}
	rt.route(ns, oid, envelope{msg: m, name: name, size: msgSize(m), at: rt.clock.Now()})
}

func (rt *Runtime) onRequestByName(m *nats.Msg) {
	// <prefix>.name.<ns>
	if !rt.checkReply(m) {
		return
	}
	_, ns, ok := lastTwoTokens(m.Subject)
	if !ok {
		rt.replyError(m, Errorf(http.StatusBadRequest, CodeBadRequest, "bad subject %q", m.Subject))
		return
	}
	name := m.Header.Get(HeaderName)
	if err := ValidName(name); err != nil {
		rt.replyError(m, fmt.Errorf("header %s: %w", HeaderName, err))
		return
	}
	rt.route(ns, NameID(ns, name), envelope{msg: m, name: name, size: msgSize(m), at: rt.clock.Now()})
}

func lastTwoTokens(s string) (string, string, bool) {
	j := len(s) - 1
	for j >= 0 && s[j] != '.' {
		j--
	}
	if j <= 0 {
		return "", "", false
	}
	i := j - 1
	for i >= 0 && s[i] != '.' {
		i--
	}
	a, b := s[i+1:j], s[j+1:]
	return a, b, a != "" && b != ""
}

// deliver puts m into the mailbox of (ns, id) on this node, activating
// the object if needed, whoever owns it (tests of the journal fence).
func (rt *Runtime) deliver(ns string, id ID, name string, m *nats.Msg) {
	rt.enqueue(ns, id, envelope{msg: m, name: name, size: msgSize(m), at: rt.clock.Now()})
}

// onFiring routes an alarm firing to its object. A firing that cannot be
// queued is left unacknowledged: JetStream delivers it again.
func (rt *Runtime) onFiring(f alarms.Firing, ack func() error, nak func(time.Duration) error) {
	id, err := ParseID(f.ID)
	if err != nil {
		rt.log.Warn("dropping alarm firing with a bad id", "firing", f.String(), logErr, err)
		_ = ack()
		return
	}
	rt.route(f.NS, id, envelope{firing: &f, ack: ack, nak: nak, at: rt.clock.Now()})
}

func (rt *Runtime) enqueue(ns string, id ID, env envelope) {
	key := ns + "." + string(id)
	rt.mu.Lock()
	if rt.mu.closed {
		rt.mu.Unlock()
		rt.refuse(env, ErrClosed)
		return
	}
	if env.size > 0 && rt.count.queuedBytes.Load()+env.size > rt.cfg.MaxQueuedBytesTotal {
		rt.mu.Unlock()
		rt.overloaded(env, overloadTotal, ns, id)
		return
	}
	o := rt.mu.objects[key]
	if o == nil {
		nsp := rt.mu.namespaces[ns]
		if nsp == nil {
			rt.mu.Unlock()
			rt.refuse(env, fmt.Errorf("%w: %q", ErrUnknownNamespace, ns))
			return
		}
		if len(rt.slots)+rt.mu.pending >= cap(rt.slots) && rt.mu.pending >= rt.cfg.MaxActivating {
			rt.mu.Unlock()
			rt.overloaded(env, overloadActive, ns, id)
			return
		}
		rt.mu.pending++
		o = newObject(rt, nsp, id, key, rt.mu.exiting[key])
		rt.mu.objects[key] = o
		rt.wg.Add(1)
		go o.run()
	}
	if o.stuck.Load() && env.firing == nil {
		rt.mu.Unlock()
		rt.refuse(env, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "object %s/%s is stuck in a handler past its deadline", ns, id))
		return
	}
	if r := o.mailbox.push(env, rt.cfg.MailboxSize, rt.cfg.MaxQueuedBytes); r != overloadNone {
		rt.mu.Unlock()
		rt.overloaded(env, r, ns, id)
		return
	}
	rt.count.queuedBytes.Add(env.size)
	rt.mu.Unlock()
}

// dequeued takes env's bytes off the runtime's queue count.
func (rt *Runtime) dequeued(env envelope) { rt.count.queuedBytes.Add(-env.size) }

// overloaded refuses env for reason r. A refused firing stays
// unacknowledged: JetStream delivers it again later.
func (rt *Runtime) overloaded(env envelope, r overloadReason, ns string, id ID) {
	rt.count.overloaded[r].Add(1)
	var msg string
	switch r {
	case overloadCount:
		msg = fmt.Sprintf("too many requests queued at object %s/%s (%d)", ns, id, rt.cfg.MailboxSize)
	case overloadBytes:
		msg = fmt.Sprintf("too much data queued at object %s/%s (limit %d bytes)", ns, id, rt.cfg.MaxQueuedBytes)
	case overloadTotal:
		msg = fmt.Sprintf("too much data queued in this runtime (limit %d bytes)", rt.cfg.MaxQueuedBytesTotal)
	case overloadWait:
		msg = fmt.Sprintf("request queued too long at object %s/%s (over %v); it was not run", ns, id, rt.cfg.MaxQueueWait)
	case overloadActive:
		msg = fmt.Sprintf("too many objects active or activating (%d active at most)", rt.cfg.MaxActive)
	}
	rt.overload.warn(rt.log, "request refused: overloaded", logNS, ns, logID, id, "why", msg)
	if env.task != nil {
		env.task.done <- Errorf(http.StatusServiceUnavailable, CodeOverloaded, "%s", msg)
		return
	}
	if env.firing != nil {
		return
	}
	rt.replyError(env.msg, Errorf(http.StatusServiceUnavailable, CodeOverloaded, "%s", msg))
}

// acquireSlot waits for one of the MaxActive slots, up to ActivationWait,
// while the evictor asks idle objects to close.
func (rt *Runtime) acquireSlot(ctx context.Context) bool {
	defer func() {
		rt.mu.Lock()
		rt.mu.pending--
		rt.mu.Unlock()
	}()
	select {
	case rt.slots <- struct{}{}:
		return true
	default:
	}
	rt.count.activating.Add(1)
	defer rt.count.activating.Add(-1)
	select {
	case rt.evictWake <- struct{}{}:
	default:
	}
	deadline := time.NewTimer(rt.cfg.ActivationWait)
	defer deadline.Stop()
	select {
	case rt.slots <- struct{}{}:
		return true
	case <-deadline.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// evictor asks idle objects to close while activations wait for a slot:
// as many as wait, every few milliseconds. One goroutine does it, so that
// waiting activations do not contend for the runtime's lock.
func (rt *Runtime) evictor() {
	defer rt.wg.Done()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-rt.evictWake:
		case <-rt.ctx.Done():
			return
		}
		for n := rt.count.activating.Load(); n > 0; n = rt.count.activating.Load() {
			rt.askToEvict(int(n))
			select {
			case <-tick.C:
			case <-rt.ctx.Done():
				return
			}
		}
	}
}

// Eviction under pressure (see object.evictable): an object must have
// been idle for evictMinIdle, and one whose last two requests came within
// evictHotGap of each other and of now stays.
const (
	evictMinIdle = 20 * time.Millisecond
	evictHotGap  = 5 * time.Second
)

// askToEvict asks up to n idle active objects to close early, those idle
// longest first, so that objects in steady use stay active.
func (rt *Runtime) askToEvict(n int) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	cands := rt.evictBuf[:0]
	now := time.Now().UnixNano()
	for _, o := range rt.mu.objects {
		if o.hasSlot.Load() && o.idle.Load() && o.evictable(now) {
			cands = append(cands, o)
		}
	}
	if len(cands) > n {
		slices.SortFunc(cands, func(a, b *object) int { return cmp.Compare(a.lastUsed.Load(), b.lastUsed.Load()) })
		cands = cands[:n]
	}
	for _, o := range cands {
		select {
		case o.evict <- struct{}{}:
		default:
		}
	}
	clear(rt.evictBuf[:cap(rt.evictBuf)])
	rt.evictBuf = cands[:0]
}

func defaultMaxActive() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 10000
	}
	return min(10000, max(64, (int(lim.Cur)-1024)/4))
}

// refuse answers a request that cannot be queued. A refused firing stays
// unacknowledged (delivered again later) unless its namespace is unknown.
func (rt *Runtime) refuse(env envelope, err error) {
	if env.task != nil {
		env.task.done <- err
		return
	}
	if env.firing != nil {
		if errors.Is(err, ErrUnknownNamespace) {
			rt.log.Warn("dropping alarm firing of an unknown namespace", "firing", env.firing.String())
			_ = env.ack()
		}
		return
	}
	rt.replyError(env.msg, err)
}

// release removes o from the active set if its mailbox is empty (or
// force is set); it returns false if o must keep running. Afterwards no
// request reaches o; a new instance waits for o's done channel.
func (rt *Runtime) release(o *object, force bool) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !force && o.mailbox.len() > 0 {
		return false
	}
	if rt.mu.objects[o.key] == o {
		delete(rt.mu.objects, o.key)
	}
	rt.mu.exiting[o.key] = o.done
	return true
}

// exited is called by an object's goroutine when its files are closed.
func (rt *Runtime) exited(o *object) {
	if o.hasSlot.Swap(false) {
		<-rt.slots
	}
	rt.mu.Lock()
	if rt.mu.exiting[o.key] == o.done {
		delete(rt.mu.exiting, o.key)
	}
	rt.mu.Unlock()
	close(o.done)
}

// replyError answers m with err. m's reply subject was checked on arrival.
func (rt *Runtime) replyError(m *nats.Msg, err error) {
	if m.Reply == "" {
		return
	}
	if perr := rt.replyNC.PublishMsg(encodeError(m.Reply, err)); perr != nil {
		rt.log.Warn("reply failed", logErr, perr)
	}
}

// tmpDir holds the runtime's scratch files; Start empties it. Namespaces
// are subject tokens, which never hold a dot: it cannot be one's directory.
func (rt *Runtime) tmpDir() string { return filepath.Join(rt.cfg.DataDir, ".tmp") }

func (rt *Runtime) objectPath(ns string, id ID) string {
	return filepath.Join(rt.cfg.DataDir, ns, string(id)+".db")
}

// JetStream setup retries: the first attempt's deadline (it doubles up to
// 10 s: a request that races a concurrent creation of the same stream on a
// cluster may get no answer at all), and the whole wait.
const (
	setupAttempt = 2 * time.Second
	setupWait    = 2 * time.Minute
)

// retryJetStream runs op until it succeeds, fails for good, or setupWait
// passes: a JetStream cluster that is electing its leaders answers "system
// temporarily unavailable", "insufficient resources" or nothing at all.
func retryJetStream(ctx context.Context, log *slog.Logger, what string, op func(context.Context) error) error {
	deadline := time.Now().Add(setupWait)
	wait, attempt := 100*time.Millisecond, setupAttempt
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := op(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !transientJetStream(err) || time.Now().After(deadline) {
			return err
		}
		log.Warn("JetStream not ready; retrying", "setup", what, logErr, err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
		attempt = min(2*attempt, 10*time.Second)
	}
}

// transientJetStream reports whether err may go away once a JetStream
// cluster has elected its leaders.
func transientJetStream(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case 10008, // JetStream system temporarily unavailable
			10023, // insufficient resources
			10005: // no suitable peers for placement (servers still joining)
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrTimeout)
}

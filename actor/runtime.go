package actor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
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
	// Replicas of the journal stream; default 1 (3 on a production cluster).
	Replicas int
	// IdleTimeout evicts an object that had no request for this long;
	// default 2 minutes. Its next request reactivates it.
	IdleTimeout time.Duration
	// MailboxSize bounds each object's queue of waiting requests; a request
	// finding it full gets an "overloaded" error. Default 1024.
	MailboxSize int
	// MaxPendingTxns bounds the transactions of one object that are
	// committed locally but not yet durable; the object stops taking
	// requests until its journal catches up. Default 1024.
	MaxPendingTxns int
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
	// MaxActive is a soft cap on active objects: activating one more asks
	// a few others to close their files early (those with work in flight
	// decline; an alarm of a closed object still fires, through its
	// durable schedule). An open object holds 3 file descriptors; the
	// default keeps them within the process's descriptor limit:
	// (RLIMIT_NOFILE - 1024) / 4, at least 256.
	MaxActive int
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
	js         jetstream.JetStream
	jr         *journal.Journal
	snaps      *journal.Snapshots
	alarms     *alarms.Alarms
	clock      alarms.Clock
	stopAlarms func()
	syncer     *syncer
	maxSize    int // largest journal entry

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		namespaces map[string]*namespace
		objects    map[string]*object
		exiting    map[string]chan struct{} // objects shutting down, by key
		subs       []*nats.Subscription
		started    bool
		closed     bool
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
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 1000
	}
	if cfg.Retention == nil {
		cfg.Retention = &journal.Retention{KeepEntries: journal.DefaultKeepEntries, KeepFor: journal.DefaultKeepFor}
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
	rt := &Runtime{cfg: cfg, subj: subj, log: cfg.Logger, nc: cfg.Conn, clock: cfg.Clock}
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
	jr, err := journal.Open(ctx, js, journal.Config{Prefix: rt.subj.Prefix, Stream: rt.cfg.JournalStream, Replicas: rt.cfg.Replicas})
	if err != nil {
		return fmt.Errorf("actor: journal: %w", err)
	}
	rt.jr = jr
	snaps, err := journal.OpenSnapshots(ctx, js, journal.SnapshotConfig{Replicas: rt.cfg.Replicas})
	if err != nil {
		return fmt.Errorf("actor: snapshots: %w", err)
	}
	rt.snaps = snaps
	al, err := alarms.Open(ctx, js, alarms.Config{Subjects: rt.subj, Stream: rt.cfg.AlarmStream, Replicas: rt.cfg.Replicas, AckWait: rt.cfg.AlarmAckWait, Logger: rt.log})
	if err != nil {
		return fmt.Errorf("actor: alarms: %w", err)
	}
	rt.alarms = al
	rt.maxSize = jr.MaxEntrySize() - 64
	rt.ctx, rt.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if rt.cfg.Sync != nil {
		rt.syncer = newSyncer(rt.cfg.Sync)
	}

	for _, s := range []struct {
		subject string
		cb      nats.MsgHandler
	}{
		{rt.subj.RequestAll(), rt.onRequestByID},
		{rt.subj.NameAll(), rt.onRequestByName},
	} {
		// A queue group: with several runtimes on one deployment each request
		// reaches one of them (fencing keeps the journal safe if two serve
		// the same object).
		sub, err := rt.nc.QueueSubscribe(s.subject, rt.subj.Prefix, s.cb)
		if err != nil {
			rt.unsubscribe()
			return fmt.Errorf("actor: subscribe %s: %w", s.subject, err)
		}
		_ = sub.SetPendingLimits(1<<20, 1<<30)
		rt.mu.Lock()
		rt.mu.subs = append(rt.mu.subs, sub)
		rt.mu.Unlock()
	}
	if err := rt.nc.FlushTimeout(10 * time.Second); err != nil {
		rt.unsubscribe()
		return fmt.Errorf("actor: flush: %w", err)
	}
	stop, err := al.Consume(ctx, rt.onFiring)
	if err != nil {
		rt.unsubscribe()
		return fmt.Errorf("actor: alarms: %w", err)
	}
	rt.stopAlarms = stop
	return nil
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

// Close stops taking requests, lets every object finish its journal
// appends (released replies stay correct), answers queued requests with
// "unavailable", closes the objects' files and waits for their goroutines,
// or until ctx ends.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	if rt.mu.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.mu.closed = true
	started := rt.cancel != nil
	rt.mu.Unlock()
	if !started {
		return nil
	}
	rt.unsubscribe()
	if rt.stopAlarms != nil {
		rt.stopAlarms()
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

// ActiveObjects returns how many objects are active now.
func (rt *Runtime) ActiveObjects() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return len(rt.mu.objects)
}

func (rt *Runtime) onRequestByID(m *nats.Msg) {
	// <prefix>.req.<ns>.<id>
	ns, id, ok := lastTwoTokens(m.Subject)
	if !ok {
		rt.replyError(m, Errorf(http.StatusBadRequest, CodeBadRequest, "bad subject %q", m.Subject))
		return
	}
	oid, err := ParseID(id)
	if err != nil {
		rt.replyError(m, err)
		return
	}
	name := m.Header.Get(HeaderName)
	if name != "" && NameID(ns, name) != oid {
		rt.replyError(m, Errorf(http.StatusBadRequest, CodeInvalidID, "header %s does not match the object ID", HeaderName))
		return
	}
	rt.deliver(ns, oid, name, m)
}

func (rt *Runtime) onRequestByName(m *nats.Msg) {
	// <prefix>.name.<ns>
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
	rt.deliver(ns, NameID(ns, name), name, m)
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

// envelope is a request or an alarm firing waiting in a mailbox.
type envelope struct {
	msg    *nats.Msg
	name   string
	firing *alarms.Firing // an alarm firing instead of a request
	ack    func() error   // acknowledges the firing
}

// deliver puts m into the mailbox of (ns, id), activating the object if
// needed.
func (rt *Runtime) deliver(ns string, id ID, name string, m *nats.Msg) {
	rt.enqueue(ns, id, envelope{msg: m, name: name})
}

// onFiring routes an alarm firing to its object. A firing that cannot be
// queued is left unacknowledged: JetStream delivers it again.
func (rt *Runtime) onFiring(f alarms.Firing, ack func() error) {
	id, err := ParseID(f.ID)
	if err != nil {
		rt.log.Warn("dropping alarm firing with a bad id", "firing", f.String(), logErr, err)
		_ = ack()
		return
	}
	rt.enqueue(f.NS, id, envelope{firing: &f, ack: ack})
}

func (rt *Runtime) enqueue(ns string, id ID, env envelope) {
	key := ns + "." + string(id)
	rt.mu.Lock()
	if rt.mu.closed {
		rt.mu.Unlock()
		rt.refuse(env, ErrClosed)
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
		if len(rt.mu.objects) >= rt.cfg.MaxActive {
			rt.askToEvict(4)
		}
		o = newObject(rt, nsp, id, key, rt.mu.exiting[key])
		rt.mu.objects[key] = o
		rt.wg.Add(1)
		go o.run()
	}
	select {
	case o.mailbox <- env:
		rt.mu.Unlock()
	default:
		rt.mu.Unlock()
		rt.refuse(env, Errorf(http.StatusServiceUnavailable, CodeOverloaded, "object %s/%s has %d requests waiting", ns, id, cap(o.mailbox)))
	}
}

// askToEvict asks up to n active objects (in map order, i.e. at random)
// to close early. Called with rt.mu held.
func (rt *Runtime) askToEvict(n int) {
	for _, o := range rt.mu.objects {
		if n == 0 {
			return
		}
		select {
		case o.evict <- struct{}{}:
			n--
		default:
		}
	}
}

func defaultMaxActive() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 16384
	}
	return max(256, (int(lim.Cur)-1024)/4)
}

// refuse answers a request that cannot be queued. A refused firing stays
// unacknowledged (delivered again later) unless its namespace is unknown.
func (rt *Runtime) refuse(env envelope, err error) {
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
	if !force && len(o.mailbox) > 0 {
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
	rt.mu.Lock()
	if rt.mu.exiting[o.key] == o.done {
		delete(rt.mu.exiting, o.key)
	}
	rt.mu.Unlock()
	close(o.done)
}

func (rt *Runtime) replyError(m *nats.Msg, err error) {
	if m.Reply == "" {
		return
	}
	if perr := rt.nc.PublishMsg(encodeError(m.Reply, err)); perr != nil {
		rt.log.Warn("reply failed", logErr, perr)
	}
}

// tmpDir holds the runtime's scratch files; Start empties it. Namespaces
// are subject tokens, which never hold a dot: it cannot be one's directory.
func (rt *Runtime) tmpDir() string { return filepath.Join(rt.cfg.DataDir, ".tmp") }

func (rt *Runtime) objectPath(ns string, id ID) string {
	return filepath.Join(rt.cfg.DataDir, ns, string(id)+".db")
}

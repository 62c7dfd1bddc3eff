package actor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/bus"
)

// Ownership (docs/cluster.md). Every (namespace, partition) has at most one
// owner among the runtimes ("nodes") of a deployment; only the owner
// activates the partition's objects. The state lives in a JetStream KV
// bucket (Config.LeaseBucket):
//
//	n.<node>            presence: "<epoch> <ns>,<ns>,…", with a TTL
//	                    (Config.LeaseTTL), renewed every TTL/4
//	o.<ns>.<partition>  owner: "<node> <epoch>", or "released"
//
// A node's claims are valid while its presence lives with the same epoch:
// when the presence key expires (the node died, paused, or lost NATS),
// its claims are dead and the partition's preferred node claims it with a
// compare-and-set on the key's revision. A node stops serving on its own
// once LeaseTTL - LeaseTTL/4 has passed since it sent its last successful
// renewal, which is before the server can expire the key (docs/cluster.md
// gives the timing and what it assumes of clocks). Which live node should
// own a partition is rendezvous hashing over the nodes hosting its
// namespace, so a node that joins takes a share and a node that stops
// hands its share over.
//
// The journal's expected-sequence fence stays the last line of defence: a
// node that takes a partition over from a dead owner appends a fence entry
// to each object's journal at its first activation, so that an append the
// dead owner still had on the wire fails instead of landing behind the new
// owner's reads.

const (
	keyPresence = "n."
	keyOwner    = "o."
	valReleased = "released"

	fenceRequestID = "opendo-fence" // request ID of the fence transaction
	maxHops        = 3              // forwards of one request between nodes

	// closeGrace is how long a stopping node still takes forwarded
	// requests (to send them on) after its watcher saw its presence go.
	closeGrace = 100 * time.Millisecond
)

// pkey names a partition of a namespace.
type pkey struct {
	ns   string
	part int
}

// ownerKey is the bucket key of a partition's owner record. Keys start
// with the subject prefix, so deployments with different prefixes share one
// bucket without seeing each other.
func (w *owner) ownerKey(k pkey) string {
	return w.pfx + keyOwner + k.ns + "." + strconv.Itoa(k.part)
}

// presenceKey is the bucket key of a node's presence.
func (w *owner) presenceKey(node string) string { return w.pfx + keyPresence + node }

// claim is this node's ownership of one partition, for one epoch.
type claim struct {
	own       *owner
	key       pkey
	rev       uint64      // revision of the ownership key written by the claim
	fence     bool        // taken from an owner that did not release it
	fenced    sync.Map    // object IDs whose journal was fenced under this claim
	lost      atomic.Bool // the claim ended (epoch lost, or released)
	releasing atomic.Bool // being handed over: held, but no new request starts
}

// held reports whether the claim still guarantees that no other node owns
// the partition: a handler that started under it may finish and reply.
func (c *claim) held() bool { return c != nil && !c.lost.Load() && c.own.valid() }

// serving reports whether a new request may start under the claim.
func (c *claim) serving() bool { return c.held() && !c.releasing.Load() }

// ownerRec is what the bucket says of a partition.
type ownerRec struct {
	node, epoch string
	rev         uint64 // revision of the ownership key; 0 if never written
	released    bool   // the last owner released it after draining
}

// member is a live node, from its presence key.
type member struct {
	epoch      string
	namespaces []string
}

func (m member) hosts(ns string) bool { return slices.Contains(m.namespaces, ns) }

// owner runs this node's side of the ownership protocol.
type owner struct {
	rt     *Runtime
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	bucket string
	pfx    string // key prefix: the subject prefix and a dot
	node   string
	ttl    time.Duration
	log    *slog.Logger
	hosted []string // namespaces of this node, sorted
	parts  int

	base       time.Time    // monotonic origin of validUntil
	validUntil atomic.Int64 // ns after base until which the presence is surely alive

	kick      chan struct{} // recompute soon
	handedOff chan pkey     // a handoff drained its objects
	stopped   chan struct{} // the loop ended
	cancel    context.CancelFunc

	warn limitedLog

	gone     chan struct{} // closing: the watcher saw this node's presence go
	goneOnce sync.Once

	mu struct {
		sync.RWMutex
		epoch       string
		presenceRev uint64
		members     map[string]member
		recs        map[pkey]ownerRec
		mine        map[pkey]*claim
		closing     bool
		purged      bool // closing: the presence key is being removed
	}
}

// valid reports whether this node's presence is surely alive now.
func (w *owner) valid() bool { return int64(time.Since(w.base)) < w.validUntil.Load() }

// route tells where a request to partition k goes: to a local claim, to
// another node (remote), or nowhere yet (both zero: park it until the
// partition has an owner).
func (w *owner) route(k pkey) (c *claim, remote string) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if c := w.mu.mine[k]; c != nil {
		switch {
		case c.serving():
			return c, ""
		case c.releasing.Load():
			// Handing it over: its next owner parks requests until it
			// claims the partition.
			return nil, w.desiredLocked(k, w.node)
		}
		return nil, "" // not sure of the presence right now: wait
	}
	if rec, ok := w.mu.recs[k]; ok && w.aliveLocked(rec) {
		if rec.node != w.node {
			return nil, rec.node
		}
		return nil, "" // a claim of ours being settled
	}
	// Nobody owns it: its preferred node claims it soon.
	if d := w.desiredLocked(k, ""); d != w.node {
		return nil, d
	}
	return nil, ""
}

// serving returns the claim under which (ns, part) is served here, or nil.
func (w *owner) serving(k pkey) *claim {
	w.mu.RLock()
	c := w.mu.mine[k]
	w.mu.RUnlock()
	if c.serving() {
		return c
	}
	return nil
}

func (w *owner) aliveLocked(rec ownerRec) bool {
	if rec.node == "" || rec.released {
		return false
	}
	m, ok := w.mu.members[rec.node]
	return ok && m.epoch == rec.epoch
}

// desiredLocked is the live node hosting k.ns with the highest rendezvous
// score for k, other than exclude; "" if none.
func (w *owner) desiredLocked(k pkey, exclude string) string {
	best, bestScore := "", uint64(0)
	for node, m := range w.mu.members {
		if node == exclude || !m.hosts(k.ns) {
			continue
		}
		if node == w.node && w.mu.closing {
			continue
		}
		if s := score(node, k); best == "" || s > bestScore || s == bestScore && node < best {
			best, bestScore = node, s
		}
	}
	return best
}

// score is the rendezvous hash of node for k.
func score(node string, k pkey) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(k.ns))
	var b [9]byte
	b[0] = 0
	binary.BigEndian.PutUint64(b[1:], uint64(k.part))
	h.Write(b[:])
	x := h.Sum64()
	// splitmix64's finalizer: FNV alone mixes the last bytes poorly.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// owned is how many partitions this node serves now.
func (rt *Runtime) owned() int {
	if rt.own == nil {
		return 0
	}
	w := rt.own
	w.mu.RLock()
	defer w.mu.RUnlock()
	n := 0
	for _, c := range w.mu.mine {
		if c.serving() {
			n++
		}
	}
	return n
}

// NodeID returns this node's ID among the nodes of the deployment, once
// started ("" if it hosts no namespace).
func (rt *Runtime) NodeID() string {
	if rt.own == nil {
		return ""
	}
	return rt.own.node
}

// nodeID returns the configured node ID, or the one stored in the data
// directory (made on first start), so that a restarted node is the same
// node: it gets the same partitions back, whose files it has.
func nodeID(cfg Config) (string, error) {
	if cfg.NodeID != "" {
		if err := bus.ValidToken(cfg.NodeID); err != nil {
			return "", fmt.Errorf("actor: node ID: %w", err)
		}
		return cfg.NodeID, nil
	}
	path := filepath.Join(cfg.DataDir, ".node-id")
	if b, err := os.ReadFile(path); err == nil {
		id := strings.TrimSpace(string(b))
		if err := bus.ValidToken(id); err != nil {
			return "", fmt.Errorf("actor: node ID in %s: %w", path, err)
		}
		return id, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("actor: node ID: %w", err)
	}
	id := "node-" + strings.ToLower(ulid.Make().String())
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("actor: node ID: %w", err)
	}
	return id, nil
}

// startOwner joins the deployment: it loads the bucket, writes this node's
// presence and claims its share of the partitions before it returns.
func (rt *Runtime) startOwner(ctx context.Context, node string, hosted []string) (*owner, error) {
	var kv jetstream.KeyValue
	err := retryJetStream(ctx, rt.log, "lease bucket", func(ctx context.Context) (err error) {
		kv, err = rt.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         rt.cfg.LeaseBucket,
			Description:    "opendo partition ownership (docs/cluster.md)",
			History:        1,
			Replicas:       rt.cfg.Replicas,
			Storage:        jetstream.FileStorage,
			LimitMarkerTTL: time.Minute,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("actor: lease bucket %s: %w", rt.cfg.LeaseBucket, err)
	}
	w := &owner{
		rt: rt, js: rt.js, kv: kv, bucket: rt.cfg.LeaseBucket, node: node, ttl: rt.cfg.LeaseTTL, pfx: rt.subj.Prefix + ".",
		log: rt.log.With("node", node), hosted: hosted, parts: rt.subj.Partitions,
		base: time.Now(), kick: make(chan struct{}, 1), gone: make(chan struct{}), handedOff: make(chan pkey, 64), stopped: make(chan struct{}),
	}
	w.warn.every = time.Second
	w.mu.members = map[string]member{}
	w.mu.recs = map[pkey]ownerRec{}
	w.mu.mine = map[pkey]*claim{}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	watch, err := kv.Watch(lctx, w.pfx+">")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("actor: watch %s: %w", w.bucket, err)
	}
	// The initial values, up to the nil marker.
	for e := range watch.Updates() {
		if e == nil {
			break
		}
		w.apply(e)
	}
	if err := w.join(ctx); err != nil {
		_ = watch.Stop()
		cancel()
		return nil, err
	}
	w.recompute(ctx)
	go w.loop(lctx, watch)
	return w, nil
}

// apply takes one bucket entry into the view.
func (w *owner) apply(e jetstream.KeyValueEntry) {
	key, del := e.Key(), e.Operation() != jetstream.KeyValuePut
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case !strings.HasPrefix(key, w.pfx):
		// another deployment's key (the watch filters them out)
	case strings.HasPrefix(key[len(w.pfx):], keyPresence):
		node := key[len(w.pfx)+len(keyPresence):]
		if node == w.node {
			// Our own key. Only its expiry (or purge) since our last write
			// of it matters: the renewal loop finds out and joins again.
			// Our renewals change nothing, and what happened before our
			// last join (an earlier run's presence, the expiry that a
			// paused node reads after joining again) says nothing of now.
			if del && e.Revision() >= w.mu.presenceRev {
				delete(w.mu.members, node)
				if w.mu.closing {
					w.goneOnce.Do(func() { close(w.gone) })
				}
			}
			return
		}
		if del {
			delete(w.mu.members, node)
			return
		}
		epoch, nss, _ := strings.Cut(string(e.Value()), " ")
		m := member{epoch: epoch}
		if nss != "" {
			m.namespaces = strings.Split(nss, ",")
		}
		w.mu.members[node] = m
	case strings.HasPrefix(key[len(w.pfx):], keyOwner):
		ns, p, ok := strings.Cut(key[len(w.pfx)+len(keyOwner):], ".")
		part, err := strconv.Atoi(p)
		if !ok || err != nil {
			return
		}
		k := pkey{ns, part}
		if old, ok := w.mu.recs[k]; ok && old.rev > e.Revision() {
			return // we already know better (our own write, acknowledged)
		}
		rec := ownerRec{rev: e.Revision()}
		v := string(e.Value())
		switch {
		case del:
		case v == valReleased:
			rec.released = true
		default:
			rec.node, rec.epoch, _ = strings.Cut(v, " ")
		}
		w.mu.recs[k] = rec
		if c := w.mu.mine[k]; c != nil && (rec.node != w.node || rec.epoch != w.mu.epoch) {
			// Someone else wrote our key: we no longer own it.
			c.lost.Store(true)
			delete(w.mu.mine, k)
		}
	}
}

// presenceValue is this node's presence: its epoch and namespaces.
func (w *owner) presenceValue(epoch string) []byte {
	return []byte(epoch + " " + strings.Join(w.hosted, ","))
}

// join writes this node's presence with a new epoch. A presence key left by
// an earlier run of this node is taken over (its claims are dead: the new
// epoch differs).
func (w *owner) join(ctx context.Context) error {
	epoch := strings.ToLower(ulid.Make().String())
	val := w.presenceValue(epoch)
	key := w.presenceKey(w.node)
	sent := time.Since(w.base)
	var rev uint64
	var err error
	for range 3 {
		rev, err = w.kv.Create(ctx, key, val, jetstream.KeyTTL(w.ttl))
		if !errors.Is(err, jetstream.ErrKeyExists) {
			break
		}
		var e jetstream.KeyValueEntry
		e, err = w.kv.Get(ctx, key)
		if err != nil {
			continue
		}
		w.log.Warn("taking over this node's presence from an earlier run (or another process with the same node ID)", "old", string(e.Value()))
		rev, err = w.publish(ctx, key, val, e.Revision(), w.ttl)
		if err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("actor: join %s as %s: %w", w.bucket, w.node, err)
	}
	w.mu.Lock()
	w.mu.epoch, w.mu.presenceRev = epoch, rev
	w.mu.members[w.node] = member{epoch: epoch, namespaces: w.hosted}
	w.mu.Unlock()
	w.validUntil.Store(int64(sent + w.ttl - w.ttl/4))
	return nil
}

// publish writes key if its last revision is rev (0: none), with a TTL if
// ttl > 0; it returns the new revision.
func (w *owner) publish(ctx context.Context, key string, val []byte, rev uint64, ttl time.Duration) (uint64, error) {
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(rev)}
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	ack, err := w.js.PublishMsg(ctx, &nats.Msg{Subject: "$KV." + w.bucket + "." + key, Data: val}, opts...)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// isWrongSeq reports a failed compare-and-set.
func isWrongSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// loop renews the presence, follows the bucket and claims or hands over
// partitions, until the owner stops.
func (w *owner) loop(ctx context.Context, watch jetstream.KeyWatcher) {
	defer close(w.stopped)
	defer func() { _ = watch.Stop() }()
	renew := time.NewTicker(w.ttl / 4)
	defer renew.Stop()
	retry := time.NewTicker(250 * time.Millisecond)
	defer retry.Stop()
	updates := watch.Updates()
	rewatch := time.NewTimer(time.Hour)
	rewatch.Stop()
	defer rewatch.Stop()
	for {
		select {
		case <-rewatch.C:
			nw, err := w.kv.Watch(ctx, w.pfx+">")
			if err != nil {
				w.warn.warn(w.log, "ownership watcher", logErr, err)
				rewatch.Reset(500 * time.Millisecond)
				continue
			}
			_ = watch.Stop()
			watch, updates = nw, nw.Updates()
			continue
		case e, ok := <-updates:
			if !ok {
				// The watcher ended (the connection closed?): follow the
				// bucket again in a while.
				w.warn.warn(w.log, "ownership watcher ended; watching again")
				updates = nil
				rewatch.Reset(500 * time.Millisecond)
				continue
			}
			if e != nil {
				w.apply(e)
			}
			// Take every update waiting before acting on them.
			for drained := false; !drained; {
				select {
				case e, ok := <-updates:
					if !ok {
						drained = true
						break
					}
					if e != nil {
						w.apply(e)
					}
				default:
					drained = true
				}
			}
		case <-renew.C:
			w.renew(ctx)
		case <-retry.C:
		case <-w.kick:
		case k := <-w.handedOff:
			w.release(ctx, k)
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			return
		}
		w.recompute(ctx)
		w.rt.unpark(false)
		w.rt.expireForwards()
	}
}

// renew extends this node's presence. A renewal that finds the key
// changed means the presence expired: every claim is lost, and the node
// joins again with a new epoch.
func (w *owner) renew(ctx context.Context) {
	w.mu.RLock()
	epoch, rev, closing, purged := w.mu.epoch, w.mu.presenceRev, w.mu.closing, w.mu.purged
	w.mu.RUnlock()
	if purged || closing && epoch == "" {
		return
	}
	sent := time.Since(w.base)
	rctx, cancel := context.WithTimeout(ctx, w.ttl/4)
	nrev, err := w.publish(rctx, w.presenceKey(w.node), w.presenceValue(epoch), rev, w.ttl)
	cancel()
	switch {
	case err == nil:
		w.mu.Lock()
		if w.mu.epoch == epoch {
			w.mu.presenceRev = nrev
		}
		w.mu.Unlock()
		w.validUntil.Store(int64(sent + w.ttl - w.ttl/4))
	case isWrongSeq(err) && closing:
		w.loseAll() // stopping: no new epoch
	case isWrongSeq(err):
		w.log.Warn("this node's presence expired (paused, or cut off from NATS): its partitions are lost; joining again")
		w.loseAll()
		if err := w.join(ctx); err != nil {
			w.warn.warn(w.log, "join failed", logErr, err)
		}
	default:
		w.warn.warn(w.log, "presence renewal failed", logErr, err)
	}
}

// loseAll drops every claim: their objects hand their requests on.
func (w *owner) loseAll() {
	w.validUntil.Store(0)
	w.mu.Lock()
	for k, c := range w.mu.mine {
		c.lost.Store(true)
		delete(w.mu.mine, k)
	}
	w.mu.epoch = ""
	w.mu.Unlock()
	w.rt.handOffObjects(func(pkey) bool { return true })
}

// recompute claims the partitions this node should own and nobody owns,
// and starts handing over those another live node should own.
func (w *owner) recompute(ctx context.Context) {
	if !w.valid() {
		return
	}
	type want struct {
		k   pkey
		rec ownerRec
	}
	var claims []want
	var handoffs []*claim
	w.mu.RLock()
	if w.mu.epoch == "" || w.mu.closing {
		w.mu.RUnlock()
		return
	}
	epoch := w.mu.epoch
	for _, ns := range w.hosted {
		for part := 0; part < w.parts; part++ {
			k := pkey{ns, part}
			d := w.desiredLocked(k, "")
			if c := w.mu.mine[k]; c != nil {
				if d != w.node && d != "" && !c.releasing.Load() {
					handoffs = append(handoffs, c)
				}
				continue
			}
			if d != w.node {
				continue
			}
			rec := w.mu.recs[k]
			if w.aliveLocked(rec) && !(rec.node == w.node && rec.epoch == epoch) {
				continue // its owner hands it over first
			}
			claims = append(claims, want{k, rec})
		}
	}
	w.mu.RUnlock()

	for _, c := range handoffs {
		w.handOff(c)
	}
	if len(claims) == 0 {
		return
	}
	// Claim concurrently: one round trip for all of them.
	val := []byte(w.node + " " + epoch)
	futs := make([]jetstream.PubAckFuture, len(claims))
	for i, c := range claims {
		f, err := w.js.PublishMsgAsync(&nats.Msg{Subject: "$KV." + w.bucket + "." + w.ownerKey(c.k), Data: val},
			jetstream.WithExpectLastSequencePerSubject(c.rec.rev))
		if err != nil {
			w.warn.warn(w.log, "claim failed", logErr, err)
			continue
		}
		futs[i] = f
	}
	timeout := time.NewTimer(w.ttl / 2)
	defer timeout.Stop()
	got := 0
	for i, f := range futs {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			c := claims[i]
			w.mu.Lock()
			if w.mu.epoch == epoch && !w.mu.closing {
				w.mu.recs[c.k] = ownerRec{node: w.node, epoch: epoch, rev: ack.Sequence}
				w.mu.mine[c.k] = &claim{own: w, key: c.k, rev: ack.Sequence, fence: c.rec.rev != 0 && !c.rec.released}
				got++
			}
			w.mu.Unlock()
		case err := <-f.Err():
			if !isWrongSeq(err) {
				w.warn.warn(w.log, "claim failed", "partition", w.ownerKey(claims[i].k), logErr, err)
			}
		case <-timeout.C:
			w.warn.warn(w.log, "claims timed out")
			return
		case <-ctx.Done():
			return
		}
	}
	if got > 0 {
		w.log.Debug("claimed partitions", "count", got)
	}
}

// handOff starts handing claim c over: no request starts under it any
// more, its objects finish and close, then release writes the key.
func (w *owner) handOff(c *claim) {
	c.releasing.Store(true)
	k := c.key
	w.rt.wg.Add(1)
	go func() {
		defer w.rt.wg.Done()
		w.rt.drainPartition(k)
		select {
		case w.handedOff <- k:
		case <-w.stopped:
		}
	}()
}

// release marks a drained partition released, so its next owner takes it
// without a fence.
func (w *owner) release(ctx context.Context, k pkey) {
	w.mu.Lock()
	c := w.mu.mine[k]
	if c == nil || !c.releasing.Load() {
		w.mu.Unlock()
		return
	}
	delete(w.mu.mine, k)
	c.lost.Store(true)
	w.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, w.ttl/2)
	rev, err := w.publish(rctx, w.ownerKey(k), []byte(valReleased), c.rev, 0)
	cancel()
	if err != nil {
		// The next owner takes it once this node's presence expires, or
		// it was taken already.
		w.warn.warn(w.log, "release failed", "partition", w.ownerKey(k), logErr, err)
		return
	}
	w.mu.Lock()
	if old := w.mu.recs[k]; old.rev < rev {
		w.mu.recs[k] = ownerRec{rev: rev, released: true}
	}
	w.mu.Unlock()
}

// close hands every claim over (graceful stop) and removes the presence.
// The runtime's objects must be drained by then.
func (w *owner) close(ctx context.Context) {
	w.mu.Lock()
	w.mu.closing = true
	claims := make([]*claim, 0, len(w.mu.mine))
	for _, c := range w.mu.mine {
		c.releasing.Store(true)
		claims = append(claims, c)
	}
	w.mu.Unlock()
	w.rt.handOffObjects(func(pkey) bool { return true })
	w.rt.waitObjects(ctx)
	futs := make([]jetstream.PubAckFuture, len(claims))
	for i, c := range claims {
		c.lost.Store(true)
		f, err := w.js.PublishMsgAsync(&nats.Msg{Subject: "$KV." + w.bucket + "." + w.ownerKey(c.key), Data: []byte(valReleased)},
			jetstream.WithExpectLastSequencePerSubject(c.rev))
		if err == nil {
			futs[i] = f
		}
	}
	for _, f := range futs {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case <-f.Err():
		case <-ctx.Done():
		}
	}
	w.mu.Lock()
	clear(w.mu.mine)
	w.mu.purged = true // renewals stop: they would find the key gone and join again
	w.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, w.ttl)
	if err := w.kv.Purge(dctx, w.presenceKey(w.node)); err != nil {
		w.log.Warn("removing this node's presence failed; it expires", logErr, err)
	} else {
		// The other nodes forward to this one until they see it gone (at
		// about the time its own watcher does); then a little longer for
		// their forwards on the wire.
		select {
		case <-w.gone:
			t := time.NewTimer(closeGrace)
			select {
			case <-t.C:
			case <-dctx.Done():
			}
			t.Stop()
		case <-dctx.Done():
		}
	}
	cancel()
	w.validUntil.Store(0)
	w.cancel()
	<-w.stopped
}

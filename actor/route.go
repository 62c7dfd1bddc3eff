package actor

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Routing between the nodes of a deployment (docs/cluster.md): a request
// reaches any node hosting its namespace (a queue group); the owner of the
// object's partition runs it, any other node forwards it to the owner's
// own subject, and a request whose partition has no owner right now (its
// owner died, or hands it over) waits here, parked, until one claims it.

// parkWait bounds how long a request waits for its partition to get an
// owner; long enough to cover a failover (LeaseTTL plus a claim).
func (rt *Runtime) parkWait() time.Duration { return max(10*time.Second, 3*rt.cfg.LeaseTTL) }

// maxParked bounds the parked requests (their bytes count against
// MaxQueuedBytesTotal too).
const maxParked = 1 << 16

// Retry delays of an alarm firing that reached a node not owning its
// object: soon if another node owns it (the firing is redelivered to any
// node consuming the namespace), later if the partition has no owner yet.
const (
	firingRetryOwned  = 20 * time.Millisecond
	firingRetryNobody = 500 * time.Millisecond
)

type parked struct {
	ns    string
	id    ID
	env   envelope
	until time.Time
	avoid string // a node the request bounced from: not forwarded there again
	// until avoidUntil (by then its lease ran out, or it came back)
	avoidUntil time.Time
}

// bounceWait is how long a forwarded request is kept in case it bounces
// (its owner's subscription is gone: the node died). A bounce is the
// local server's immediate "no responders", so a round trip suffices.
const bounceWait = 2 * time.Second

// inflight is a forwarded request kept until bounceWait passes.
type inflight struct {
	ns   string
	id   ID
	env  envelope
	node string
	at   time.Time
}

// forwards holds the forwarded requests that may still bounce.
type forwards struct {
	mu     sync.Mutex
	inbox  string // reply subject prefix of forwards (this node's inbox)
	next   uint64
	out    map[uint64]inflight
	oldest time.Time
}

// parking holds requests waiting for an owner.
type parking struct {
	mu sync.Mutex
	q  []parked
}

// route delivers env to (ns, id): to its mailbox here if this node owns
// the object's partition, else to the owner, else it waits for one.
func (rt *Runtime) route(ns string, id ID, env envelope) {
	if rt.own == nil {
		rt.enqueue(ns, id, env)
		return
	}
	k := pkey{ns, rt.subj.Partition(ns, string(id))}
	c, remote := rt.own.route(k)
	switch {
	case c != nil:
		rt.enqueue(ns, id, env)
	case env.task != nil:
		// Work of this node's activation: it does not follow the object.
		rt.refuse(env, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "object %s/%s is no longer served by this node", ns, id))
	case env.firing != nil:
		delay := firingRetryNobody
		if remote != "" {
			delay = firingRetryOwned
		}
		if env.nak != nil {
			_ = env.nak(delay)
		}
	case remote != "" && env.hops < maxHops:
		rt.forward(remote, ns, id, env)
	default:
		rt.park(ns, id, env, "")
	}
}

// forward sends env's request to node, which owns (or is about to own) the
// object. The reply goes straight from there to the caller.
func (rt *Runtime) forward(node, ns string, id ID, env envelope) {
	m := env.msg
	h := make(nats.Header, len(m.Header)+1)
	for k, v := range m.Header {
		h[k] = v
	}
	h.Set(HeaderHops, strconv.Itoa(env.hops+1))
	if env.name != "" {
		h.Set(HeaderName, env.name)
	}
	// The owner replies to the caller (HeaderReply); the forward's own
	// reply subject is this node's, where the server answers "no
	// responders" at once if the owner's subscription is gone (it died
	// before its lease ran out): then the request waits here for the
	// partition's next owner instead of being lost.
	if m.Reply != "" {
		h.Set(HeaderReply, m.Reply)
	} else {
		h.Del(HeaderReply)
	}
	rt.fwd.mu.Lock()
	rt.fwd.next++
	tok := rt.fwd.next
	now := time.Now()
	if len(rt.fwd.out) == 0 {
		rt.fwd.oldest = now
	}
	rt.fwd.out[tok] = inflight{ns: ns, id: id, env: env, node: node, at: now}
	rt.fwd.mu.Unlock()
	fm := &nats.Msg{Subject: rt.subj.Own(node, ns, string(id)), Reply: rt.fwd.inbox + strconv.FormatUint(tok, 36), Header: h, Data: m.Data}
	rt.count.forwarded.Add(1)
	if err := rt.nc.PublishMsg(fm); err != nil {
		rt.takeForward(tok)
		rt.replyError(m, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "forward to the owner of %s/%s: %v", ns, id, err))
	}
}

// takeForward removes the forward tok from those that may bounce.
func (rt *Runtime) takeForward(tok uint64) (inflight, bool) {
	rt.fwd.mu.Lock()
	defer rt.fwd.mu.Unlock()
	f, ok := rt.fwd.out[tok]
	delete(rt.fwd.out, tok)
	return f, ok
}

// onBounce takes the server's "no responders" for a forward: the owner
// is gone; the request waits for the partition's next owner.
func (rt *Runtime) onBounce(m *nats.Msg) {
	tok, err := strconv.ParseUint(strings.TrimPrefix(m.Subject, rt.fwd.inbox), 36, 64)
	if err != nil || m.Header.Get("Status") != "503" {
		return
	}
	f, ok := rt.takeForward(tok)
	if !ok {
		return
	}
	rt.count.bounced.Add(1)
	rt.park(f.ns, f.id, f.env, f.node)
}

// expireForwards forgets the forwards that can no longer bounce.
func (rt *Runtime) expireForwards() {
	cut := time.Now().Add(-bounceWait)
	rt.fwd.mu.Lock()
	defer rt.fwd.mu.Unlock()
	if len(rt.fwd.out) == 0 || rt.fwd.oldest.After(cut) {
		return
	}
	oldest := time.Now()
	for tok, f := range rt.fwd.out {
		if f.at.Before(cut) {
			delete(rt.fwd.out, tok)
		} else if f.at.Before(oldest) {
			oldest = f.at
		}
	}
	rt.fwd.oldest = oldest
}

// park keeps env until its partition has an owner (unpark), or refuses it
// after parkWait.
func (rt *Runtime) park(ns string, id ID, env envelope, avoid string) {
	if env.size > 0 && rt.count.queuedBytes.Load()+env.size > rt.cfg.MaxQueuedBytesTotal {
		rt.overloaded(env, overloadTotal, ns, id)
		return
	}
	rt.parked.mu.Lock()
	if len(rt.parked.q) >= maxParked {
		rt.parked.mu.Unlock()
		rt.overloaded(env, overloadCount, ns, id)
		return
	}
	now := time.Now()
	rt.parked.q = append(rt.parked.q, parked{ns: ns, id: id, env: env, until: now.Add(rt.parkWait()),
		avoid: avoid, avoidUntil: now.Add(rt.cfg.LeaseTTL + time.Second)})
	rt.parked.mu.Unlock()
	rt.count.queuedBytes.Add(env.size)
	rt.count.parked.Add(1)
}

// unpark routes the parked requests again (ownership changed, or time
// passed): to their owner once they have one; those whose partition still
// has none stay, until parkWait (or, with final, are refused now).
func (rt *Runtime) unpark(final bool) {
	rt.parked.mu.Lock()
	q := rt.parked.q
	rt.parked.q = nil
	rt.parked.mu.Unlock()
	if len(q) == 0 {
		return
	}
	now := time.Now()
	var keep []parked
	for _, p := range q {
		k := pkey{p.ns, rt.subj.Partition(p.ns, string(p.id))}
		c, remote := rt.own.route(k)
		if p.avoid != "" && now.After(p.avoidUntil) {
			p.avoid = ""
		}
		if c == nil && (remote == "" || remote == p.avoid) && now.Before(p.until) && !final {
			keep = append(keep, p)
			continue
		}
		rt.count.queuedBytes.Add(-p.env.size)
		rt.count.parked.Add(-1)
		switch {
		case c != nil:
			rt.enqueue(p.ns, p.id, p.env)
		case remote != "" && remote != p.avoid:
			// Also past maxHops: the view changed since it was parked.
			rt.forward(remote, p.ns, p.id, p.env)
		case final:
			rt.refuse(p.env, ErrClosed)
		default:
			rt.refuse(p.env, Errorf(http.StatusServiceUnavailable, CodeUnavailable,
				"no node took over the partition of %s/%s within %v; the request was not run", p.ns, p.id, rt.parkWait()))
		}
	}
	if len(keep) > 0 {
		rt.parked.mu.Lock()
		rt.parked.q = append(keep, rt.parked.q...)
		rt.parked.mu.Unlock()
	}
}

// onOwn takes a request forwarded by another node:
// <prefix>.own.<node>.<ns>.<id>.
func (rt *Runtime) onOwn(m *nats.Msg) {
	<-rt.ownReady
	// The reply subject is the forwarding node's; the caller's is here.
	m.Reply = m.Header.Get(HeaderReply)
	if !rt.checkReply(m) {
		return
	}
	if rt.own == nil { // Start failed after subscribing
		rt.replyError(m, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "this node is not serving"))
		return
	}
	ns, oid, ok := rt.subjectID(m)
	if !ok {
		return
	}
	name := m.Header.Get(HeaderName)
	if name != "" {
		if err := ValidName(name); err != nil {
			rt.replyError(m, fmt.Errorf("header %s: %w", HeaderName, err))
			return
		}
		if NameID(ns, name) != oid {
			rt.replyError(m, Errorf(http.StatusBadRequest, CodeInvalidID, "header %s does not match the object ID", HeaderName))
			return
		}
	}
	rt.mu.Lock()
	_, known := rt.mu.namespaces[ns]
	rt.mu.Unlock()
	if !known {
		rt.replyError(m, fmt.Errorf("%w: %q", ErrUnknownNamespace, ns))
		return
	}
	hops, err := strconv.Atoi(m.Header.Get(HeaderHops))
	if err != nil || hops < 1 {
		hops = 1
	}
	env := envelope{msg: m, name: name, size: msgSize(m), at: rt.clock.Now(), hops: min(hops, maxHops)}
	rt.route(ns, oid, env)
}

// handOffObjects asks the active objects of the partitions match accepts
// to hand their requests on and close.
func (rt *Runtime) handOffObjects(match func(pkey) bool) []chan struct{} {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var done []chan struct{}
	for _, o := range rt.mu.objects {
		if match(o.pk) {
			select {
			case o.handoff <- struct{}{}:
			default:
			}
			done = append(done, o.done)
		}
	}
	for key, d := range rt.mu.exiting {
		ns, id, _ := strings.Cut(key, ".")
		if match(pkey{ns, rt.subj.Partition(ns, id)}) {
			done = append(done, d)
		}
	}
	return done
}

// drainPartition hands the objects of k on and waits until they closed.
func (rt *Runtime) drainPartition(k pkey) {
	for {
		done := rt.handOffObjects(func(p pkey) bool { return p == k })
		if len(done) == 0 {
			return
		}
		for _, d := range done {
			select {
			case <-d:
			case <-rt.ctx.Done():
				return
			}
		}
	}
}

// waitObjects hands every object on and waits until all closed, or ctx
// ends.
func (rt *Runtime) waitObjects(ctx context.Context) {
	for {
		done := rt.handOffObjects(func(pkey) bool { return true })
		if len(done) == 0 {
			return
		}
		for _, d := range done {
			select {
			case <-d:
			case <-ctx.Done():
				return
			}
		}
	}
}

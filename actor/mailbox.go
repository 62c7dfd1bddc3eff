package actor

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/alarms"
)

// envelope is a request or an alarm firing waiting in a mailbox.
type envelope struct {
	msg    *nats.Msg
	name   string
	firing *alarms.Firing            // an alarm firing instead of a request
	ack    func() error              // acknowledges the firing
	nak    func(time.Duration) error // asks for the firing again after a delay
	task   *task                     // exclusive work asked by State.BlockConcurrencyWhile from outside a handler
	hops   int                       // times the request was forwarded between nodes
	size   int64                     // bytes counted against the queue limits (requests only)
	at     time.Time                 // when it was queued (runtime clock)
}

// msgSize is what a request costs while it waits: its subject, reply,
// headers and body.
func msgSize(m *nats.Msg) int64 {
	n := len(m.Subject) + len(m.Reply) + len(m.Data)
	for k, vs := range m.Header {
		n += len(k) + 4
		for _, v := range vs {
			n += len(v) + len(k) + 4
		}
	}
	return int64(n)
}

// mailbox is an object's queue of waiting requests and firings. The runtime
// pushes (under its lock); the object's goroutine pops. Its storage grows
// with what waits, so an object that has just been created costs little
// until requests queue up. wake holds a token while the queue is not empty.
type mailbox struct {
	wake chan struct{}

	mu struct {
		sync.Mutex
		q     []envelope
		head  int
		bytes int64
	}
}

func newMailbox() *mailbox { return &mailbox{wake: make(chan struct{}, 1)} }

// push queues env unless the queue holds maxCount envelopes or env's size
// would take it past maxBytes; it reports which limit refused it.
func (mb *mailbox) push(env envelope, maxCount int, maxBytes int64) overloadReason {
	mb.mu.Lock()
	n := len(mb.mu.q) - mb.mu.head
	switch {
	case n >= maxCount:
		mb.mu.Unlock()
		return overloadCount
	case env.size > 0 && mb.mu.bytes+env.size > maxBytes:
		mb.mu.Unlock()
		return overloadBytes
	}
	mb.mu.q = append(mb.mu.q, env)
	mb.mu.bytes += env.size
	mb.mu.Unlock()
	mb.signal()
	return overloadNone
}

// pop takes the oldest envelope. Another token is left in wake if more wait.
func (mb *mailbox) pop() (envelope, bool) {
	mb.mu.Lock()
	if mb.mu.head == len(mb.mu.q) {
		mb.mu.Unlock()
		return envelope{}, false
	}
	env := mb.mu.q[mb.mu.head]
	mb.mu.q[mb.mu.head] = envelope{}
	mb.mu.head++
	mb.mu.bytes -= env.size
	more := mb.mu.head < len(mb.mu.q)
	if !more {
		mb.mu.q, mb.mu.head = mb.mu.q[:0], 0
		if cap(mb.mu.q) > 64 {
			mb.mu.q = nil // give back what a burst grew
		}
	} else if mb.mu.head > 1024 && mb.mu.head*2 > len(mb.mu.q) {
		mb.mu.q = append(mb.mu.q[:0:0], mb.mu.q[mb.mu.head:]...)
		mb.mu.head = 0
	}
	mb.mu.Unlock()
	if more {
		mb.signal()
	}
	return env, true
}

func (mb *mailbox) signal() {
	select {
	case mb.wake <- struct{}{}:
	default:
	}
}

// len returns how many envelopes wait.
func (mb *mailbox) len() int {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return len(mb.mu.q) - mb.mu.head
}

// overloadReason tells which queue limit refused a request.
type overloadReason int

const (
	overloadNone   overloadReason = iota
	overloadCount                 // too many requests queued at the object
	overloadBytes                 // too much data queued at the object
	overloadTotal                 // too much data queued in the runtime
	overloadWait                  // queued too long
	overloadActive                // too many objects active or activating
)

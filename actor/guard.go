package actor

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReplyPrefix is the reply prefix a runtime accepts by default: the
// inbox prefix of nats.go and of every other NATS client library.
const DefaultReplyPrefix = "_INBOX."

// maxReplyLen bounds a reply subject.
const maxReplyLen = 1024

// reservedPrefixes are the subjects a runtime's connection publishes to for
// its own work (JetStream API, KV and object stores, system account). No
// allowed reply prefix may overlap them.
var reservedPrefixes = []string{"$JS.", "$KV.", "$O.", "$SYS.", "$JSC.", "$NRG.", "$G."}

// checkReplyPrefixes validates Config.ReplyPrefixes against the runtime's
// own subject prefix.
func checkReplyPrefixes(prefixes []string, own string) error {
	if len(prefixes) == 0 {
		return errors.New("actor: Config.ReplyPrefixes is empty")
	}
	for _, p := range prefixes {
		if len(p) < 2 || !strings.HasSuffix(p, ".") {
			return fmt.Errorf("actor: reply prefix %q must be one or more tokens ending with '.'", p)
		}
		for _, tok := range strings.Split(strings.TrimSuffix(p, "."), ".") {
			if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n*>") {
				return fmt.Errorf("actor: reply prefix %q holds an empty or wildcard token", p)
			}
		}
		if strings.HasPrefix(p, "$") {
			return fmt.Errorf("actor: reply prefix %q is a system subject", p)
		}
		for _, r := range append([]string{own + "."}, reservedPrefixes...) {
			if strings.HasPrefix(p, r) || strings.HasPrefix(r, p) {
				return fmt.Errorf("actor: reply prefix %q overlaps the runtime's own subjects %q", p, r+">")
			}
		}
	}
	return nil
}

// replyAllowed reports why reply may not be published to, or "" if it may:
// it must lie under one of the allowed prefixes, be a literal subject (no
// wildcard, no empty token, no white space or control character) and not
// be too long.
func replyAllowed(reply string, prefixes []string) string {
	if reply == "" {
		return "no reply subject"
	}
	if len(reply) > maxReplyLen {
		return "reply subject too long"
	}
	ok := false
	for _, p := range prefixes {
		if len(reply) > len(p) && strings.HasPrefix(reply, p) {
			ok = true
			break
		}
	}
	if !ok {
		return "reply subject outside the allowed reply prefixes"
	}
	prev := byte('.')
	for i := 0; i < len(reply); i++ {
		c := reply[i]
		switch {
		case c <= ' ' || c == 0x7f:
			return "reply subject holds white space or a control character"
		case c == '.' && prev == '.':
			return "reply subject has an empty token"
		case (c == '*' || c == '>') && prev == '.' && (i+1 == len(reply) || reply[i+1] == '.'):
			return "reply subject holds a wildcard"
		}
		prev = c
	}
	if prev == '.' {
		return "reply subject has an empty token"
	}
	return ""
}

// limitedLog logs at most one message per interval and counts the ones it
// held back, so that a flood of bad requests cannot flood the logs.
type limitedLog struct {
	every time.Duration

	mu struct {
		sync.Mutex
		last       time.Time
		suppressed int
	}
}

func (l *limitedLog) warn(log *slog.Logger, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if !l.mu.last.IsZero() && now.Sub(l.mu.last) < l.every {
		l.mu.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.mu.suppressed
	l.mu.last, l.mu.suppressed = now, 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Warn(msg, args...)
}

// Stats counts what a runtime refused and holds; see Runtime.Stats.
type Stats struct {
	// Active objects (holding their files), objects waiting for a slot,
	// and the cap (Config.MaxActive).
	Active, Activating, MaxActive int
	// QueuedBytes is the size of the requests waiting in mailboxes.
	QueuedBytes int64
	// RefusedReplies counts requests not run because their reply subject
	// was missing or not allowed (nothing was published for them).
	RefusedReplies uint64
	// Requests refused with "overloaded", by reason: too many requests
	// queued at the object, too much data queued (at the object or in the
	// runtime), queued too long, too many objects active or activating.
	OverloadedCount, OverloadedBytes, OverloadedWait, OverloadedActive uint64
	// HandlerTimeouts counts handlers (requests and alarms) that ran past
	// Config.HandlerTimeout; StuckHandlers those still running past it.
	HandlerTimeouts uint64
	StuckHandlers   int64
	// Forwarded counts the requests sent on to the node owning their
	// object; Parked is how many wait now for their partition to get an
	// owner (docs/cluster.md).
	Forwarded uint64
	Parked    int64
	// Bounced counts the forwards whose owner was gone (it died before its
	// lease ran out); they waited for the next owner instead.
	Bounced uint64
	// Owned is how many (namespace, partition) pairs this node owns now.
	Owned int
	// Fences counts the fence entries appended to objects' journals at
	// their first activation after a takeover.
	Fences uint64
}

// counters are the runtime's atomic counters behind Stats.
type counters struct {
	queuedBytes     atomic.Int64
	activating      atomic.Int64
	refusedReplies  atomic.Uint64
	overloaded      [overloadActive + 1]atomic.Uint64
	handlerTimeouts atomic.Uint64
	stuck           atomic.Int64
	forwarded       atomic.Uint64 // requests sent on to their owner
	bounced         atomic.Uint64 // forwards whose owner was gone
	parked          atomic.Int64  // requests waiting for their partition to get an owner
	fences          atomic.Uint64 // fence entries appended after takeovers
}

// Stats returns the runtime's counters.
func (rt *Runtime) Stats() Stats {
	c := &rt.count
	return Stats{
		Active:           int(len(rt.slots)),
		Activating:       int(c.activating.Load()),
		MaxActive:        cap(rt.slots),
		QueuedBytes:      c.queuedBytes.Load(),
		RefusedReplies:   c.refusedReplies.Load(),
		OverloadedCount:  c.overloaded[overloadCount].Load(),
		OverloadedBytes:  c.overloaded[overloadBytes].Load() + c.overloaded[overloadTotal].Load(),
		OverloadedWait:   c.overloaded[overloadWait].Load(),
		OverloadedActive: c.overloaded[overloadActive].Load(),
		HandlerTimeouts:  c.handlerTimeouts.Load(),
		StuckHandlers:    c.stuck.Load(),
		Forwarded:        c.forwarded.Load(),
		Bounced:          c.bounced.Load(),
		Parked:           c.parked.Load(),
		Fences:           c.fences.Load(),
		Owned:            rt.owned(),
	}
}

// cutLog cuts s to at most n bytes for a log line (slog's handlers
// escape what they print).
func cutLog(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

package actor

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// entry is a bucket entry as the ownership watcher receives it.
type entry struct {
	key string
	val string
	rev uint64
	op  jetstream.KeyValueOp
}

func (e entry) Bucket() string                  { return "OPENDO_OWNERS" }
func (e entry) Key() string                     { return e.key }
func (e entry) Value() []byte                   { return []byte(e.val) }
func (e entry) Revision() uint64                { return e.rev }
func (e entry) Created() time.Time              { return time.Time{} }
func (e entry) Delta() uint64                   { return 0 }
func (e entry) Operation() jetstream.KeyValueOp { return e.op }

// TestOwnPresenceOldExpiry: a node paused past its lease joins again with a
// new epoch, and only then reads the expiry of its old presence from the
// watcher. That old event must not remove the node from its own view of the
// members: it did, and the node never claimed a partition again while the
// others, who saw it join, handed its partitions over to it (found by
// TestLinearizability: objects unanswered for good after a SIGSTOP).
func TestOwnPresenceOldExpiry(t *testing.T) {
	w := &owner{node: "n2", pfx: "opendo.", hosted: []string{"lin"}, parts: 4, gone: make(chan struct{})}
	w.mu.members = map[string]member{}
	w.mu.recs = map[pkey]ownerRec{}
	w.mu.mine = map[pkey]*claim{}
	key := w.presenceKey("n2")

	// The other node, and this node's join after the pause (revision 9).
	w.apply(entry{key: w.presenceKey("n1"), val: "e1 lin", rev: 3, op: jetstream.KeyValuePut})
	w.mu.epoch, w.mu.presenceRev = "e2new", 9
	w.mu.members["n2"] = member{epoch: "e2new", namespaces: w.hosted}

	// Queued while paused: the old presence's renewal and its expiry.
	w.apply(entry{key: key, val: "e2old lin", rev: 4, op: jetstream.KeyValuePut})
	w.apply(entry{key: key, rev: 7, op: jetstream.KeyValuePurge})
	if m, ok := w.mu.members["n2"]; !ok || m.epoch != "e2new" {
		t.Fatalf("after old events of its own presence, members[n2] = %+v, %v; want epoch e2new", m, ok)
	}
	// Its own renewal changes nothing.
	w.apply(entry{key: key, val: "e2new lin", rev: 10, op: jetstream.KeyValuePut})
	if m := w.mu.members["n2"]; m.epoch != "e2new" {
		t.Fatalf("after a renewal, members[n2] = %+v", m)
	}
	if d := w.desiredLocked(pkey{"lin", 0}, ""); d == "" {
		t.Fatal("no desired owner")
	}
	// An expiry after the last write does remove it: its claims are dead.
	w.apply(entry{key: key, rev: 11, op: jetstream.KeyValueDelete})
	if _, ok := w.mu.members["n2"]; ok {
		t.Fatal("the expiry of the current presence left n2 among the members")
	}
	if _, ok := w.mu.members["n1"]; !ok {
		t.Fatal("n1 vanished")
	}
}

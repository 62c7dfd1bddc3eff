package actor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/examples/counter"
	"github.com/opendo/opendo/internal/natstest"
)

// The users of docs/operations.md ("Subject permissions"): a runtime node,
// a client that may call the counter namespace, and the reply-only user of
// docs/security.md.
func nodeUser() *server.User {
	return &server.User{Username: "node", Password: "node-pw", Permissions: &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"opendo.journal.>", "opendo.alarm.>", "opendo.own.>", "$JS.API.>", "$O.OPENDO_SNAPSHOTS.>", "$KV.OPENDO_OWNERS.>", "_INBOX.>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"opendo.req.*.*", "opendo.name.*", "opendo.own.>", "_INBOX.>"}},
		Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: 2 * time.Minute},
	}}
}

func clientUser() *server.User {
	return &server.User{Username: "client", Password: "client-pw", Permissions: &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"opendo.req.counter.*", "opendo.name.counter"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}}
}

func replierUser() *server.User {
	return &server.User{Username: "replier", Password: "replier-pw", Permissions: &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		Subscribe: &server.SubjectPermission{Deny: []string{">"}},
	}}
}

// secureEnv is a runtime serving counters on a server with the users of
// docs/operations.md.
type secureEnv struct {
	srv    *natstest.Server
	rt     *actor.Runtime
	js     jetstream.JetStream // the node's
	client *nats.Conn          // the client user's
	calls  *actor.Client       // on client
}

func newSecureEnv(t *testing.T, mod func(*actor.Config)) *secureEnv {
	t.Helper()
	srv := natstest.Start(t, natstest.WithUsers(nodeUser(), clientUser(), replierUser()))
	node := srv.ConnAs(t, "node", "node-pw")
	cfg := actor.Config{Conn: node, DataDir: t.TempDir()}
	if mod != nil {
		mod(&cfg)
	}
	rt, err := actor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Register(counter.Namespace, counter.New); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeRuntime(t, rt) })
	js, err := jetstream.New(node)
	if err != nil {
		t.Fatal(err)
	}
	cl := srv.ConnAs(t, "client", "client-pw")
	calls, err := actor.NewClient(cl, actor.ClientConfig{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &secureEnv{srv: srv, rt: rt, js: js, client: cl, calls: calls}
}

func (e *secureEnv) incr(t *testing.T, name string) string {
	t.Helper()
	resp, err := e.calls.Namespace(counter.Namespace).Get(name).Do(t.Context(), "incr", nil)
	if err != nil {
		t.Fatalf("incr %s: %v", name, err)
	}
	return string(resp.Body)
}

func (e *secureEnv) get(t *testing.T, name string) string {
	t.Helper()
	resp, err := e.calls.Namespace(counter.Namespace).Get(name).Do(t.Context(), "get", nil)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return string(resp.Body)
}

// streamState returns the message count and last sequence of a stream.
func streamState(t *testing.T, js jetstream.JetStream, name string) (uint64, uint64) {
	t.Helper()
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("stream %s info: %v", name, err)
	}
	return info.State.Msgs, info.State.LastSeq
}

// TestReplySubjectAttacks sends requests whose reply subjects point at the
// runtime's own streams, another object's journal, its request subjects
// and system subjects, as the client user of docs/operations.md (who may
// not publish there itself). None is run, nothing is published for them,
// and every object and stream is intact.
func TestReplySubjectAttacks(t *testing.T) {
	e := newSecureEnv(t, nil)
	const victim, bystander = "victim", "bystander"
	for range 3 {
		e.incr(t, bystander)
	}
	jrMsgs, jrLast := streamState(t, e.js, "OPENDO_JOURNAL")
	subj := e.rt.Subjects()
	bid := string(actor.NameID(counter.Namespace, bystander))
	vid := string(actor.NameID(counter.Namespace, victim))

	// The client itself is refused by the server where it would publish.
	errs := make(chan error, 8)
	own := e.srv.ConnWith(t, nats.UserInfo("client", "client-pw"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err := own.Publish("$JS.API.STREAM.PURGE.OPENDO_JOURNAL", nil); err != nil {
		t.Fatal(err)
	}
	_ = own.Flush()
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("direct publish: got %v, want a permissions violation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not refuse the client's direct publish to the JetStream API")
	}

	replies := []string{
		"$JS.API.STREAM.PURGE.OPENDO_JOURNAL",
		"$JS.API.STREAM.DELETE.OPENDO_JOURNAL",
		"$JS.API.STREAM.DELETE.OPENDO_ALARMS",
		"$JS.API.STREAM.PURGE.OBJ_OPENDO_SNAPSHOTS",
		subj.Journal(counter.Namespace, bid),       // another object's journal
		subj.Journal(counter.Namespace, vid),       // its own journal
		subj.Request(counter.Namespace, bid),       // a request loop
		subj.Name(counter.Namespace),               // a request loop by name
		"$KV.leases.p1", "$O.OPENDO_SNAPSHOTS.C.x", // stores
		"$SYS.REQ.SERVER.PING", "$JSC.x",
		"opendo.alarm.0.counter." + bid,
		"_INBOX.*", "_INBOX.>", "_INBOX.a.*.b", "_INBOX..x", "_INBOX.x.", "_INBOX.", "_INBOX",
		"_INBOX." + strings.Repeat("x", 2000),
		"", // no reply subject
	}
	for _, reply := range replies {
		for _, m := range []*nats.Msg{
			{Subject: subj.Name(counter.Namespace), Reply: reply, Header: nats.Header{actor.HeaderName: {victim}, actor.HeaderPath: {"incr"}}},
			{Subject: subj.Request(counter.Namespace, vid), Reply: reply, Header: nats.Header{actor.HeaderPath: {"incr"}}},
		} {
			if err := e.client.PublishMsg(m); err != nil {
				t.Fatalf("publish with reply %q: %v", reply, err)
			}
		}
	}
	// Each subscription handles its messages in order: once these are
	// answered, every attack has been looked at.
	if got := e.get(t, victim); got != "0" {
		t.Fatalf("victim = %s after the attacks, want 0: a request with a bad reply subject ran", got)
	}
	resp, err := e.calls.Namespace(counter.Namespace).ByID(actor.ID(vid)).Do(t.Context(), "get", nil)
	if err != nil || string(resp.Body) != "0" {
		t.Fatalf("victim by id = %v, %v; want 0", resp, err)
	}
	if got, want := e.rt.Stats().RefusedReplies, uint64(2*len(replies)); got != want {
		t.Errorf("RefusedReplies = %d, want %d", got, want)
	}
	if got := e.get(t, bystander); got != "3" {
		t.Fatalf("bystander = %s, want 3", got)
	}
	if msgs, last := streamState(t, e.js, "OPENDO_JOURNAL"); msgs != jrMsgs || last != jrLast {
		t.Fatalf("journal stream: %d messages up to seq %d, want %d up to %d", msgs, last, jrMsgs, jrLast)
	}
	streamState(t, e.js, "OPENDO_ALARMS")
	if got := e.incr(t, bystander); got != "4" {
		t.Fatalf("bystander after the attacks: incr = %s, want 4", got)
	}
}

// TestReplyPrefixes: a client with a custom inbox prefix is served once
// the runtime allows it; prefixes that overlap the runtime's own subjects
// are refused at New.
func TestReplyPrefixes(t *testing.T) {
	for _, bad := range [][]string{{}, {""}, {"_INBOX"}, {"$JS."}, {"$JS.API."}, {"opendo."}, {"opendo.req."}, {"opendo.x."}, {"_INBOX.*."}, {"a..b."}, {"$KV."}} {
		_, err := actor.New(actor.Config{Conn: &nats.Conn{}, DataDir: t.TempDir(), ReplyPrefixes: bad})
		if err == nil {
			t.Errorf("ReplyPrefixes %q accepted", bad)
		}
	}
	srv := natstest.Start(t)
	e := newEnv(t, srv, "", func(c *actor.Config) { c.ReplyPrefixes = []string{"_INBOX.", "myapp.replies."} })
	nc := srv.ConnWith(t, nats.CustomInboxPrefix("myapp.replies"))
	c, err := actor.NewClient(nc, actor.ClientConfig{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Namespace(counter.Namespace).Get("x").Do(t.Context(), "incr", nil)
	if err != nil || string(resp.Body) != "1" {
		t.Fatalf("incr with a custom inbox prefix: %v, %v", resp, err)
	}
	// Without the prefix allowed, the call gets no answer at all.
	other := srv.ConnWith(t, nats.CustomInboxPrefix("elsewhere"))
	c2, _ := actor.NewClient(other, actor.ClientConfig{})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := c2.Namespace(counter.Namespace).Get("x").Do(ctx, "incr", nil); err == nil {
		t.Fatal("a reply went to a prefix that is not allowed")
	}
	if got := e.mustCall(t, counter.Namespace, "x", "get", ""); got != "1" {
		t.Fatalf("x = %s, want 1: the refused request ran", got)
	}
}

// TestReplyConn: with Config.ReplyConn on the reply-only user of
// docs/security.md, calls work, and that connection cannot reach
// JetStream even if a reply subject got past the check.
func TestReplyConn(t *testing.T) {
	srv := natstest.Start(t, natstest.WithUsers(nodeUser(), clientUser(), replierUser()))
	errs := make(chan error, 8)
	replier := srv.ConnWith(t, nats.UserInfo("replier", "replier-pw"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	node := srv.ConnAs(t, "node", "node-pw")
	rt, err := actor.New(actor.Config{Conn: node, ReplyConn: replier, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Register(counter.Namespace, counter.New); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeRuntime(t, rt) })
	calls, err := actor.NewClient(srv.ConnAs(t, "client", "client-pw"), actor.ClientConfig{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		resp, err := calls.Namespace(counter.Namespace).Get("c").Do(t.Context(), "incr", nil)
		if err != nil || string(resp.Body) != string(rune('0'+i)) {
			t.Fatalf("incr %d: %v, %v", i, resp, err)
		}
	}
	js, err := jetstream.New(node)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := streamState(t, js, "OPENDO_JOURNAL")
	// What a bug in the reply check would let through is refused by the
	// server.
	if err := replier.Publish("$JS.API.STREAM.PURGE.OPENDO_JOURNAL", nil); err != nil {
		t.Fatal(err)
	}
	_ = replier.Flush()
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("got %v, want a permissions violation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reply connection's publish to the JetStream API was not refused")
	}
	if got, _ := streamState(t, js, "OPENDO_JOURNAL"); got != msgs {
		t.Fatalf("journal has %d messages, want %d", got, msgs)
	}
}

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/bus"
)

const (
	badNS             = "counter"
	badBystander      = "bystander"
	badBystanderIncrs = 3
	badJournalStream  = "OPENDO_JOURNAL"
	badMaxPayload     = 8 << 20                // docs/protocol.md: max_payload of opendo dev
	badAnswerTimeout  = 5 * time.Second        // a request that must be answered
	badSilenceTimeout = 300 * time.Millisecond // a request that must get no answer
	badRawTimeout     = 5 * time.Second        // one exchange on a raw TCP connection
	badSenderHeader   = "Badinput-Sender"      // marks the test's own requests (passed to the handler, ignored)
	badSenderValue    = "e2e"
)

// TestBadInputAgainstDev sends malformed, hostile and oversized input to a
// real `opendo dev` over plain NATS and raw TCP and checks that each gets
// the result docs/protocol.md documents, that it changes nothing (the
// journal grows by exactly the writes that were meant to succeed) and that
// a bystander object keeps its value throughout.
func TestBadInputAgainstDev(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the opendo binary; skipped with -short")
	}
	e := newBadEnv(t)
	for i := 1; i <= badBystanderIncrs; i++ {
		if got, want := e.incrByID(t, badBystander), strconv.Itoa(i); got != want {
			t.Fatalf("bystander incr %d = %s, want %s", i, got, want)
		}
	}
	startMsgs, startLast := e.journal(t)
	if startMsgs != badBystanderIncrs || startLast != badBystanderIncrs {
		t.Fatalf("journal stream after the bystander's increments: %d messages up to seq %d, want %d: one per increment",
			startMsgs, startLast, badBystanderIncrs)
	}

	t.Run("valid names", e.validNames)
	t.Run("invalid names", e.invalidNames)
	t.Run("names with edge spaces", e.edgeSpaceNames)
	t.Run("ids", e.badIDs)
	t.Run("namespaces", e.unknownNamespaces)
	t.Run("headers", e.badHeaders)
	t.Run("reply subjects", e.badReplies)
	t.Run("max payload", e.oversized)
	t.Run("raw tcp", e.rawProtocol)

	if got, want := e.getByID(t, badBystander), strconv.Itoa(badBystanderIncrs); got != want {
		t.Errorf("bystander after the table = %s, want %s", got, want)
	}
	if got, want := e.incrByID(t, badBystander), strconv.Itoa(badBystanderIncrs+1); got != want {
		t.Errorf("bystander incr after the table = %s, want %s", got, want)
	}
	e.writes++
	msgs, last := e.journal(t)
	if msgs != startMsgs+e.writes || last != startLast+e.writes {
		t.Errorf("journal stream: %d messages up to seq %d, want %d up to %d (%d successful writes after %d messages up to %d)",
			msgs, last, startMsgs+e.writes, startLast+e.writes, e.writes, startMsgs, startLast)
	}
}

// badEnv is one `opendo dev` process and the plain connection the cases
// use to reach it.
type badEnv struct {
	dev    *devProc
	nc     *nats.Conn
	c      *actor.Client
	js     jetstream.JetStream
	subj   bus.Subjects
	writes uint64 // journal entries the cases so far were expected to append
}

func newBadEnv(t *testing.T) *badEnv {
	t.Helper()
	p := startDev(t, "bad input", t.TempDir())
	nc := connect(t, p.URL)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	subj, err := bus.NewSubjects("", 0)
	if err != nil {
		t.Fatal(err)
	}
	return &badEnv{dev: p, nc: nc, c: newClient(t, nc), js: js, subj: subj}
}

// run runs f as the subtest name and checks afterwards that the journal
// grew by exactly writes entries and that the bystander kept its value.
func (e *badEnv) run(t *testing.T, name string, writes uint64, f func(t *testing.T)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		msgs, last := e.journal(t)
		f(t)
		gotMsgs, gotLast := e.journal(t)
		if gotMsgs != msgs+writes || gotLast != last+writes {
			t.Errorf("journal stream: %d messages up to seq %d, want %d up to %d (%d writes)",
				gotMsgs, gotLast, msgs+writes, last+writes, writes)
		}
		if got, want := e.getByID(t, badBystander), strconv.Itoa(badBystanderIncrs); got != want {
			t.Errorf("bystander = %s, want %s", got, want)
		}
	})
	e.writes += writes
}

// journal returns the message count and last sequence of the journal stream.
func (e *badEnv) journal(t *testing.T) (uint64, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), badAnswerTimeout)
	defer cancel()
	s, err := e.js.Stream(ctx, badJournalStream)
	if err != nil {
		t.Fatalf("stream %s: %v", badJournalStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", badJournalStream, err)
	}
	return info.State.Msgs, info.State.LastSeq
}

// byName is a request to the object called name, on the by-name subject.
func (e *badEnv) byName(name, path string) *nats.Msg {
	m := nats.NewMsg(e.subj.Name(badNS))
	m.Header[actor.HeaderName] = []string{name}
	m.Header[actor.HeaderPath] = []string{path}
	m.Header[badSenderHeader] = []string{badSenderValue}
	return m
}

// byID is a request to the object with ID id, on the by-ID subject.
func (e *badEnv) byID(id, path string) *nats.Msg {
	m := nats.NewMsg(e.subj.Request(badNS, id))
	m.Header[actor.HeaderPath] = []string{path}
	m.Header[badSenderHeader] = []string{badSenderValue}
	return m
}

// request sends m and waits badAnswerTimeout for the reply.
func (e *badEnv) request(t *testing.T, m *nats.Msg) (*nats.Msg, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), badAnswerTimeout)
	defer cancel()
	return e.nc.RequestMsgWithContext(ctx, m)
}

// getByName reads the counter name through the by-name subject: it is
// handled after every message sent there before it.
func (e *badEnv) getByName(t *testing.T, name string) string {
	t.Helper()
	reply, err := e.request(t, e.byName(name, "get"))
	return badOKBody(t, "get "+strconv.Quote(name)+" by name", reply, err)
}

// getByID reads the counter name with actor.Client, which addresses it by
// ID (and sends its name): handled after every message sent to that ID.
func (e *badEnv) getByID(t *testing.T, name string) string {
	t.Helper()
	return e.callByID(t, name, "get")
}

func (e *badEnv) incrByID(t *testing.T, name string) string {
	t.Helper()
	return e.callByID(t, name, "incr")
}

func (e *badEnv) callByID(t *testing.T, name, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), badAnswerTimeout)
	defer cancel()
	resp, err := e.c.Namespace(badNS).Get(name).Do(ctx, path, nil)
	if err != nil {
		t.Fatalf("%s %q by id: %v", path, name, err)
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("%s %q by id: status %d: %s", path, name, resp.Status, resp.Body)
	}
	return string(resp.Body)
}

// badOKBody checks that reply is a successful reply and returns its body.
func badOKBody(t *testing.T, what string, reply *nats.Msg, err error) string {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if code := reply.Header.Get(actor.HeaderError); code != "" {
		t.Fatalf("%s: error reply %s (status %s): %s", what, code, reply.Header.Get(actor.HeaderStatus), reply.Data)
	}
	if s := reply.Header.Get(actor.HeaderStatus); s != "" {
		t.Fatalf("%s: status %s: %s", what, s, reply.Data)
	}
	return string(reply.Data)
}

// badWantError checks that reply is the error reply code with status.
func badWantError(t *testing.T, reply *nats.Msg, err error, code string, status int) {
	t.Helper()
	if err != nil {
		t.Fatalf("got %v, want the error reply %s", err, code)
	}
	if got := reply.Header.Get(actor.HeaderError); got != code {
		t.Errorf("%s = %q, want %q (reply %q)", actor.HeaderError, got, code, reply.Data)
	}
	if got, want := reply.Header.Get(actor.HeaderStatus), strconv.Itoa(status); got != want {
		t.Errorf("%s = %q, want %q", actor.HeaderStatus, got, want)
	}
}

// badWantActorError checks that err is the *actor.Error code with status.
func badWantActorError(t *testing.T, err error, code string, status int) {
	t.Helper()
	var ae *actor.Error
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want an *actor.Error %s", err, code)
	}
	if ae.Code != code || ae.Status != status {
		t.Errorf("got %s (%d), want %s (%d): %s", ae.Code, ae.Status, code, status, ae.Message)
	}
}

// spy subscribes to subject on the test's own connection. The server
// writes messages to one connection in order: once a reply that was
// published after a message to subject arrives, that message is pending.
func (e *badEnv) spy(t *testing.T, subject string) *nats.Subscription {
	t.Helper()
	sub, err := e.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("subscribe %s: %v", subject, err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return sub
}

// badPending returns the messages sub holds now, without waiting.
func badPending(t *testing.T, sub *nats.Subscription) []*nats.Msg {
	t.Helper()
	n, _, err := sub.Pending()
	if err != nil {
		t.Fatalf("pending %s: %v", sub.Subject, err)
	}
	msgs := make([]*nats.Msg, 0, n)
	for range n {
		m, err := sub.NextMsg(time.Second)
		if err != nil {
			t.Fatalf("next message on %s: %v", sub.Subject, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// validNames: names holding subject syntax, spaces, any script, and the
// longest name all work and address their own object, on the by-name
// subject, with the name only in the Opendo-Name header.
func (e *badEnv) validNames(t *testing.T) {
	for _, tc := range []struct{ name, obj string }{
		{"dot", "."},
		{"star", "*"},
		{"greater than", ">"},
		{"spaces", "a name with spaces"},
		{"subject tokens", "a.b.*.>"},
		{"any script", "名前 ☃ имя"},
		{"1024 bytes", strings.Repeat("n", actor.MaxNameLen)},
	} {
		e.run(t, tc.name, 1, func(t *testing.T) {
			byName := e.spy(t, e.subj.Prefix+".name.>")
			byID := e.spy(t, e.subj.Prefix+".req.>")
			reply, err := e.request(t, e.byName(tc.obj, "incr"))
			if got := badOKBody(t, "incr", reply, err); got != "1" {
				t.Errorf("incr = %s, want 1: the name did not address an object of its own", got)
			}
			seen := badPending(t, byName)
			if len(seen) != 1 {
				t.Fatalf("%d messages on %s.name.>, want 1", len(seen), e.subj.Prefix)
			}
			if got, want := seen[0].Subject, e.subj.Prefix+".name."+badNS; got != want {
				t.Errorf("request subject = %q, want %q", got, want)
			}
			if got := seen[0].Header.Get(actor.HeaderName); got != tc.obj {
				t.Errorf("%s on the wire = %q, want %q", actor.HeaderName, got, tc.obj)
			}
			if n := len(badPending(t, byID)); n != 0 {
				t.Errorf("%d messages on %s.req.>, want 0", n, e.subj.Prefix)
			}
			// The client addresses the same object by its ID.
			if got := e.getByID(t, tc.obj); got != "1" {
				t.Errorf("get by id = %s, want 1", got)
			}
		})
	}
}

// invalidNames: names that are too long, not UTF-8 or hold control or
// bidirectional formatting characters get invalid_id and run nothing. The
// Go client refuses them before sending.
func (e *badEnv) invalidNames(t *testing.T) {
	for _, tc := range []struct{ name, obj string }{
		{"1025 bytes", strings.Repeat("n", actor.MaxNameLen+1)},
		{"10 KiB", strings.Repeat("n", 10<<10)},
		{"invalid UTF-8", "\xff\xfe"},
		{"U+0085 next line", "a\u0085b"},
		{"U+202E right-to-left override", "a\u202eb"},
		{"U+2066 left-to-right isolate", "a\u2066b"},
		{"U+0000", "a\x00b"},
		{"ANSI escape", "\x1b[31mred"},
	} {
		e.run(t, tc.name, 0, func(t *testing.T) {
			reply, err := e.request(t, e.byName(tc.obj, "incr"))
			badWantError(t, reply, err, actor.CodeInvalidID, http.StatusBadRequest)
			ctx, cancel := context.WithTimeout(t.Context(), badAnswerTimeout)
			defer cancel()
			if _, err := e.c.Namespace(badNS).Get(tc.obj).Do(ctx, "incr", nil); !errors.Is(err, actor.ErrInvalidName) {
				t.Errorf("actor.Client: got %v, want %v", err, actor.ErrInvalidName)
			}
		})
	}
	// The longest valid name (valid names) was not touched by the longer ones.
	if got := e.getByName(t, strings.Repeat("n", actor.MaxNameLen)); got != "1" {
		t.Errorf("the 1024-byte name = %s after the longer names, want 1", got)
	}
}

// edgeSpaceNames: names may not begin or end with a space, because NATS
// headers do not keep them (nats.go trims header values it sends, and
// servers and readers skip the blanks after the colon): such a name could
// never reach its own object. actor.Client refuses them; a raw nats.go
// request sends the trimmed name, which addresses the object of that name.
func (e *badEnv) edgeSpaceNames(t *testing.T) {
	for _, tc := range []struct{ name, obj, trimmed string }{
		{"leading space", " lead-space", "lead-space"},
		{"trailing space", "trail-space ", "trail-space"},
		{"spaces at both ends", "  both-spaces  ", "both-spaces"},
		{"only a space", " ", ""},
	} {
		writes := uint64(1)
		if tc.trimmed == "" {
			writes = 0
		}
		e.run(t, tc.name, writes, func(t *testing.T) {
			if err := actor.ValidName(tc.obj); !errors.Is(err, actor.ErrInvalidName) {
				t.Fatalf("ValidName(%q) = %v, want ErrInvalidName", tc.obj, err)
			}
			_, err := e.c.Namespace(badNS).Get(tc.obj).Do(t.Context(), "incr", nil)
			if !errors.Is(err, actor.ErrInvalidName) {
				t.Fatalf("actor.Client incr %q: %v, want ErrInvalidName", tc.obj, err)
			}
			reply, err := e.request(t, e.byName(tc.obj, "incr"))
			if err != nil {
				t.Fatalf("incr by name: %v", err)
			}
			code := reply.Header.Get(actor.HeaderError)
			if tc.trimmed == "" {
				if code != actor.CodeInvalidID {
					t.Fatalf("raw incr of %q: code %q (%s), want %s", tc.obj, code, reply.Data, actor.CodeInvalidID)
				}
				return
			}
			if code != "" || string(reply.Data) != "1" {
				t.Fatalf("raw incr of %q (sent as %q): %s %s, want 1", tc.obj, tc.trimmed, code, reply.Data)
			}
			if got := e.getByName(t, tc.trimmed); got != "1" {
				t.Fatalf("object %q = %s, want 1", tc.trimmed, got)
			}
		})
	}
}

// badIDs: by-ID subjects whose last token is not an object ID, and an
// Opendo-Name that does not match the ID, get invalid_id.
func (e *badEnv) badIDs(t *testing.T) {
	const owner, other = "id-owner", "id-other"
	id := string(actor.NameID(badNS, owner))
	if strings.ToUpper(id) == id {
		t.Fatalf("ID %s has no hex letter to upper-case", id)
	}
	for _, tc := range []struct{ name, id string }{
		{"not hex", "ZZZ"},
		{"uppercase hex", strings.ToUpper(id)},
		{"31 hex digits", id[:31]},
		{"33 hex digits", id + "0"},
		{"lowercase ULID", strings.ToLower(string(actor.NewUniqueID()))},
	} {
		e.run(t, tc.name, 0, func(t *testing.T) {
			reply, err := e.request(t, e.byID(tc.id, "incr"))
			badWantError(t, reply, err, actor.CodeInvalidID, http.StatusBadRequest)
		})
	}
	e.run(t, "name does not match id", 0, func(t *testing.T) {
		m := e.byID(id, "incr")
		m.Header.Set(actor.HeaderName, other)
		reply, err := e.request(t, m)
		badWantError(t, reply, err, actor.CodeInvalidID, http.StatusBadRequest)
	})
	if got := e.getByID(t, owner); got != "0" {
		t.Errorf("%s = %s after the bad IDs, want 0", owner, got)
	}
	if got := e.getByID(t, other); got != "0" {
		t.Errorf("%s = %s after the bad IDs, want 0", other, got)
	}
}

// unknownNamespaces: no runtime subscribes to a namespace it does not
// serve, so a raw NATS request finds no responders, and the Go client says
// unknown_namespace.
func (e *badEnv) unknownNamespaces(t *testing.T) {
	e.run(t, "by name", 0, func(t *testing.T) {
		m := e.byName("x", "incr")
		m.Subject = e.subj.Name("nope")
		if _, err := e.request(t, m); !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("got %v, want %v", err, nats.ErrNoResponders)
		}
	})
	e.run(t, "by id", 0, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), badAnswerTimeout)
		defer cancel()
		_, err := e.c.Namespace("nope").Get("x").Do(ctx, "incr", nil)
		badWantActorError(t, err, actor.CodeUnknownNamespace, http.StatusNotFound)
	})
	if got := e.getByName(t, "x"); got != "0" {
		t.Errorf("counter x = %s, want 0", got)
	}
}

// badHeaders: over-long Opendo-Path and Opendo-Method and malformed
// request IDs get bad_request and run nothing; the limits themselves are
// accepted. Each case has its own object.
func (e *badEnv) badHeaders(t *testing.T) {
	for i, tc := range []struct {
		name        string
		path        string
		header      string // set to value if not ""
		value       string
		code        string // "" for a successful reply
		status      int    // Opendo-Status of the reply ("" when 200)
		wantCounter string // the object's counter afterwards
	}{
		{name: "path 4097 bytes", path: strings.Repeat("p", actor.MaxPathLen+1), code: actor.CodeBadRequest, status: http.StatusBadRequest, wantCounter: "0"},
		{name: "path 4096 bytes", path: strings.Repeat("p", actor.MaxPathLen), status: http.StatusNotFound, wantCounter: "0"}, // the counter's "unknown path"
		{name: "method 65 bytes", path: "incr", header: actor.HeaderMethod, value: strings.Repeat("M", 65), code: actor.CodeBadRequest, status: http.StatusBadRequest, wantCounter: "0"},
		{name: "method 64 bytes", path: "incr", header: actor.HeaderMethod, value: strings.Repeat("M", 64), status: http.StatusOK, wantCounter: "1"},
		{name: "request id with a space", path: "incr", header: actor.HeaderRequestID, value: "a b", code: actor.CodeBadRequest, status: http.StatusBadRequest, wantCounter: "0"},
		{name: "request id with a terminal escape", path: "incr", header: actor.HeaderRequestID, value: "a\x1b[2Jb", code: actor.CodeBadRequest, status: http.StatusBadRequest, wantCounter: "0"},
		{name: "request id with DEL", path: "incr", header: actor.HeaderRequestID, value: "a\x7fb", code: actor.CodeBadRequest, status: http.StatusBadRequest, wantCounter: "0"},
		{name: "request id not ASCII", path: "incr", header: actor.HeaderRequestID, value: "reqé", code: actor.CodeBadRequest, status: http.StatusBadRequest, wantCounter: "0"},
		{name: "request id 257 bytes", path: "incr", header: actor.HeaderRequestID, value: strings.Repeat("r", actor.MaxRequestIDLen+1), code: actor.CodeBadRequest, status: http.StatusBadRequest, wantCounter: "0"},
		{name: "request id 256 bytes", path: "incr", header: actor.HeaderRequestID, value: strings.Repeat("r", actor.MaxRequestIDLen), status: http.StatusOK, wantCounter: "1"},
	} {
		obj := fmt.Sprintf("header-%d", i)
		writes := uint64(0)
		if tc.wantCounter == "1" {
			writes = 1
		}
		e.run(t, tc.name, writes, func(t *testing.T) {
			m := e.byName(obj, tc.path)
			if tc.header != "" {
				m.Header.Set(tc.header, tc.value)
			}
			reply, err := e.request(t, m)
			switch {
			case tc.code != "":
				badWantError(t, reply, err, tc.code, tc.status)
			case err != nil:
				t.Fatalf("got %v, want a reply", err)
			default:
				if code := reply.Header.Get(actor.HeaderError); code != "" {
					t.Errorf("error reply %s: %s", code, reply.Data)
				}
				want := ""
				if tc.status != http.StatusOK {
					want = strconv.Itoa(tc.status)
				}
				if got := reply.Header.Get(actor.HeaderStatus); got != want {
					t.Errorf("%s = %q, want %q", actor.HeaderStatus, got, want)
				}
			}
			if got := e.getByName(t, obj); got != tc.wantCounter {
				t.Errorf("counter %s = %s, want %s", obj, got, tc.wantCounter)
			}
		})
	}
}

// badReplies: a request without a reply subject, or whose reply subject
// is not a literal subject under _INBOX., is not run and gets no reply:
// nothing is published to the reply subject, on either request subject.
func (e *badEnv) badReplies(t *testing.T) {
	bid := string(actor.NameID(badNS, badBystander))
	replies := []struct{ name, reply string }{
		{"none", ""},
		{"JetStream purge", "$JS.API.STREAM.PURGE." + badJournalStream},
		{"JetStream delete", "$JS.API.STREAM.DELETE." + badJournalStream},
		{"journal of another object", e.subj.Journal(badNS, bid)},
		{"request loop by name", e.subj.Name(badNS)},
		{"request loop by id", e.subj.Request(badNS, bid)},
		{"system subject", "$SYS.REQ.SERVER.PING"},
		{"wildcard star", "_INBOX.*"},
		{"wildcard full", "_INBOX.>"},
		{"empty token", "_INBOX..x"},
		{"bare prefix", "_INBOX."},
		{"prefix without dot", "_INBOX"},
		{"over 1024 bytes", "_INBOX." + strings.Repeat("x", 1024)},
	}
	for i, rc := range replies {
		for _, route := range []string{"by name", "by id"} {
			victim := fmt.Sprintf("victim-%d", i)
			e.run(t, rc.name+"/"+route, 0, func(t *testing.T) {
				var spy *nats.Subscription
				if badLiteral(rc.reply) {
					spy = e.spy(t, rc.reply)
				}
				var m *nats.Msg
				if route == "by name" {
					m = e.byName(victim, "incr")
				} else {
					m = e.byID(string(actor.NameID(badNS, victim)), "incr")
					m.Header.Set(actor.HeaderName, victim)
				}
				m.Reply = rc.reply
				if err := e.nc.PublishMsg(m); err != nil {
					t.Fatalf("publish: %v", err)
				}
				// Handled after the refused request on the same subject.
				var got string
				if route == "by name" {
					got = e.getByName(t, victim)
				} else {
					got = e.getByID(t, victim)
				}
				if got != "0" {
					t.Errorf("%s = %s, want 0: the refused request ran", victim, got)
				}
				if spy == nil {
					return
				}
				for _, msg := range badPending(t, spy) {
					if msg.Header.Get(badSenderHeader) != badSenderValue {
						t.Errorf("the runtime published to %s: header %v, data %q", rc.reply, msg.Header, msg.Data)
					}
				}
			})
		}
	}
	// The control: the longest allowed reply subject is answered, and the
	// spy sees that reply.
	e.run(t, "1024 bytes is answered", 1, func(t *testing.T) {
		reply := "_INBOX." + strings.Repeat("y", 1024-len("_INBOX."))
		spy := e.spy(t, reply)
		m := e.byName("reply-control", "incr")
		m.Reply = reply
		if err := e.nc.PublishMsg(m); err != nil {
			t.Fatalf("publish: %v", err)
		}
		msg, err := spy.NextMsg(badAnswerTimeout)
		if got := badOKBody(t, "incr with a 1024-byte reply subject", msg, err); got != "1" {
			t.Errorf("incr = %s, want 1", got)
		}
	})
	// The caller sees a timeout: a client whose inbox prefix the runtime
	// does not allow gets no answer.
	e.run(t, "caller sees a timeout", 0, func(t *testing.T) {
		other, err := nats.Connect(e.dev.URL, nats.NoReconnect(), nats.Timeout(badAnswerTimeout), nats.CustomInboxPrefix("elsewhere"))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer other.Close()
		const victim = "victim-timeout"
		if reply, err := other.RequestMsg(e.byName(victim, "incr"), badSilenceTimeout); !errors.Is(err, nats.ErrTimeout) {
			t.Errorf("got %v, %v; want %v", reply, err, nats.ErrTimeout)
		}
		if got := e.getByName(t, victim); got != "0" {
			t.Errorf("%s = %s, want 0: the refused request ran", victim, got)
		}
	})
}

// badLiteral reports whether s is a subject one can subscribe to without a
// wildcard.
func badLiteral(s string) bool {
	if s == "" || strings.ContainsAny(s, "*> \t") {
		return false
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" {
			return false
		}
	}
	return true
}

// oversized: a message over the server's max_payload is refused by the
// client before it is sent, whether the body alone or headers and body
// together pass it.
func (e *badEnv) oversized(t *testing.T) {
	if got := e.nc.MaxPayload(); got != badMaxPayload {
		t.Fatalf("server max_payload = %d, want %d", got, badMaxPayload)
	}
	const obj = "oversized"
	e.run(t, "body", 0, func(t *testing.T) {
		m := e.byName(obj, "incr")
		m.Data = make([]byte, badMaxPayload+1)
		sent := e.nc.Stats().OutMsgs
		if _, err := e.request(t, m); !errors.Is(err, nats.ErrMaxPayload) {
			t.Errorf("request: got %v, want %v", err, nats.ErrMaxPayload)
		}
		if err := e.nc.PublishMsg(m); !errors.Is(err, nats.ErrMaxPayload) {
			t.Errorf("publish: got %v, want %v", err, nats.ErrMaxPayload)
		}
		if got := e.nc.Stats().OutMsgs; got != sent {
			t.Errorf("the client sent %d messages, want 0: it must refuse before sending", got-sent)
		}
	})
	e.run(t, "headers and body", 0, func(t *testing.T) {
		m := e.byName(obj, "incr")
		m.Header.Set("X-Junk", strings.Repeat("j", 64<<10))
		m.Data = make([]byte, badMaxPayload-1024) // fits alone
		if _, err := e.request(t, m); !errors.Is(err, nats.ErrMaxPayload) {
			t.Errorf("request: got %v, want %v", err, nats.ErrMaxPayload)
		}
	})
	e.run(t, "actor client", 0, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), badAnswerTimeout)
		defer cancel()
		_, err := e.c.Namespace(badNS).Get(obj).Do(ctx, "incr", make([]byte, badMaxPayload+1))
		if !errors.Is(err, nats.ErrMaxPayload) {
			t.Errorf("got %v, want %v", err, nats.ErrMaxPayload)
		}
	})
	if got := e.getByName(t, obj); got != "0" {
		t.Errorf("%s = %s, want 0", obj, got)
	}
}

// rawProtocol speaks the NATS client protocol over TCP: the server closes
// a connection that announces a message over max_payload, and malformed
// header blocks either close the connection (the server's parser) or
// reach the runtime without headers; the runtime is unaffected either way.
func (e *badEnv) rawProtocol(t *testing.T) {
	e.run(t, "PUB over max payload", 0, func(t *testing.T) {
		r := e.dialRaw(t)
		if r.info.MaxPayload != badMaxPayload {
			t.Errorf("INFO max_payload = %d, want %d", r.info.MaxPayload, badMaxPayload)
		}
		r.send(t, fmt.Sprintf("PUB %s _INBOX.x %d\r\n", e.subj.Name(badNS), badMaxPayload+1))
		lines, err := r.rest(t)
		if len(lines) != 1 || lines[0] != "-ERR 'Maximum Payload Violation'" {
			t.Errorf("server sent %q, want [\"-ERR 'Maximum Payload Violation'\"]", lines)
		}
		if !badClosed(err) {
			t.Errorf("after the violation: %v, want the connection closed", err)
		}
	})
	// Header blocks the server passes on but nats.go cannot decode: the
	// runtime receives the message without headers, so without a name.
	for i, tc := range []struct{ name, hdr string }{
		{"header line without colon", "NATS/1.0\r\nno-colon-line\r\n\r\n"},
		{"not a NATS header block", "HTTP/1.1 200 OK\r\nOpendo-Name: raw\r\nOpendo-Path: incr\r\n\r\n"},
		{"header block without end", "NATS/1.0\r\nOpendo-Name: raw\r\nOpendo-Path: incr\r\n"},
	} {
		e.run(t, tc.name, 0, func(t *testing.T) {
			r := e.dialRaw(t)
			inbox := fmt.Sprintf("_INBOX.raw.%d", i)
			body := "x"
			r.send(t, fmt.Sprintf("SUB %s 1\r\nHPUB %s %s %d %d\r\n%s%s\r\nPING\r\n",
				inbox, e.subj.Name(badNS), inbox, len(tc.hdr), len(tc.hdr)+len(body), tc.hdr, body))
			if line := r.line(t); line != "PONG" {
				t.Fatalf("after HPUB: server sent %q, want PONG: it refused the header block", line)
			}
			hdr, _ := r.msg(t)
			h, err := nats.DecodeHeadersMsg(hdr)
			if err != nil {
				t.Fatalf("reply header %q: %v", hdr, err)
			}
			if got := h.Get(actor.HeaderError); got != actor.CodeInvalidID {
				t.Errorf("reply %s = %q, want %q (the message arrives without Opendo-Name)", actor.HeaderError, got, actor.CodeInvalidID)
			}
			if got := e.getByName(t, "raw"); got != "0" {
				t.Errorf("counter raw = %s, want 0", got)
			}
		})
	}
	// Header sizes the server's parser refuses: it closes the connection.
	for _, tc := range []struct{ name, hpub string }{
		{"header size over total size", fmt.Sprintf("HPUB %s _INBOX.y 64 10\r\n", e.subj.Name(badNS))},
		{"header size not a number", fmt.Sprintf("HPUB %s _INBOX.y x 10\r\n", e.subj.Name(badNS))},
	} {
		e.run(t, tc.name, 0, func(t *testing.T) {
			r := e.dialRaw(t)
			r.send(t, tc.hpub+strings.Repeat("z", 10)+"\r\nPING\r\n")
			lines, err := r.rest(t)
			t.Logf("server sent %q, then %v", lines, err)
			if !badClosed(err) {
				t.Errorf("after %q: %v, want the connection closed", tc.hpub, err)
			}
			for _, l := range lines {
				if l == "PONG" {
					t.Errorf("the server answered PING after %q: it accepted it", tc.hpub)
				}
			}
		})
	}
}

// badRawConn is a NATS client connection spoken by hand.
type badRawConn struct {
	conn net.Conn
	r    *bufio.Reader
	info struct {
		MaxPayload int64 `json:"max_payload"`
		Headers    bool  `json:"headers"`
	}
}

// dialRaw connects to the dev server over TCP, reads its INFO, sends
// CONNECT with headers and checks the connection with PING/PONG.
func (e *badEnv) dialRaw(t *testing.T) *badRawConn {
	t.Helper()
	u, err := url.Parse(e.dev.URL)
	if err != nil {
		t.Fatalf("server URL %q: %v", e.dev.URL, err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, badRawTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", u.Host, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r := &badRawConn{conn: conn, r: bufio.NewReader(conn)}
	info, ok := strings.CutPrefix(r.line(t), "INFO ")
	if !ok {
		t.Fatalf("server greeting %q, want INFO", info)
	}
	if err := json.Unmarshal([]byte(info), &r.info); err != nil {
		t.Fatalf("INFO %s: %v", info, err)
	}
	if !r.info.Headers {
		t.Fatalf("INFO %s: server does not support headers", info)
	}
	r.send(t, "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\nPING\r\n")
	if line := r.line(t); line != "PONG" {
		t.Fatalf("after CONNECT: %q, want PONG", line)
	}
	return r
}

func (r *badRawConn) send(t *testing.T, s string) {
	t.Helper()
	_ = r.conn.SetWriteDeadline(time.Now().Add(badRawTimeout))
	if _, err := io.WriteString(r.conn, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// line reads one protocol line, answering the server's PINGs.
func (r *badRawConn) line(t *testing.T) string {
	t.Helper()
	for {
		l, err := r.readLine()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if l != "PING" {
			return l
		}
		r.send(t, "PONG\r\n")
	}
}

func (r *badRawConn) readLine() (string, error) {
	_ = r.conn.SetReadDeadline(time.Now().Add(badRawTimeout))
	l, err := r.r.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

// msg reads one MSG or HMSG and returns its header block (nil for a MSG)
// and body.
func (r *badRawConn) msg(t *testing.T) ([]byte, []byte) {
	t.Helper()
	l := r.line(t)
	f := strings.Fields(l)
	var hlen, tlen int
	var err1, err2 error
	switch {
	case len(f) >= 4 && f[0] == "MSG":
		tlen, err2 = strconv.Atoi(f[len(f)-1])
	case len(f) >= 5 && f[0] == "HMSG":
		hlen, err1 = strconv.Atoi(f[len(f)-2])
		tlen, err2 = strconv.Atoi(f[len(f)-1])
	default:
		t.Fatalf("server sent %q, want MSG or HMSG", l)
	}
	if err1 != nil || err2 != nil || hlen < 0 || hlen > tlen {
		t.Fatalf("bad message line %q", l)
	}
	buf := make([]byte, tlen+2)
	_ = r.conn.SetReadDeadline(time.Now().Add(badRawTimeout))
	if _, err := io.ReadFull(r.r, buf); err != nil {
		t.Fatalf("HMSG payload: %v", err)
	}
	if f[0] == "MSG" {
		return nil, buf[:tlen]
	}
	return buf[:hlen], buf[hlen:tlen]
}

// rest reads lines until the connection ends or stays silent for
// badRawTimeout, and returns them with the error that ended the read.
func (r *badRawConn) rest(t *testing.T) ([]string, error) {
	t.Helper()
	var lines []string
	for {
		l, err := r.readLine()
		if l != "" {
			lines = append(lines, l)
		}
		if err != nil {
			return lines, err
		}
	}
}

// badClosed reports whether err says the peer closed the connection.
func badClosed(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET)
}

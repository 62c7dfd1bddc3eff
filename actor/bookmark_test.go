package actor_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/alarms"
	"github.com/opendo/opendo/internal/clocktest"
	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/journal"
)

// bookmarker is a namespace for bookmark tests: KV, SQL and alarm writes,
// and the three bookmark calls.
func bookmarker(state *actor.State) actor.Handler {
	return actor.HandlerFunc(func(ctx context.Context, req *actor.Request) (*actor.Response, error) {
		st := state.Storage()
		body := string(req.Body)
		switch req.Path {
		case "put": // k=v
			k, v, _ := cut(body)
			return nil, st.Put(ctx, k, []byte(v))
		case "get":
			v, ok, err := st.Get(ctx, body)
			if err != nil || !ok {
				return &actor.Response{Status: http.StatusNotFound}, err
			}
			return actor.Bytes(v), nil
		case "insert": // a row into t, created if needed
			if _, err := st.SQL().Exec(ctx, "CREATE TABLE IF NOT EXISTS t (v TEXT)"); err != nil {
				return nil, err
			}
			_, err := st.SQL().Exec(ctx, "INSERT INTO t VALUES (?)", body)
			return nil, err
		case "rows":
			if _, err := st.SQL().Exec(ctx, "CREATE TABLE IF NOT EXISTS t (v TEXT)"); err != nil {
				return nil, err
			}
			c, err := st.SQL().Exec(ctx, "SELECT coalesce(group_concat(v, ','), '') FROM t")
			if err != nil {
				return nil, err
			}
			return actor.Text(c.Raw()[0][0].(string)), nil
		case "set-alarm": // Unix ms
			ms, err := strconv.ParseInt(body, 10, 64)
			if err != nil {
				return nil, err
			}
			return nil, st.SetAlarm(ctx, time.UnixMilli(ms))
		case "delete-alarm":
			return nil, st.DeleteAlarm(ctx)
		case "alarm":
			at, ok, err := st.Alarm(ctx)
			if err != nil || !ok {
				return actor.Text("none"), err
			}
			return actor.Text(strconv.FormatInt(at.UnixMilli(), 10)), nil
		case "bookmark":
			b, err := st.Bookmark(ctx)
			if err != nil {
				return nil, err
			}
			return actor.Text(b), nil
		case "bookmark-at": // RFC 3339
			t, err := time.Parse(time.RFC3339Nano, body)
			if err != nil {
				return nil, err
			}
			b, err := st.BookmarkForTime(ctx, t)
			if err != nil {
				return nil, err
			}
			return actor.Text(b), nil
		case "put-restore-put": // b=<bookmark>: writes around a restore are discarded
			if err := st.Put(ctx, "before", []byte("x")); err != nil {
				return nil, err
			}
			undo, err := st.RestoreBookmark(ctx, body)
			if err != nil {
				return nil, err
			}
			if err := st.Put(ctx, "after", []byte("x")); err != nil {
				return nil, err
			}
			return actor.Text(undo), nil
		case "restore":
			undo, err := st.RestoreBookmark(ctx, body)
			if err != nil {
				return nil, err
			}
			return actor.Text(undo), nil
		case "restore-then-fail":
			if _, err := st.RestoreBookmark(ctx, body); err != nil {
				return nil, err
			}
			return nil, errors.New("changed my mind")
		}
		return &actor.Response{Status: http.StatusNotFound, Body: []byte("no path " + req.Path)}, nil
	})
}

type bookmarkEnv struct {
	*env
	clock *clocktest.Clock
}

// newBookmarkEnv runs a runtime on a fake clock an hour ahead of real time
// (durable alarm schedules never fire during the test).
func newBookmarkEnv(t *testing.T, srv *natstest.Server, data string, mod func(*actor.Config)) *bookmarkEnv {
	t.Helper()
	clock := clocktest.New(time.Now().Add(time.Hour).Truncate(time.Millisecond))
	e := newEnvWith(t, srv, data, func(c *actor.Config) {
		c.Clock = clock
		if mod != nil {
			mod(c)
		}
	}, func(rt *actor.Runtime) {
		if err := rt.Register("bm", bookmarker); err != nil {
			t.Fatal(err)
		}
	})
	return &bookmarkEnv{env: e, clock: clock}
}

func (e *bookmarkEnv) want(t *testing.T, name, path, body, want string) {
	t.Helper()
	got, err := e.call(t, "bm", name, path, body)
	if err != nil && want != "404" {
		t.Fatalf("%s %s: %v", path, body, err)
	}
	if err != nil {
		got = "404"
	}
	if got != want {
		t.Fatalf("%s %s: got %q, want %q", path, body, got, want)
	}
}

func TestBookmarkRestoreKVSQLAlarm(t *testing.T) {
	e := newBookmarkEnv(t, nil, "", nil)
	alarmAt := strconv.FormatInt(e.clock.Now().Add(time.Hour).UnixMilli(), 10)
	e.mustCall(t, "bm", "o", "put", "a=1")
	e.mustCall(t, "bm", "o", "insert", "r1")
	e.mustCall(t, "bm", "o", "set-alarm", alarmAt)
	b1 := e.mustCall(t, "bm", "o", "bookmark", "")
	if b2 := e.mustCall(t, "bm", "o", "bookmark", ""); b2 != b1 {
		t.Fatalf("a read-only request moved the bookmark: %s then %s", b1, b2)
	}

	e.mustCall(t, "bm", "o", "put", "a=2")
	e.mustCall(t, "bm", "o", "put", "c=3")
	e.mustCall(t, "bm", "o", "insert", "r2")
	e.mustCall(t, "bm", "o", "delete-alarm", "")
	b2 := e.mustCall(t, "bm", "o", "bookmark", "")
	if b2 <= b1 {
		t.Fatalf("bookmarks do not sort in history order: %s then %s", b1, b2)
	}

	undo := e.mustCall(t, "bm", "o", "restore", b1)
	if undo != b2 {
		t.Fatalf("undo bookmark %s, want the state before the restore %s", undo, b2)
	}
	e.want(t, "o", "get", "a", "1")
	e.want(t, "o", "get", "c", "404")
	e.want(t, "o", "rows", "", "r1")
	e.want(t, "o", "alarm", "", alarmAt)
	// The restored alarm is scheduled durably, as any alarm write.
	if got := durableAlarm(t, e.env, "bm", "o"); got != alarmAt {
		t.Fatalf("durable schedule after restore: %s, want %s", got, alarmAt)
	}

	// Writes after the restore build on the restored state.
	e.mustCall(t, "bm", "o", "put", "d=4")
	back := e.mustCall(t, "bm", "o", "restore", undo)
	e.want(t, "o", "get", "a", "2")
	e.want(t, "o", "get", "c", "3")
	e.want(t, "o", "get", "d", "404")
	e.want(t, "o", "rows", "", "r1,r2")
	e.want(t, "o", "alarm", "", "none")
	if got := durableAlarm(t, e.env, "bm", "o"); got != "none" {
		t.Fatalf("durable schedule after restoring a state without alarm: %s", got)
	}

	// And back again: a restore's undo bookmark is itself restorable.
	e.mustCall(t, "bm", "o", "restore", back)
	e.want(t, "o", "get", "d", "4")
	e.want(t, "o", "get", "a", "1")

	// The restores are in the journal, each alone in its entry.
	restores := journalRestores(t, e.env, "bm", "o")
	if len(restores) != 3 {
		t.Fatalf("journal has %d restore entries, want 3", len(restores))
	}
	if want, _ := journal.ParseBookmark(b1); restores[0] != want.Seq {
		t.Fatalf("first restore targets seq %d, want %d", restores[0], want.Seq)
	}
}

// journalRestores returns the targets of the restore entries of an object.
func journalRestores(t *testing.T, e *env, ns, name string) []uint64 {
	t.Helper()
	jr := openJournal(t, e)
	var targets []uint64
	subject := e.rt.Subjects().Journal(ns, string(actor.NameID(ns, name)))
	err := jr.Read(t.Context(), subject, 0, 0, func(seq uint64, en *journal.Entry) error {
		if target, ok := en.Restore(); ok {
			targets = append(targets, target)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return targets
}

func TestRestoreDiscardsTheRequestsWrites(t *testing.T) {
	e := newBookmarkEnv(t, nil, "", nil)
	e.mustCall(t, "bm", "o", "put", "a=1")
	b := e.mustCall(t, "bm", "o", "bookmark", "")
	e.mustCall(t, "bm", "o", "put", "a=2")
	e.mustCall(t, "bm", "o", "put-restore-put", b)
	e.want(t, "o", "get", "a", "1")
	e.want(t, "o", "get", "before", "404")
	e.want(t, "o", "get", "after", "404")

	// A request that fails after asking for a restore restores nothing.
	e.mustCall(t, "bm", "o", "put", "a=3")
	if _, err := e.call(t, "bm", "o", "restore-then-fail", b); err == nil {
		t.Fatal("restore-then-fail succeeded")
	}
	e.want(t, "o", "get", "a", "3")
	if n := len(journalRestores(t, e.env, "bm", "o")); n != 1 {
		t.Fatalf("%d restore entries, want 1", n)
	}
}

func TestBookmarkForTime(t *testing.T) {
	e := newBookmarkEnv(t, nil, "", nil)
	start := e.clock.Now()
	e.want(t, "o", "bookmark-at", start.Format(time.RFC3339Nano), journal.Bookmark{}.String())
	e.mustCall(t, "bm", "o", "put", "a=1")
	e.clock.Advance(time.Minute)
	e.mustCall(t, "bm", "o", "put", "a=2")
	e.clock.Advance(time.Minute)
	e.mustCall(t, "bm", "o", "put", "a=3")

	at := func(d time.Duration) string {
		return e.mustCall(t, "bm", "o", "bookmark-at", start.Add(d).Format(time.RFC3339Nano))
	}
	before, first, second, now := at(-time.Second), at(30*time.Second), at(90*time.Second), at(time.Hour)
	if now != e.mustCall(t, "bm", "o", "bookmark", "") {
		t.Fatalf("bookmark for a future time %s is not the current one", now)
	}
	if !(before < first && first < second && second < now) {
		t.Fatalf("bookmarks out of order: %s %s %s %s", before, first, second, now)
	}
	e.mustCall(t, "bm", "o", "restore", second)
	e.want(t, "o", "get", "a", "2")
	e.mustCall(t, "bm", "o", "restore", first)
	e.want(t, "o", "get", "a", "1")
	e.mustCall(t, "bm", "o", "restore", before)
	e.want(t, "o", "get", "a", "404")
}

func TestBookmarkInvalid(t *testing.T) {
	e := newBookmarkEnv(t, nil, "", nil)
	e.mustCall(t, "bm", "o", "put", "a=1")
	e.mustCall(t, "bm", "other", "put", "a=9")
	other := e.mustCall(t, "bm", "other", "bookmark", "")
	mine := e.mustCall(t, "bm", "o", "bookmark", "")
	b, _ := journal.ParseBookmark(mine)
	future := journal.Bookmark{Seq: b.Seq + 100, CommitID: b.CommitID}.String()
	wrongCommit := journal.Bookmark{Seq: b.Seq, CommitID: journal.Bookmark{}.CommitID}.String()
	for _, bad := range []string{"", "nonsense", mine[:17] + strings.ToLower(mine[17:]), other, future, wrongCommit} {
		_, err := e.client.Namespace("bm").Get("o").Do(t.Context(), "restore", []byte(bad))
		wantCode(t, err, actor.CodeInvalidArgument)
	}
	e.want(t, "o", "get", "a", "1")
	if n := len(journalRestores(t, e.env, "bm", "o")); n != 0 {
		t.Fatalf("%d restore entries after refused restores", n)
	}
}

func TestRestoreSurvivesLostFilesAndSnapshots(t *testing.T) {
	srv := natstest.Start(t)
	data := t.TempDir()
	cfg := func(c *actor.Config) {
		c.SnapshotEvery = 3
		c.Retention = &journal.Retention{KeepEntries: 1000}
	}
	e := newBookmarkEnv(t, srv, data, cfg)
	e.mustCall(t, "bm", "o", "put", "a=1")
	e.mustCall(t, "bm", "o", "insert", "r1")
	early := e.mustCall(t, "bm", "o", "bookmark", "")
	for i := range 10 {
		e.mustCall(t, "bm", "o", "put", "a="+strconv.Itoa(i+2))
	}
	// The bookmark is older than every snapshot kept by now, but the
	// history is complete: it is still restorable.
	e.mustCall(t, "bm", "o", "restore", early)
	e.want(t, "o", "get", "a", "1")
	e.mustCall(t, "bm", "o", "insert", "r2")
	closeRuntime(t, e.rt)

	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	e2 := newBookmarkEnv(t, srv, data, cfg)
	e2.want(t, "o", "get", "a", "1")
	e2.want(t, "o", "rows", "", "r1,r2")
}

func TestBookmarkExpiredAfterPurge(t *testing.T) {
	e := newBookmarkEnv(t, nil, "", func(c *actor.Config) {
		c.SnapshotEvery = 2
		c.Retention = &journal.Retention{} // keep nothing a snapshot covers
	})
	e.mustCall(t, "bm", "o", "put", "a=1")
	old := e.mustCall(t, "bm", "o", "bookmark", "")
	for i := range 10 {
		e.mustCall(t, "bm", "o", "put", "a="+strconv.Itoa(i+2))
	}
	// Snapshots and purges run in the background: wait until the old
	// bookmark's entry is gone.
	jr := openJournal(t, e.env)
	subject := e.rt.Subjects().Journal("bm", string(actor.NameID("bm", "o")))
	ob, _ := journal.ParseBookmark(old)
	waitFor(t, func() bool {
		first, err := jr.FirstSeq(t.Context(), subject)
		return err == nil && first > ob.Seq
	})
	_, err := e.client.Namespace("bm").Get("o").Do(t.Context(), "restore", []byte(old))
	wantCode(t, err, actor.CodeInvalidArgument)
	if !strings.Contains(err.Error(), "purged") {
		t.Fatalf("error does not say the history was purged: %v", err)
	}
	e.want(t, "o", "get", "a", "11")
	// A time before the history left is expired too.
	_, err = e.client.Namespace("bm").Get("o").Do(t.Context(), "bookmark-at", []byte(e.clock.Now().Add(-time.Hour).Format(time.RFC3339Nano)))
	wantCode(t, err, actor.CodeInvalidArgument)
	if !strings.Contains(err.Error(), "purged") {
		t.Fatalf("bookmark-at before the history: %v", err)
	}
}

func openJournal(t *testing.T, e *env) *journal.Journal {
	t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	jr, err := journal.Open(t.Context(), js, journal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return jr
}

// durableAlarm returns the alarm (Unix ms) of an object's durable
// schedule, "none" if it has none.
func durableAlarm(t *testing.T, e *env, ns, name string) string {
	t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), alarms.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(t.Context(), e.rt.Subjects().AlarmSchedule(ns, string(actor.NameID(ns, name))))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "none"
	}
	if err != nil {
		t.Fatal(err)
	}
	f, err := alarms.ParseFiring(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(f.Alarm, 10)
}

// TestRequestsQueuedBehindARestore: requests waiting in the mailbox while
// an object restores go to its next activation and see the restored
// state; none fails.
func TestRequestsQueuedBehindARestore(t *testing.T) {
	e := newBookmarkEnv(t, nil, "", nil)
	e.mustCall(t, "bm", "o", "put", "a=1")
	b := e.mustCall(t, "bm", "o", "bookmark", "")
	e.mustCall(t, "bm", "o", "put", "a=2")

	obj := e.client.Namespace("bm").Get("o")
	restored := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(restored)
		if _, err := obj.Do(t.Context(), "restore", []byte(b)); err != nil {
			errs <- err
		}
	}()
	const n = 20
	got := make(chan string, n)
	for range n {
		go func() {
			resp, err := obj.Do(t.Context(), "get", []byte("a"))
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			got <- string(resp.Body)
		}()
	}
	for range n {
		if v := <-got; v != "1" && v != "2" {
			t.Fatalf("a get racing the restore: %s", v)
		}
	}
	<-restored
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	e.want(t, "o", "get", "a", "1")
}

// alarmRestorer restores its object to a bookmark from its alarm handler.
type alarmRestorer struct {
	actor.Handler
	state    *actor.State
	bookmark *string
	fired    chan string
}

func (a alarmRestorer) Alarm(ctx context.Context, info actor.AlarmInfo) error {
	undo, err := a.state.Storage().RestoreBookmark(ctx, *a.bookmark)
	a.fired <- undo
	return err
}

func TestRestoreFromAlarm(t *testing.T) {
	var bookmark string
	fired := make(chan string, 10)
	clock := clocktest.New(time.Now().Add(time.Hour).Truncate(time.Millisecond))
	e := newEnvWith(t, nil, "", func(c *actor.Config) { c.Clock = clock }, func(rt *actor.Runtime) {
		if err := rt.Register("bm", func(s *actor.State) actor.Handler {
			return alarmRestorer{Handler: bookmarker(s), state: s, bookmark: &bookmark, fired: fired}
		}); err != nil {
			t.Fatal(err)
		}
	})
	e.mustCall(t, "bm", "o", "put", "a=1")
	bookmark = e.mustCall(t, "bm", "o", "bookmark", "")
	e.mustCall(t, "bm", "o", "put", "a=2")
	e.mustCall(t, "bm", "o", "set-alarm", strconv.FormatInt(clock.Now().Add(10*time.Second).UnixMilli(), 10))

	deadline := time.Now().Add(10 * time.Second)
	var undo string
	for undo == "" {
		if time.Now().After(deadline) {
			t.Fatal("the alarm did not fire")
		}
		clock.Advance(time.Second)
		select {
		case undo = <-fired:
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The alarm's acknowledgement and the object's close follow the
	// restore's append: the next request sees the restored state.
	waitFor(t, func() bool {
		got, err := e.call(t, "bm", "o", "get", "a")
		return err == nil && got == "1"
	})
	if got := e.mustCall(t, "bm", "o", "alarm", ""); got != "none" {
		t.Fatalf("alarm after restoring a state without one: %s", got)
	}
	if n := len(journalRestores(t, e, "bm", "o")); n != 1 {
		t.Fatalf("%d restore entries, want 1", n)
	}
	if undo == "" || undo == bookmark {
		t.Fatalf("undo bookmark %q", undo)
	}
}

// TestStartEmptiesScratchDir: scratch files a crashed run left behind
// (snapshot copies, restored states being built) are removed by Start.
func TestStartEmptiesScratchDir(t *testing.T) {
	data := t.TempDir()
	stale := filepath.Join(data, ".tmp", "snapshot-01M8DEQ31QA2QF2GDZ17CMB7G0.db")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("half a copy"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newBookmarkEnv(t, nil, data, nil)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale scratch file after Start: %v", err)
	}
	// Restores work with the scratch directory.
	e.mustCall(t, "bm", "o", "put", "a=1")
	b := e.mustCall(t, "bm", "o", "bookmark", "")
	e.mustCall(t, "bm", "o", "put", "a=2")
	e.mustCall(t, "bm", "o", "restore", b)
	e.want(t, "o", "get", "a", "1")
	// The restored state's snapshot is uploaded in the background from a
	// scratch copy: wait for it to go.
	waitFor(t, func() bool {
		left, err := os.ReadDir(filepath.Join(data, ".tmp"))
		return err == nil && len(left) == 0
	})
}

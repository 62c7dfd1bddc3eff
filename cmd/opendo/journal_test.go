package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/storage"
	"github.com/opendo/opendo/storage/sqlite"
)

const journalTestNS = "jtest"

// journalTestObject is the test namespace: its paths write what they say.
func journalTestObject(state *actor.State) actor.Handler {
	return actor.HandlerFunc(func(ctx context.Context, req *actor.Request) (*actor.Response, error) {
		st := state.Storage()
		body := string(req.Body)
		switch req.Path {
		case "put": // k=v
			k, v, _ := strings.Cut(body, "=")
			return nil, st.Put(ctx, k, []byte(v))
		case "put-bin":
			return nil, st.Put(ctx, body, []byte{0xff, 0x00, 0x01})
		case "del":
			_, err := st.Delete(ctx, body)
			return nil, err
		case "get":
			v, ok, err := st.Get(ctx, body)
			if err != nil {
				return nil, err
			}
			if !ok {
				return &actor.Response{Status: http.StatusNotFound}, nil
			}
			return actor.Bytes(v), nil
		case "alarm":
			return nil, st.SetAlarm(ctx, time.Now().Add(time.Hour))
		case "sql":
			_, err := st.SQL().Exec(ctx, "CREATE TABLE IF NOT EXISTS t (x INTEGER, y TEXT)")
			if err == nil {
				_, err = st.SQL().Exec(ctx, "INSERT INTO t (x, y) VALUES (?, ?)", int64(7), "seven")
			}
			if errors.Is(err, storage.ErrNotImplemented) {
				return &actor.Response{Status: http.StatusNotImplemented, Body: []byte(err.Error())}, nil
			}
			return nil, err
		case "sql-count":
			c, err := st.SQL().Exec(ctx, "SELECT count(*) AS n FROM t")
			if err != nil {
				return nil, err
			}
			row, err := c.One()
			if err != nil {
				return nil, err
			}
			return actor.JSON(row["n"])
		case "bookmark":
			b, err := st.Bookmark(ctx)
			return actor.Text(b), err
		case "restore": // body: a bookmark
			undo, err := st.RestoreBookmark(ctx, string(req.Body))
			return actor.Text(undo), err
		}
		return &actor.Response{Status: http.StatusNotFound}, nil
	})
}

// journalEnv is a runtime with the test namespace on an embedded server
// whose JetStream store is <data>/nats, as opendo dev lays it out.
type journalEnv struct {
	t      *testing.T
	srv    *natstest.Server
	nc     *nats.Conn
	rt     *actor.Runtime
	client *actor.Client
	data   string
}

func newJournalEnv(t *testing.T) *journalEnv {
	t.Helper()
	return newJournalEnvWith(t, nil)
}

// newJournalEnvWith is newJournalEnv with a runtime configured by opts.
func newJournalEnvWith(t *testing.T, opts func(*actor.Config)) *journalEnv {
	t.Helper()
	data := t.TempDir()
	srv := natstest.Start(t, natstest.WithStoreDir(filepath.Join(data, "nats")))
	nc := srv.Conn(t)
	cfg := actor.Config{Conn: nc, DataDir: filepath.Join(data, "objects")}
	if opts != nil {
		opts(&cfg)
	}
	rt, err := actor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Register(journalTestNS, journalTestObject); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e := &journalEnv{t: t, srv: srv, nc: nc, rt: rt, data: data}
	t.Cleanup(e.closeRuntime)
	if e.client, err = actor.NewClient(nc, actor.ClientConfig{}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *journalEnv) closeRuntime() {
	if e.rt == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.rt.Close(ctx); err != nil {
		e.t.Errorf("close runtime: %v", err)
	}
	e.rt = nil
}

// call calls name's path with body and returns the reply's status and body.
func (e *journalEnv) call(name, path, body string) (int, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 30*time.Second)
	defer cancel()
	resp, err := e.client.Namespace(journalTestNS).Get(name).Call(ctx, &actor.Request{Path: path, Body: []byte(body)})
	if err != nil {
		e.t.Fatalf("call %s %s %q: %v", name, path, body, err)
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	return resp.Status, string(resp.Body)
}

func (e *journalEnv) mustCall(name, path, body string) string {
	e.t.Helper()
	status, b := e.call(name, path, body)
	if status != http.StatusOK {
		e.t.Fatalf("call %s %s %q: status %d %s", name, path, body, status, b)
	}
	return b
}

// journalCmd runs `opendo journal args...` and returns its output.
func journalCmd(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(ctx, append([]string{"journal"}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

func (e *journalEnv) journal(args ...string) string {
	e.t.Helper()
	out, errb, err := journalCmd(e.t, e.t.Context(), append(args, "-nats", e.srv.URL())...)
	if err != nil {
		e.t.Fatalf("journal %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, errb)
	}
	return out
}

// showJSON returns the object's entries as `show -json` prints them.
func (e *journalEnv) showJSON(name string) []jsonEntry {
	e.t.Helper()
	var entries []jsonEntry
	for line := range strings.Lines(e.journal("show", journalTestNS, name, "-json")) {
		var je jsonEntry
		if err := json.Unmarshal([]byte(line), &je); err != nil {
			e.t.Fatalf("show -json line %q: %v", line, err)
		}
		entries = append(entries, je)
	}
	return entries
}

// journalReadKV reads the kv view of a replayed file with the sqlite3-like
// database/sql driver.
func journalReadKV(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT key, value FROM kv ORDER BY key")
	if err != nil {
		t.Fatalf("%s: select from kv: %v", path, err)
	}
	defer rows.Close()
	kv := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		kv[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return kv
}

func TestJournalCommands(t *testing.T) { testJournalCommands(t, nil) }

// TestJournalCommandsSpread: the same with the journal spread over 3
// streams; each command finds each object's stream.
func TestJournalCommandsSpread(t *testing.T) {
	testJournalCommands(t, func(cfg *actor.Config) { cfg.JournalStreams = 3 })
}

func testJournalCommands(t *testing.T, opts func(*actor.Config)) {
	e := newJournalEnvWith(t, opts)
	if opts != nil {
		if _, err := e.srv.JetStream(t).Stream(t.Context(), "OPENDO_JOURNAL_2"); err != nil {
			t.Fatalf("stream 3 of the journal: %v", err)
		}
	}
	idA := string(actor.NameID(journalTestNS, "obj-a"))
	idB := string(actor.NameID(journalTestNS, "obj-b"))

	e.mustCall("obj-b", "put", "x=1")
	e.mustCall("obj-a", "put", "a=1")
	e.mustCall("obj-a", "put", `b={"hello": "world"}`)
	e.mustCall("obj-a", "put", "a=2")
	e.mustCall("obj-a", "del", "b")
	e.mustCall("obj-a", "alarm", "")
	e.mustCall("obj-a", "put-bin", "bin")
	writes := 6
	haveSQL := false
	if status, body := e.call("obj-a", "sql", ""); status == http.StatusNotImplemented {
		t.Logf("SQL is not implemented yet (%s): skipping the SQL checks", body)
	} else if status != http.StatusOK {
		t.Fatalf("sql: status %d %s", status, body)
	} else {
		t.Log("SQL is implemented: checking it too")
		haveSQL = true
		writes++
	}
	e.mustCall("obj-b", "put", "x=2")

	// ls: both objects, with their entry counts.
	var objs []objInfo
	for line := range strings.Lines(e.journal("ls", "-json")) {
		var o objInfo
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("ls -json line %q: %v", line, err)
		}
		objs = append(objs, o)
	}
	counts := map[string]uint64{}
	for _, o := range objs {
		if o.NS != journalTestNS || o.LastSeq == 0 || o.LastWrite.IsZero() {
			t.Errorf("ls: %+v", o)
		}
		counts[o.ID] = o.Entries
	}
	if counts[idA] != uint64(writes) || counts[idB] != 2 || len(counts) != 2 {
		t.Errorf("ls counts = %v, want %s: %d, %s: 2", counts, idA, writes, idB)
	}
	if out := e.journal("ls", journalTestNS); !strings.Contains(out, idA) || !strings.Contains(out, idB) || !strings.HasPrefix(out, "NS ") {
		t.Errorf("ls table:\n%s", out)
	}
	if out := e.journal("ls", journalTestNS, "obj-b"); strings.Contains(out, idA) || !strings.Contains(out, idB) {
		t.Errorf("ls %s obj-b:\n%s", journalTestNS, out)
	}

	// show: every kind of mutation, readable.
	out := e.journal("show", journalTestNS, "obj-a")
	for _, want := range []string{`put "a" = 1`, `put "b" = {"hello":"world"}`, `put "a" = 2`, `delete "b"`, "setAlarm 20", `put "bin" = 0xff0001`} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if haveSQL && !strings.Contains(out, `sql "INSERT INTO t (x, y) VALUES (?, ?)" [7, 'seven']`) {
		t.Errorf("show lacks the SQL insert:\n%s", out)
	}
	entries := e.showJSON("obj-a")
	if len(entries) != writes {
		t.Fatalf("show -json: %d entries, want %d", len(entries), writes)
	}
	ops := ""
	for _, je := range entries {
		for _, tx := range je.Txns {
			for _, m := range tx.Mutations {
				ops += m.Op + " "
			}
		}
	}
	if want := "put put put delete setAlarm put "; !strings.HasPrefix(ops, want) {
		t.Errorf("show -json ops = %q, want %q...", ops, want)
	}
	if m := entries[5].Txns[0].Mutations[0]; m.ValueHex == nil || *m.ValueHex != "ff0001" || m.Value != nil {
		t.Errorf("binary value in JSON: %+v", m)
	}
	seqOf := func(i int) string { return strconv.FormatUint(entries[i].Seq, 10) }
	if out := e.journal("show", journalTestNS, "-id", idA, "-from", seqOf(2), "-to", seqOf(3), "-json"); strings.Count(out, "\n") != 2 {
		t.Errorf("show -from -to: want 2 entries:\n%s", out)
	}

	// replay: the state as of an earlier entry, by sequence and by time.
	dir := t.TempDir()
	early := filepath.Join(dir, "early.db")
	out = e.journal("replay", journalTestNS, "obj-a", "-to", seqOf(1), "-out", early)
	if !strings.Contains(out, "2 entries") {
		t.Errorf("replay output:\n%s", out)
	}
	if kv := journalReadKV(t, early); kv["a"] != "1" || kv["b"] != `{"hello": "world"}` || len(kv) != 2 {
		t.Errorf("replay -to %s: kv = %v", seqOf(1), kv)
	}
	if _, _, err := journalCmd(t, t.Context(), "replay", journalTestNS, "obj-a", "-out", early, "-nats", e.srv.URL()); err == nil || !strings.Contains(err.Error(), "-force") {
		t.Errorf("replay onto an existing file: %v", err)
	}
	e.journal("replay", journalTestNS, "obj-a", "-at", entries[2].Time.Format(time.RFC3339Nano), "-out", early, "-force")
	if kv := journalReadKV(t, early); kv["a"] != "2" || kv["b"] == "" {
		t.Errorf("replay -at entry 2: kv = %v", kv)
	}
	last := filepath.Join(dir, "last.db")
	out = e.journal("replay", journalTestNS, "obj-a", "-out", last)
	if !strings.Contains(out, "alarm set for") {
		t.Errorf("replay does not report the alarm:\n%s", out)
	}
	if kv := journalReadKV(t, last); kv["a"] != "2" || kv["b"] != "" || len(kv) != 2 {
		t.Errorf("replay to the end: kv = %v", kv)
	}
	if haveSQL {
		db, err := sql.Open("sqlite", "file:"+last+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var x int64
		var y string
		if err := db.QueryRow("SELECT x, y FROM t").Scan(&x, &y); err != nil || x != 7 || y != "seven" {
			t.Errorf("replayed SQL table: %d %q %v", x, y, err)
		}
		db.Close()
	}

	// fork: a new object with the state as of entry 2, served by the runtime.
	out = e.journal("fork", journalTestNS, "obj-a", "obj-fork", "-to", seqOf(2))
	if !strings.Contains(out, "3 entries") {
		t.Errorf("fork output:\n%s", out)
	}
	if got := e.mustCall("obj-fork", "get", "a"); got != "2" {
		t.Errorf("fork: a = %q, want 2", got)
	}
	if got := e.mustCall("obj-fork", "get", "b"); got != `{"hello": "world"}` {
		t.Errorf("fork: b = %q", got)
	}
	e.mustCall("obj-fork", "put", "a=3") // the fork is live
	if got := e.mustCall("obj-a", "get", "a"); got != "2" {
		t.Errorf("source after the fork's write: a = %q, want 2", got)
	}
	if _, _, err := journalCmd(t, t.Context(), "fork", journalTestNS, "obj-a", "obj-fork", "-nats", e.srv.URL()); err == nil || !strings.Contains(err.Error(), "already has a journal") {
		t.Errorf("fork onto an existing journal: %v", err)
	}
	// A fork of the whole journal, SQL included.
	e.journal("fork", journalTestNS, "obj-a", "obj-fork-all")
	if got := e.mustCall("obj-fork-all", "get", "bin"); got != "\xff\x00\x01" {
		t.Errorf("fork-all: bin = %q", got)
	}
	if haveSQL {
		if got := e.mustCall("obj-fork-all", "sql-count", ""); got != "1" {
			t.Errorf("fork-all: %s rows in t, want 1", got)
		}
	}
	// A fork with a pending alarm schedules it; it is never activated here,
	// so verify finds no file for it.
	if out := e.journal("fork", journalTestNS, "obj-a", "-new-id", string(actor.NewUniqueID())); !strings.Contains(out, "alarm is set for") || !strings.Contains(out, "scheduled") {
		t.Errorf("fork with an alarm:\n%s", out)
	}

	// tail: an entry written after it started.
	tailOut, tailErr := &lockedBuffer{}, &lockedBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"journal", "tail", journalTestNS, "-nats", e.srv.URL()}, tailOut, tailErr)
	}()
	journalWaitFor(t, "tail to start", func() bool { return strings.Contains(tailErr.String(), "following") }, done)
	e.mustCall("obj-b", "put", "tailed=yes")
	journalWaitFor(t, "tail to print the entry", func() bool { return strings.Contains(tailOut.String(), `put "tailed" = "yes"`) }, done)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("tail: %v\nstderr:\n%s", err, tailErr.String())
	}
	if !strings.HasPrefix(tailOut.String(), journalTestNS+"/"+idB+" seq ") {
		t.Errorf("tail output:\n%s", tailOut.String())
	}

	// verify: every live file matches its journal...
	e.closeRuntime()
	out = e.journal("verify", "-data", e.data)
	if strings.Count(out, "OK ") != 4 || strings.Count(out, "no file ") != 1 || !strings.Contains(out, "5 objects: 4 OK, 0 diverged, 1 without a file, 0 skipped, 0 failed") {
		t.Errorf("verify:\n%s", out)
	}
	// ...until one is changed behind the journal's back.
	live := filepath.Join(e.data, "objects", journalTestNS, idA+".db")
	journalCorrupt(t, live, "a", "999")
	vout, verr, err := journalCmd(t, t.Context(), "verify", "-data", e.data, "-nats", e.srv.URL())
	if err == nil || !strings.Contains(err.Error(), "1 object diverged") {
		t.Errorf("verify after corruption: err = %v", err)
	}
	if !strings.Contains(vout, "DIVERGED  "+journalTestNS+"/"+idA) || !strings.Contains(vout, `key "a": live file 999, journal 2`) {
		t.Errorf("verify after corruption:\n%s\nstderr:\n%s", vout, verr)
	}
	if out := e.journal("verify", journalTestNS, "obj-b", "-data", e.data); !strings.HasPrefix(out, "OK ") {
		t.Errorf("verify obj-b:\n%s", out)
	}
	out = e.journal("verify", journalTestNS, "nobody", "-data", e.data)
	if !strings.Contains(out, "no journal") {
		t.Errorf("verify of an object without a journal:\n%s", out)
	}

	// Without -nats: the store of -data, opened in this process...
	e.srv.Shutdown()
	out, errb, err := journalCmd(t, t.Context(), "ls", "-data", e.data)
	if err != nil || !strings.Contains(out, idA) || !strings.Contains(out, idB) {
		t.Errorf("ls -data: %v\n%s%s", err, out, errb)
	}
	// ...unless opendo dev holds it.
	unlock, err := lockDataDir(e.data)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = journalCmd(t, t.Context(), "ls", "-data", e.data)
	unlock()
	if err == nil || !strings.Contains(err.Error(), "opendo dev is running on this data dir: pass -nats nats://127.0.0.1:4222") {
		t.Errorf("ls -data while locked: %v", err)
	}
}

// journalCorrupt changes key in an object's file without journaling it.
func journalCorrupt(t *testing.T, path, key, value string) {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seq, _ := db.Seq()
	if err := db.Begin(ctx, storage.TxContext{Time: time.Now(), Seed: 7}, false); err != nil {
		t.Fatal(err)
	}
	if err := db.Storage().Put(ctx, key, []byte(value)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkDurable(ctx, seq, db.LastTx()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// journalWaitFor polls cond until it holds, failing the test after 30 s or if
// done delivers first.
func journalWaitFor(t *testing.T, what string, cond func() bool, done <-chan error) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case err := <-done:
			t.Fatalf("waiting for %s: returned early: %v", what, err)
		case <-deadline:
			t.Fatalf("waiting for %s: timed out", what)
		case <-tick.C:
		}
	}
}

func TestJournalUsage(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "needs a subcommand"},
		{[]string{"frob"}, "unknown journal subcommand"},
		{[]string{"show", "jtest"}, "NS NAME or NS -id ID"},
		{[]string{"show", "bad.ns", "x"}, "namespace"},
		{[]string{"show", "jtest", "x", "-id", "0123456789abcdef0123456789abcdef"}, "not both"},
		{[]string{"show", "jtest", "-id", "nope"}, "invalid"},
		{[]string{"replay", "jtest", "x"}, "-out"},
		{[]string{"replay", "jtest", "x", "-out", "f.db", "-to", "3", "-at", "2025-01-01T00:00:00Z"}, "exclusive"},
		{[]string{"replay", "jtest", "x", "-out", "f.db", "-at", "yesterday"}, "RFC 3339"},
		{[]string{"fork", "jtest", "x"}, "NEWNAME"},
		{[]string{"fork", "jtest", "x", "x"}, "is the source"},
		{[]string{"ls", "a", "b", "c"}, "[NS [NAME]]"},
	} {
		_, _, err := journalCmd(t, ctx, tc.args...)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("journal %q: %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
	if _, _, err := journalCmd(t, ctx, "ls", "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("ls -h: %v", err)
	}
	if _, _, err := journalCmd(t, ctx, "ls", "-data", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no opendo data") {
		t.Errorf("ls on an empty data dir: %v", err)
	}
}

func TestJournalInterspersedFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	to := fs.Int("to", 0, "")
	asJSON := fs.Bool("json", false, "")
	pos, err := parseInterspersed(fs, []string{"ns", "-to", "3", "name", "-json", "--", "-x"})
	if err != nil || strings.Join(pos, " ") != "ns name -x" || *to != 3 || !*asJSON {
		t.Errorf("pos %q, to %d, json %v, err %v", pos, *to, *asJSON, err)
	}
}

func TestJournalValueFormat(t *testing.T) {
	p := &entryPrinter{}
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{[]byte("42"), "42"},
		{[]byte(`{"a": [1, 2]}`), `{"a":[1,2]}`},
		{[]byte("hello"), `"hello"`},
		{[]byte(""), `""`},
		{[]byte("tab\there"), `"tab\there"`},
		{[]byte{0xff, 0x00}, "0xff00"},
		{[]byte("bell\a"), "0x62656c6c07"},
		{bytes.Repeat([]byte{1}, 100), "0x" + strings.Repeat("01", maxShownHex) + "... (100 bytes)"},
		{[]byte(strings.Repeat("é", 150)), `"` + strings.Repeat("é", 100) + `"... (300 bytes)`},
	} {
		if got := p.value(tc.in); got != tc.want {
			t.Errorf("value(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := p.sqlArg("it's"); got != "'it''s'" {
		t.Errorf("sqlArg = %s", got)
	}
	if got := p.sqlArg([]byte{1, 2}); got != "X'0102'" {
		t.Errorf("sqlArg = %s", got)
	}
}

// TestJournalHonoursNATSURL: without -nats or -data, opendo journal talks to
// $NATS_URL as the other commands do; -data still opens a local store.
func TestJournalHonoursNATSURL(t *testing.T) {
	e := newJournalEnv(t)
	e.mustCall("obj-a", "put", "a=1")
	t.Setenv("NATS_URL", e.srv.URL())
	out, errb, err := journalCmd(t, t.Context(), "ls", "-json")
	if err != nil || !strings.Contains(out, string(actor.NameID(journalTestNS, "obj-a"))) {
		t.Fatalf("journal ls with $NATS_URL: %v\n%s\n%s", err, out, errb)
	}
	if _, _, err := journalCmd(t, t.Context(), "ls", "-data", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no opendo data") {
		t.Fatalf("journal ls -data EMPTY with $NATS_URL set: %v, want the local store looked for", err)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/journal"
)

// TestJournalSnapshots: once the runtime has taken snapshots and purged
// the history they cover, the journal commands start from the snapshots
// and say when the history asked for is gone.
func TestJournalSnapshots(t *testing.T) {
	e := newJournalEnvWith(t, func(c *actor.Config) {
		c.SnapshotEvery = 5
		c.Retention = &journal.Retention{KeepEntries: 2}
	})
	const name, n = "obj-s", 24
	want := map[string]string{}
	e.mustCall(name, "put", "k1=1")
	want["k1"] = "1"
	early := e.showJSON(name)[0].Seq
	e.mustCall(name, "alarm", "")
	for i := 3; i <= n; i++ {
		k, v := fmt.Sprintf("k%d", i%4), fmt.Sprint(i)
		e.mustCall(name, "put", k+"="+v)
		want[k] = v
	}

	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	jr, err := journal.Open(t.Context(), js, journal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	subject := e.rt.Subjects().Journal(journalTestNS, string(actor.NameID(journalTestNS, name)))
	// Uploads and purges run in the background: wait for a purge.
	journalWaitFor(t, "history to be purged", func() bool {
		first, err := jr.FirstSeq(t.Context(), subject)
		return err == nil && first > early
	}, nil)

	// show and ls say so.
	if out := e.journal("show", journalTestNS, name); !strings.Contains(out, "(entries before seq ") || !strings.Contains(out, "were purged; latest snapshot at seq ") {
		t.Errorf("show after a purge:\n%s", out)
	}
	var o objInfo
	if err := json.Unmarshal([]byte(e.journal("ls", journalTestNS, name, "-json")), &o); err != nil {
		t.Fatal(err)
	}
	if o.FirstSeq <= early || o.SnapshotSeq == 0 || o.SnapshotSeq > o.LastSeq {
		t.Errorf("ls -json after a purge: %+v", o)
	}
	if out := e.journal("ls", journalTestNS); !strings.Contains(out, "FIRST SEQ") || !strings.Contains(out, "SNAPSHOT") {
		t.Errorf("ls table:\n%s", out)
	}

	// replay at the head: the snapshot and the tail.
	dir := t.TempDir()
	head := filepath.Join(dir, "head.db")
	out := e.journal("replay", journalTestNS, name, "-out", head)
	if !strings.Contains(out, "the snapshot at seq") || !strings.Contains(out, "alarm set for") {
		t.Errorf("replay output:\n%s", out)
	}
	if kv := journalReadKV(t, head); fmt.Sprint(kv) != fmt.Sprint(want) {
		t.Errorf("replay at the head: kv = %v, want %v", kv, want)
	}
	// replay before the purge: refused.
	_, _, err = journalCmd(t, t.Context(), "replay", journalTestNS, name, "-to", fmt.Sprint(early), "-out", filepath.Join(dir, "early.db"), "-nats", e.srv.URL())
	if err == nil || !strings.Contains(err.Error(), "was purged (retention); the earliest point available is seq ") {
		t.Errorf("replay -to a purged seq: %v", err)
	}
	_, _, err = journalCmd(t, t.Context(), "fork", journalTestNS, name, "obj-early", "-to", fmt.Sprint(early), "-nats", e.srv.URL())
	if err == nil || !strings.Contains(err.Error(), "was purged (retention)") {
		t.Errorf("fork -to a purged seq: %v", err)
	}

	// fork at the head: the runtime serves the new object from its snapshot.
	out = e.journal("fork", journalTestNS, name, "obj-s-fork")
	if !strings.Contains(out, "stored as the snapshot of") || !strings.Contains(out, "alarm is set for") {
		t.Errorf("fork output:\n%s", out)
	}
	for k, v := range want {
		if got := e.mustCall("obj-s-fork", "get", k); got != v {
			t.Errorf("fork: %s = %q, want %q", k, got, v)
		}
	}
	// Its first entry applies to that snapshot, and says so.
	if fe := e.showJSON("obj-s-fork"); len(fe) != 1 || !fe[0].FromSnapshot {
		t.Errorf("the fork's entries: %+v", fe)
	}
	if out := e.journal("show", journalTestNS, "obj-s-fork"); !strings.Contains(out, "  from the snapshot at seq ") || !strings.Contains(out, "# (a fork: its history starts at seq ") {
		t.Errorf("show of the fork:\n%s", out)
	}
	e.mustCall("obj-s-fork", "put", "k1=forked")
	if got := e.mustCall(name, "get", "k1"); got != want["k1"] {
		t.Errorf("source after the fork's write: k1 = %q", got)
	}
	// A fork of the fork (whose journal is one marker and a write).
	e.journal("fork", journalTestNS, "obj-s-fork", "obj-s-fork2")
	if got := e.mustCall("obj-s-fork2", "get", "k1"); got != "forked" {
		t.Errorf("fork of the fork: k1 = %q", got)
	}

	// verify: the live files match the snapshots plus their journal.
	e.closeRuntime()
	for _, obj := range []string{name, "obj-s-fork"} {
		if out := e.journal("verify", journalTestNS, obj, "-data", e.data); !strings.HasPrefix(out, "OK ") {
			t.Errorf("verify %s:\n%s", obj, out)
		}
	}
}

// TestJournalLiveRestore: a restore made by a handler on a live runtime
// (not appended by hand) is shown, replayed and verified.
func TestJournalLiveRestore(t *testing.T) {
	e := newJournalEnv(t)
	const name = "obj-live-restore"
	e.mustCall(name, "put", "a=1")
	e.mustCall(name, "sql", "")
	b := e.mustCall(name, "bookmark", "")
	e.mustCall(name, "put", "a=2")
	e.mustCall(name, "put", "b=2")
	undo := e.mustCall(name, "restore", b)
	if got := e.mustCall(name, "get", "a"); got != "1" {
		t.Fatalf("after the restore: a = %q", got)
	}
	if code, _ := e.call(name, "get", "b"); code != 404 {
		t.Fatalf("after the restore: b is still there (%d)", code)
	}

	out := e.journal("show", journalTestNS, name, "-restores")
	if !strings.Contains(out, b) {
		t.Errorf("show -restores does not list the restore to %s:\n%s", b, out)
	}
	dir := t.TempDir()
	before := filepath.Join(dir, "before.db")
	e.journal("replay", journalTestNS, name, "-to", undo, "-out", before)
	if kv := journalReadKV(t, before); fmt.Sprint(kv) != fmt.Sprint(map[string]string{"a": "2", "b": "2"}) {
		t.Errorf("replay -to the undo bookmark: %v", kv)
	}
	head := filepath.Join(dir, "head.db")
	e.journal("replay", journalTestNS, name, "-out", head)
	if kv := journalReadKV(t, head); fmt.Sprint(kv) != fmt.Sprint(map[string]string{"a": "1"}) {
		t.Errorf("replay at the head: %v", kv)
	}
	if out := e.journal("verify", journalTestNS, name); !strings.Contains(out, "OK") {
		t.Errorf("verify after a live restore:\n%s", out)
	}
}

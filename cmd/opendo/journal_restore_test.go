package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/bus"
	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
	"github.com/opendo/opendo/storage/sqlite"
)

// handJournal appends entries to one object's journal by hand, as the
// runtime would: fenced, one transaction per entry.
type handJournal struct {
	t       *testing.T
	jr      *journal.Journal
	subject string
	last    uint64
	seed    uint64
	entries map[uint64]*journal.Entry
}

// handJournalOf opens the journal of e's server for object name, which the
// runtime must not hold.
func (e *journalEnv) handJournalOf(name string) *handJournal {
	e.t.Helper()
	return &handJournal{t: e.t, jr: e.openJournal(), subject: journalSubject(e.t, name), entries: map[uint64]*journal.Entry{}}
}

func (e *journalEnv) openJournal() *journal.Journal {
	e.t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		e.t.Fatal(err)
	}
	jr, err := journal.Open(e.t.Context(), js, journal.Config{})
	if err != nil {
		e.t.Fatal(err)
	}
	return jr
}

// journalSubject is the journal subject of object name of the test
// namespace, as the runtime computes it.
func journalSubject(t *testing.T, name string) string {
	t.Helper()
	subj, err := bus.NewSubjects(bus.DefaultPrefix, bus.DefaultPartitions)
	if err != nil {
		t.Fatal(err)
	}
	return subj.Journal(journalTestNS, string(actor.NameID(journalTestNS, name)))
}

// append journals one transaction of mutations and returns its sequence.
func (h *handJournal) append(muts ...storage.Mutation) uint64 {
	h.t.Helper()
	h.seed++
	now := time.Now()
	e := &journal.Entry{CommitID: ulid.Make(), Time: now, Txns: []storage.Txn{{
		RequestID: "req-" + strconv.FormatUint(h.seed, 10),
		Context:   storage.TxContext{Time: now, Seed: h.seed},
		Mutations: muts,
	}}}
	seq, err := h.jr.Append(h.t.Context(), h.subject, h.last, e)
	if err != nil {
		h.t.Fatal(err)
	}
	h.last, h.entries[seq] = seq, e
	return seq
}

// restore journals a restore to target.
func (h *handJournal) restore(target uint64) uint64 {
	h.t.Helper()
	return h.append(storage.Mutation{Op: storage.OpRestore, Target: target})
}

// bookmark returns the bookmark of the entry at seq.
func (h *handJournal) bookmark(seq uint64) journal.Bookmark {
	return journal.Bookmark{Seq: seq, CommitID: h.entries[seq].CommitID}
}

// liveFile writes an object file at path the way the runtime would hold
// it: each step's transactions applied and recorded as of its sequence.
func liveFile(t *testing.T, path string, steps ...liveStep) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if err := db.Apply(t.Context(), s.seq, s.txns); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

type liveStep struct {
	seq  uint64
	txns []storage.Txn
}

// step applies the entry at seq as the runtime applies it: a restore as
// its transaction without mutations (the target's state is already there).
func (h *handJournal) step(seq uint64) liveStep {
	txns := h.entries[seq].Txns
	if _, ok := h.entries[seq].Restore(); ok {
		tx := txns[0]
		tx.Mutations = nil
		txns = []storage.Txn{tx}
	}
	return liveStep{seq: seq, txns: txns}
}

// objState is an object's state as replay writes it.
type objState struct {
	kv    string // the kv view, as fmt prints a map
	rows  string // the rows of table t ("" if there is no t)
	alarm string // the alarm ("" if none)
}

var replayAlarmLine = regexp.MustCompile(`(?m)^alarm set for (\S+)$`)

// replayState replays object name with extra flags and returns its state
// and replay's output.
func (e *journalEnv) replayState(name string, args ...string) (objState, string) {
	e.t.Helper()
	out := filepath.Join(e.t.TempDir(), "replay.db")
	stdout := e.journal(append([]string{"replay", journalTestNS, name, "-out", out}, args...)...)
	st := objState{kv: fmt.Sprint(journalReadKV(e.t, out))}
	if m := replayAlarmLine.FindStringSubmatch(stdout); m != nil {
		st.alarm = m[1]
	}
	db, err := sql.Open("sqlite", "file:"+out+"?mode=ro")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM sqlite_schema WHERE name = 't'").Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	if n > 0 {
		rows, err := db.Query("SELECT x, y FROM t ORDER BY rowid")
		if err != nil {
			e.t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var x int64
			var y string
			if err := rows.Scan(&x, &y); err != nil {
				e.t.Fatal(err)
			}
			fmt.Fprintf(&b, "%d:%s ", x, y)
		}
		if err := rows.Err(); err != nil {
			e.t.Fatal(err)
		}
		st.rows = b.String()
	}
	return st, stdout
}

func put(k, v string) storage.Mutation {
	return storage.Mutation{Op: storage.OpPut, Key: k, Value: []byte(v)}
}

func sqlExec(q string, args ...any) storage.Mutation {
	return storage.Mutation{Op: storage.OpSQL, SQL: q, Args: args}
}

// TestJournalRestores: an object whose history has restore entries (KV,
// SQL and alarms, restores to the empty state, to earlier entries, to a
// state a restore made, and to a sequence between its entries), through
// every journal command.
func TestJournalRestores(t *testing.T) {
	e := newJournalEnv(t)
	ctx := t.Context()
	const name = "obj-r"
	h := e.handJournalOf(name)
	t1 := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	t2 := t1.Add(time.Hour)
	createT := sqlExec("CREATE TABLE IF NOT EXISTS t (x INTEGER, y TEXT)")

	s1 := h.append(put("z", "0"))
	e.mustCall("obj-other", "put", "o=1") // a sequence of another object
	other, err := h.jr.LastSeq(ctx, journalSubject(t, "obj-other"))
	if err != nil {
		t.Fatal(err)
	}
	s2 := h.restore(other) // between two entries: the state as of s1
	s3 := h.restore(0)     // the empty state
	s4 := h.append(put("a", "1"), put("b", "1"), storage.Mutation{Op: storage.OpSetAlarm, Alarm: t1.UnixMilli()})
	s5 := h.append(createT, sqlExec("INSERT INTO t (x, y) VALUES (?, ?)", int64(7), "seven"))
	s6 := h.append(put("a", "2"), storage.Mutation{Op: storage.OpDelete, Key: "b"}, storage.Mutation{Op: storage.OpDeleteAlarm})
	s7 := h.restore(s4)
	s8 := h.append(put("c", "3"), createT, sqlExec("INSERT INTO t (x, y) VALUES (?, ?)", int64(8), "eight"))
	s9 := h.restore(s6)
	s10 := h.append(put("d", "4"), storage.Mutation{Op: storage.OpSetAlarm, Alarm: t2.UnixMilli()})
	s11 := h.restore(s8) // a state that a restore made
	restoreSeqs := []uint64{s2, s3, s7, s9, s11}

	at1, at2 := fmtEntryTime(t1), fmtEntryTime(t2)
	states := map[uint64]objState{
		s1:  {kv: "map[z:0]"},
		s2:  {kv: "map[z:0]"},
		s3:  {kv: "map[]"},
		s4:  {kv: "map[a:1 b:1]", alarm: at1},
		s5:  {kv: "map[a:1 b:1]", rows: "7:seven ", alarm: at1},
		s6:  {kv: "map[a:2]", rows: "7:seven "},
		s7:  {kv: "map[a:1 b:1]", alarm: at1},
		s8:  {kv: "map[a:1 b:1 c:3]", rows: "8:eight ", alarm: at1},
		s9:  {kv: "map[a:2]", rows: "7:seven "},
		s10: {kv: "map[a:2 d:4]", rows: "7:seven ", alarm: at2},
		s11: {kv: "map[a:1 b:1 c:3]", rows: "8:eight ", alarm: at1},
	}

	t.Run("show", func(t *testing.T) {
		out := e.journal("show", journalTestNS, name)
		for _, want := range []string{
			fmt.Sprintf("restore to seq %d (bookmark unknown: the journal no longer has this object's entry at seq %d)", other, other),
			"restore to the empty state (seq 0)",
			fmt.Sprintf("restore to seq %d (bookmark %s)", s4, h.bookmark(s4)),
			fmt.Sprintf("restore to seq %d (bookmark %s)", s6, h.bookmark(s6)),
			fmt.Sprintf("restore to seq %d (bookmark %s)", s8, h.bookmark(s8)),
			`sql "INSERT INTO t (x, y) VALUES (?, ?)" [8, 'eight']`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("show lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "from the snapshot") {
			t.Errorf("show flags an entry as from a snapshot:\n%s", out)
		}

		entries := e.showJSON(name)
		if len(entries) != 11 {
			t.Fatalf("show -json: %d entries, want 11", len(entries))
		}
		var got []string
		for _, je := range entries {
			m := je.Txns[0].Mutations[0]
			if m.Op != "restore" {
				if m.Target != nil || m.Bookmark != "" {
					t.Errorf("seq %d: %s with a target: %+v", je.Seq, m.Op, m)
				}
				continue
			}
			if m.Target == nil {
				t.Errorf("seq %d: restore without a target", je.Seq)
				continue
			}
			got = append(got, fmt.Sprintf("%d>%d %s", je.Seq, *m.Target, m.Bookmark))
		}
		want := []string{
			fmt.Sprintf("%d>%d ", s2, other),
			fmt.Sprintf("%d>0 %s", s3, journal.Bookmark{}),
			fmt.Sprintf("%d>%d %s", s7, s4, h.bookmark(s4)),
			fmt.Sprintf("%d>%d %s", s9, s6, h.bookmark(s6)),
			fmt.Sprintf("%d>%d %s", s11, s8, h.bookmark(s8)),
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("show -json restores:\n got %q\nwant %q", got, want)
		}

		// -restores: the object's restorations, a table and JSON lines.
		out = e.journal("show", journalTestNS, name, "-restores")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2+len(restoreSeqs) || !strings.HasPrefix(lines[1], "SEQ ") {
			t.Fatalf("show -restores:\n%s", out)
		}
		for i, seq := range restoreSeqs {
			target, _ := h.entries[seq].Restore()
			f := strings.Fields(lines[2+i])
			if len(f) < 5 || f[0] != fmt.Sprint(seq) || f[2] != h.entries[seq].Txns[0].RequestID || f[3] != fmt.Sprint(target) {
				t.Errorf("show -restores row %d = %q, want seq %d, request %s, target %d", i, lines[2+i], seq, h.entries[seq].Txns[0].RequestID, target)
				continue
			}
			switch wantBM := h.bookmarkString(target); {
			case target == other && f[4] != "unknown":
				t.Errorf("show -restores row %d: bookmark %q, want unknown", i, lines[2+i])
			case target != other && f[4] != wantBM:
				t.Errorf("show -restores row %d: bookmark %q, want %s", i, f[4], wantBM)
			}
		}
		var restores []jsonRestore
		for line := range strings.Lines(e.journal("show", journalTestNS, name, "-restores", "-json", "-from", fmt.Sprint(s4))) {
			var r jsonRestore
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("show -restores -json line %q: %v", line, err)
			}
			restores = append(restores, r)
		}
		if len(restores) != 3 {
			t.Fatalf("show -restores -json -from %d: %+v, want 3", s4, restores)
		}
		if r := restores[2]; r.Seq != s11 || r.Target != s8 || r.Bookmark != h.bookmark(s8).String() ||
			r.Request != h.entries[s11].Txns[0].RequestID || !r.Time.Equal(h.entries[s11].Time) || r.Commit != h.entries[s11].CommitID.String() {
			t.Errorf("show -restores -json, last: %+v", r)
		}
	})

	t.Run("replay", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			to   uint64
		}{
			{"after the restore between entries", s2},
			{"after the restore to the empty state", s3},
			{"before a restore", s6},
			{"at a restore", s7},
			{"after a restore", s8},
			{"at a restore to a restore's target", s9},
			{"after it", s10},
			{"at the last entry", s11},
			{"beyond the last entry", s11 + 100},
		} {
			want := states[min(tc.to, s11)]
			got, out := e.replayState(name, "-to", fmt.Sprint(tc.to))
			if got != want {
				t.Errorf("%s: replay -to %d = %+v, want %+v\n%s", tc.name, tc.to, got, want, out)
			}
		}
		got, out := e.replayState(name)
		if got != states[s11] || !regexp.MustCompile(fmt.Sprintf(`restores? resolved \(nested ones included\) up to seq %d,`, s11)).MatchString(out) {
			t.Errorf("replay to the end: %+v, want %+v\n%s", got, states[s11], out)
		}
	})

	t.Run("bookmarks", func(t *testing.T) {
		bm := h.bookmark(s7).String()
		got, out := e.replayState(name, "-to", bm)
		if got != states[s7] || !strings.Contains(out, "(bookmark "+bm+")") {
			t.Errorf("replay -to %s = %+v, want %+v\n%s", bm, got, states[s7], out)
		}
		if out := e.journal("show", journalTestNS, name, "-json", "-to", h.bookmark(s5).String()); strings.Count(out, "\n") != 5 {
			t.Errorf("show -to the bookmark of the 5th entry:\n%s", out)
		}
		otherEntry, ok, err := h.jr.EntryAt(ctx, journalSubject(t, "obj-other"), other)
		if err != nil || !ok {
			t.Fatalf("obj-other's entry: %v %v", ok, err)
		}
		foreign := journal.Bookmark{Seq: other, CommitID: otherEntry.CommitID}.String()
		recreated := journal.Bookmark{Seq: s7, CommitID: ulid.Make()}.String()
		dir := t.TempDir()
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"replay", journalTestNS, name, "-out", filepath.Join(dir, "x.db"), "-to", foreign}, "has no entry at seq " + fmt.Sprint(other)},
			{[]string{"replay", journalTestNS, name, "-out", filepath.Join(dir, "x.db"), "-to", recreated}, "recreated"},
			{[]string{"fork", journalTestNS, name, "obj-r-foreign", "-to", foreign}, "invalid bookmark"},
			{[]string{"show", journalTestNS, name, "-to", recreated}, "invalid bookmark"},
			{[]string{"replay", journalTestNS, name, "-out", filepath.Join(dir, "x.db"), "-to", journal.Bookmark{}.String()}, "empty state"},
			{[]string{"show", journalTestNS, name, "-to", "12-nope"}, "want a sequence or a bookmark"},
		} {
			_, _, err := journalCmd(t, ctx, append(tc.args, "-nats", e.srv.URL())...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("journal %q: %v, want an error with %q", tc.args, err, tc.want)
			}
		}
	})

	t.Run("fork", func(t *testing.T) {
		// A copy: the source has no snapshots and its whole history.
		out := e.journal("fork", journalTestNS, name, "obj-r-copy")
		if !strings.Contains(out, "11 entries") || !strings.Contains(out, "5 restore entries copied") ||
			!strings.Contains(out, "the fork's alarm is set for "+at1) {
			t.Errorf("fork output:\n%s", out)
		}
		src, dst := e.showJSON(name), e.showJSON("obj-r-copy")
		if len(dst) != len(src) {
			t.Fatalf("fork: %d entries, source %d", len(dst), len(src))
		}
		for i := range src {
			m := src[i].Txns[0].Mutations[0]
			if m.Op != "restore" {
				continue
			}
			// The copy of the source's last entry at or before the target.
			var want uint64
			wantBM := journal.Bookmark{}.String()
			for j := range src[:i] {
				if src[j].Seq <= *m.Target {
					want = dst[j].Seq
					wantBM = journal.Bookmark{Seq: dst[j].Seq, CommitID: ulid.MustParse(dst[j].Commit)}.String()
				}
			}
			fm := dst[i].Txns[0].Mutations[0]
			if fm.Op != "restore" || fm.Target == nil || *fm.Target != want || fm.Bookmark != wantBM {
				t.Errorf("fork entry %d (source seq %d restores seq %d): %+v, want target %d bookmark %s", i, src[i].Seq, *m.Target, fm, want, wantBM)
			}
		}
		if got, _ := e.replayState("obj-r-copy"); got != states[s11] {
			t.Errorf("fork's state = %+v, want the source's %+v", got, states[s11])
		}
		// Alarms follow restores: as of s7 (a restore to s4) the alarm is
		// t1, which s6 deleted.
		out = e.journal("fork", journalTestNS, name, "obj-r-7", "-to", h.bookmark(s7).String())
		if !strings.Contains(out, "7 entries") || !strings.Contains(out, "the fork's alarm is set for "+at1) {
			t.Errorf("fork -to %d output:\n%s", s7, out)
		}
		if got, _ := e.replayState("obj-r-7"); got != states[s7] {
			t.Errorf("fork -to %d: state %+v, want %+v", s7, got, states[s7])
		}
		// As of s9 (a restore to s6) there is none, though s4 set one.
		if out := e.journal("fork", journalTestNS, name, "obj-r-9", "-to", fmt.Sprint(s9)); strings.Contains(out, "alarm") {
			t.Errorf("fork -to %d output:\n%s", s9, out)
		}
		if got, _ := e.replayState("obj-r-9"); got != states[s9] {
			t.Errorf("fork -to %d: state %+v, want %+v", s9, got, states[s9])
		}
	})

	t.Run("verify", func(t *testing.T) {
		id := string(actor.NameID(journalTestNS, name))
		var all []storage.Txn // the history without its restores
		for _, seq := range []uint64{s1, s4, s5, s6, s8, s10} {
			all = append(all, h.entries[seq].Txns...)
		}
		for _, tc := range []struct {
			name  string
			steps []liveStep
			want  string
		}{
			{"at the last restore", []liveStep{h.step(s4), h.step(s8), h.step(s11)}, "OK "},
			{"at a restore", []liveStep{h.step(s4), h.step(s7)}, "OK "},
			{"after a restore", []liveStep{h.step(s4), h.step(s5), h.step(s6), h.step(s9), h.step(s10)}, "OK "},
			{"restores ignored", []liveStep{{seq: s11, txns: all}}, "DIVERGED "},
		} {
			dir := t.TempDir()
			liveFile(t, filepath.Join(dir, journalTestNS, id+".db"), tc.steps...)
			out, errOut, err := journalCmd(t, ctx, "verify", journalTestNS, name, "-objects", dir, "-nats", e.srv.URL())
			if !strings.HasPrefix(out, tc.want) || (err == nil) != (tc.want == "OK ") {
				t.Errorf("%s: verify: %v\n%s%s", tc.name, err, out, errOut)
			}
		}
	})
}

// bookmarkString is the bookmark of the object's state as of seq, as show
// prints it in -restores.
func (h *handJournal) bookmarkString(seq uint64) string {
	if seq == 0 {
		return journal.Bookmark{}.String()
	}
	if _, ok := h.entries[seq]; !ok {
		return ""
	}
	return h.bookmark(seq).String()
}

// TestJournalHistoryBeforeSnapshot: a state before an object's oldest
// snapshot is built from its whole history while that is complete, and
// through a restore entry once it is purged; otherwise it is refused.
func TestJournalHistoryBeforeSnapshot(t *testing.T) {
	e := newJournalEnv(t)
	ctx := t.Context()
	const name = "obj-h"
	h := e.handJournalOf(name)
	s1 := h.append(put("a", "1"))
	s2 := h.restore(0)
	s3 := h.append(put("b", "1"))
	s4 := h.append(put("c", "1"))
	// A snapshot at s4, as the runtime takes them.
	dir := t.TempDir()
	live, file := filepath.Join(dir, "live.db"), filepath.Join(dir, "snapshot.db")
	liveFile(t, live, h.step(s3), h.step(s4))
	db, err := sqlite.Open(ctx, live, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Snapshot(ctx, file); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := journal.OpenSnapshots(ctx, js, journal.SnapshotConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.Put(ctx, h.subject, s4, file); err != nil {
		t.Fatal(err)
	}
	want := map[uint64]objState{s1: {kv: "map[a:1]"}, s2: {kv: "map[]"}, s3: {kv: "map[b:1]"}, s4: {kv: "map[b:1 c:1]"}}

	// The whole history is there: any state can be built.
	if got, out := e.replayState(name, "-to", fmt.Sprint(s1)); got != want[s1] || strings.Contains(out, "snapshot") {
		t.Errorf("replay -to %d before the snapshot: %+v, want %+v\n%s", s1, got, want[s1], out)
	}
	if got, out := e.replayState(name); got != want[s4] || !strings.Contains(out, fmt.Sprintf("the snapshot at seq %d (stored", s4)) {
		t.Errorf("replay: %+v, want %+v\n%s", got, want[s4], out)
	}
	if out := e.journal("show", journalTestNS, name); !strings.Contains(out, fmt.Sprintf("# (latest snapshot at seq %d, 1 snapshot; no entries purged)", s4)) {
		t.Errorf("show:\n%s", out)
	}
	// A fork of an object with snapshots is seeded with a snapshot, its
	// first entry flagged so.
	out := e.journal("fork", journalTestNS, name, "obj-h-1", "-to", fmt.Sprint(s1))
	if !strings.Contains(out, fmt.Sprintf("its state as of seq %d", s1)) {
		t.Errorf("fork -to %d:\n%s", s1, out)
	}
	if fe := e.showJSON("obj-h-1"); len(fe) != 1 || !fe[0].FromSnapshot || !strings.HasPrefix(fe[0].Txns[0].Request, "fork-of ") {
		t.Errorf("the fork's entries: %+v", fe)
	}
	if out := e.journal("show", journalTestNS, "obj-h-1"); !strings.Contains(out, "  from the snapshot at seq ") || !strings.Contains(out, "# (a fork: its history starts at seq ") {
		t.Errorf("show of the fork:\n%s", out)
	}
	if got, _ := e.replayState("obj-h-1"); got != want[s1] {
		t.Errorf("the fork's state: %+v, want %+v", got, want[s1])
	}

	// Retention purges s1: s2, a restore to the empty state, is the first
	// entry left, so the states from s2 on can still be built.
	if n, err := h.jr.Purge(ctx, h.subject, s4, journal.Retention{KeepEntries: 3}, time.Now()); err != nil || n != 1 {
		t.Fatalf("purge: %d entries, %v", n, err)
	}
	if out := e.journal("show", journalTestNS, name); !strings.Contains(out, fmt.Sprintf("# (entries before seq %d were purged; latest snapshot at seq %d, 1 snapshot)", s2, s4)) {
		t.Errorf("show after the purge:\n%s", out)
	}
	for _, seq := range []uint64{s2, s3} {
		if got, out := e.replayState(name, "-to", fmt.Sprint(seq)); got != want[seq] || !strings.Contains(out, "1 restore resolved") {
			t.Errorf("replay -to %d after the purge: %+v, want %+v\n%s", seq, got, want[seq], out)
		}
	}
	_, _, err = journalCmd(t, ctx, "replay", journalTestNS, name, "-to", fmt.Sprint(s1), "-out", filepath.Join(dir, "x.db"), "-nats", e.srv.URL())
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("history before seq %d was purged (retention); the earliest point available is seq %d", s2, s4)) {
		t.Errorf("replay -to %d after the purge: %v", s1, err)
	}
	_, _, err = journalCmd(t, ctx, "fork", journalTestNS, name, "obj-h-x", "-to", h.bookmark(s1).String(), "-nats", e.srv.URL())
	if err == nil || !strings.Contains(err.Error(), "invalid bookmark") {
		t.Errorf("fork -to the bookmark of a purged entry: %v", err)
	}
	e.journal("fork", journalTestNS, name, "obj-h-3", "-to", h.bookmark(s3).String())
	if got, _ := e.replayState("obj-h-3"); got != want[s3] {
		t.Errorf("fork -to %d after the purge: %+v, want %+v", s3, got, want[s3])
	}
	objects := t.TempDir()
	liveFile(t, filepath.Join(objects, journalTestNS, string(actor.NameID(journalTestNS, name))+".db"), h.step(s3))
	if out := e.journal("verify", journalTestNS, name, "-objects", objects); !strings.HasPrefix(out, "OK ") {
		t.Errorf("verify at seq %d after the purge:\n%s", s3, out)
	}
}

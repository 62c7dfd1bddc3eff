package rebuild_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/internal/rebuild"
	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
	"github.com/opendo/opendo/storage/sqlite"
)

// env is one object's history on a test server: its journal subject, with
// entries of another subject in between (so that its sequences are
// sparse), and its snapshots.
type env struct {
	t         *testing.T
	js        jetstream.JetStream
	j         *journal.Journal
	snaps     *journal.Snapshots
	subject   string
	noise     string
	last      uint64
	noiseLast uint64
	seqs      []uint64                  // the subject's entries, in order
	entries   map[uint64]*journal.Entry // by sequence
	clock     time.Time                 // the time of the last entry
	seed      uint64                    // the seed of the last transaction
	hashes    map[uint64]string         // content hashes of the references, by entry
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	j, err := journal.Open(t.Context(), js, journal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := journal.OpenSnapshots(t.Context(), js, journal.SnapshotConfig{Keep: journal.MaxSnapshotKeep})
	if err != nil {
		t.Fatal(err)
	}
	return &env{
		t: t, js: js, j: j, snaps: snaps,
		subject: j.Subject(3, "ns", "obj"),
		noise:   j.Subject(3, "ns", "noise"),
		entries: map[uint64]*journal.Entry{},
		hashes:  map[uint64]string{},
		clock:   time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// source returns the object's rebuild source.
func (e *env) source() *rebuild.Source {
	return &rebuild.Source{Journal: e.j, Snapshots: e.snaps, Subject: e.subject}
}

func put(key, value string) storage.Mutation {
	return storage.Mutation{Op: storage.OpPut, Key: key, Value: []byte(value)}
}

func del(key string) storage.Mutation { return storage.Mutation{Op: storage.OpDelete, Key: key} }

func sqlExec(query string, args ...any) storage.Mutation {
	return storage.Mutation{Op: storage.OpSQL, SQL: query, Args: args}
}

func setAlarm(ms int64) storage.Mutation { return storage.Mutation{Op: storage.OpSetAlarm, Alarm: ms} }

func restore(target uint64) storage.Mutation {
	return storage.Mutation{Op: storage.OpRestore, Target: target}
}

var (
	deleteAll   = storage.Mutation{Op: storage.OpDeleteAll}
	deleteAlarm = storage.Mutation{Op: storage.OpDeleteAlarm}
)

// txn returns the next transaction, holding muts.
func (e *env) txn(muts ...storage.Mutation) storage.Txn {
	e.seed++
	e.clock = e.clock.Add(time.Second)
	return storage.Txn{
		RequestID: fmt.Sprint("req-", e.seed),
		Context:   storage.TxContext{Time: e.clock, Seed: e.seed},
		Mutations: muts,
	}
}

// entry returns an entry of txns.
func (e *env) entry(txns ...storage.Txn) *journal.Entry {
	return &journal.Entry{CommitID: ulid.Make(), Time: e.clock, Txns: txns}
}

// append appends an entry of one transaction holding muts, after an entry
// of the noise subject, and returns its sequence.
func (e *env) append(muts ...storage.Mutation) uint64 {
	e.t.Helper()
	e.appendNoise()
	return e.appendEntry(e.entry(e.txn(muts...)))
}

func (e *env) appendNoise() {
	e.t.Helper()
	seq, err := e.j.Append(e.t.Context(), e.noise, e.noiseLast, e.entry(e.txn(put("noise", "x"))))
	if err != nil {
		e.t.Fatal(err)
	}
	e.noiseLast = seq
}

// appendEntry appends en as the subject's next entry.
func (e *env) appendEntry(en *journal.Entry) uint64 {
	e.t.Helper()
	seq, err := e.j.Append(e.t.Context(), e.subject, e.last, en)
	if err != nil {
		e.t.Fatalf("append: %v", err)
	}
	e.last = seq
	e.seqs = append(e.seqs, seq)
	e.entries[seq] = en
	return seq
}

// nextSeq returns the sequence the stream's next message gets.
func (e *env) nextSeq() uint64 {
	e.t.Helper()
	info, err := e.j.Stream().Info(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.LastSeq + 1
}

// lastEntry returns the subject's last entry at or before upto, 0 if none.
func (e *env) lastEntry(upto uint64) uint64 {
	var last uint64
	for _, seq := range e.seqs {
		if seq <= upto {
			last = seq
		}
	}
	return last
}

// entriesIn returns the subject's entries with after < seq <= upto.
func (e *env) entriesIn(after, upto uint64) []uint64 {
	var seqs []uint64
	for _, seq := range e.seqs {
		if after < seq && seq <= upto {
			seqs = append(seqs, seq)
		}
	}
	return seqs
}

// effective returns transactions whose replay yields the state as of upto,
// by the definition of a restore: the state as of its target, then the
// restore's own transaction, without mutations.
func (e *env) effective(upto uint64) []storage.Txn {
	seqs := e.entriesIn(0, upto)
	// Only the last restore matters: the state after it is its target's.
	var txns []storage.Txn
	for i := len(seqs) - 1; i >= 0; i-- {
		en := e.entries[seqs[i]]
		if target, ok := en.Restore(); ok {
			tx := en.Txns[0]
			tx.Mutations = nil
			txns = append(slices.Clone(e.effective(target)), tx)
			seqs = seqs[i+1:]
			break
		}
	}
	for _, seq := range seqs {
		txns = append(txns, e.entries[seq].Txns...)
	}
	return txns
}

// state is what the tests compare of an object's state, besides its
// content hash.
type state struct {
	kv    map[string]string
	alarm int64 // 0: none
}

func (s state) String() string {
	keys := slices.Sorted(maps.Keys(s.kv))
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%s", k, s.kv[k])
	}
	fmt.Fprintf(&b, "} alarm %d", s.alarm)
	return b.String()
}

func (s state) equal(o state) bool { return maps.Equal(s.kv, o.kv) && s.alarm == o.alarm }

// model returns the KV pairs and alarm of the state as of upto.
func (e *env) model(upto uint64) state {
	s := state{kv: map[string]string{}}
	for _, tx := range e.effective(upto) {
		for _, m := range tx.Mutations {
			switch m.Op {
			case storage.OpPut:
				s.kv[m.Key] = string(m.Value)
			case storage.OpDelete:
				delete(s.kv, m.Key)
			case storage.OpDeleteAll:
				clear(s.kv)
				s.alarm = 0
			case storage.OpSetAlarm:
				s.alarm = m.Alarm
			case storage.OpDeleteAlarm:
				s.alarm = 0
			}
		}
	}
	return s
}

// stateOf reads the KV pairs and alarm of db.
func stateOf(t *testing.T, db *sqlite.DB) state {
	t.Helper()
	ctx := t.Context()
	if err := db.Begin(ctx, storage.TxContext{Time: time.Unix(1, 0)}, false); err != nil {
		t.Fatal(err)
	}
	all, err := db.Storage().List(ctx, storage.ListOptions{})
	if rerr := db.Rollback(ctx); err == nil {
		err = rerr
	}
	if err != nil {
		t.Fatal(err)
	}
	s := state{kv: map[string]string{}}
	for _, kv := range all {
		s.kv[kv.Key] = string(kv.Value)
	}
	ms, ok, err := db.AlarmTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		s.alarm = ms
	}
	return s
}

// reference builds the state as of upto by applying its effective
// transactions to a new file, without package rebuild.
func (e *env) reference(upto uint64) *sqlite.DB {
	e.t.Helper()
	ctx := e.t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(e.t.TempDir(), "ref.db"), sqlite.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	if seq := e.lastEntry(upto); seq > 0 {
		if err := db.Apply(ctx, seq, e.effective(upto)); err != nil {
			e.t.Fatalf("reference as of %d: %v", upto, err)
		}
	}
	return db
}

func contentHash(t *testing.T, db *sqlite.DB) string {
	t.Helper()
	h, err := db.ContentHash(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checkState checks that db holds the state as of upto, recorded as of the
// subject's last entry at or before it.
func (e *env) checkState(t *testing.T, db *sqlite.DB, upto uint64) {
	t.Helper()
	if seq, dirty := db.Seq(); seq != e.lastEntry(upto) || dirty {
		t.Errorf("as of %d: file at seq %d (dirty %v), want %d", upto, seq, dirty, e.lastEntry(upto))
	}
	if got, want := stateOf(t, db), e.model(upto); !got.equal(want) {
		t.Errorf("as of %d: state %v, want %v", upto, got, want)
	}
	seq := e.lastEntry(upto)
	want, ok := e.hashes[seq]
	if !ok {
		want = contentHash(t, e.reference(seq))
		e.hashes[seq] = want
	}
	if got := contentHash(t, db); got != want {
		t.Errorf("as of %d: content hash %s, want %s (the reference's)", upto, got, want)
	}
}

// build builds the state as of upto in a new file and checks it.
func (e *env) build(t *testing.T, src *rebuild.Source, upto uint64) rebuild.Stats {
	t.Helper()
	db, st, err := src.Build(t.Context(), filepath.Join(t.TempDir(), "obj.db"), upto)
	if err != nil {
		t.Fatalf("Build(%d): %v", upto, err)
	}
	defer db.Close()
	e.checkState(t, db, upto)
	if st.Seq != e.lastEntry(upto) {
		t.Errorf("Build(%d): Stats.Seq %d, want %d", upto, st.Seq, e.lastEntry(upto))
	}
	return st
}

// snapshot stores the state as of entry seq, built without package
// rebuild, as a snapshot.
func (e *env) snapshot(seq uint64) journal.SnapshotInfo {
	e.t.Helper()
	file := filepath.Join(e.t.TempDir(), "snap.db")
	if got, err := e.reference(seq).Snapshot(e.t.Context(), file); err != nil || got != seq {
		e.t.Fatalf("snapshot as of %d: %d, %v", seq, got, err)
	}
	return e.put(seq, file)
}

// put stores file as the snapshot at seq.
func (e *env) put(seq uint64, file string) journal.SnapshotInfo {
	e.t.Helper()
	info, err := e.snaps.Put(e.t.Context(), e.subject, seq, file)
	if err != nil {
		e.t.Fatal(err)
	}
	return info
}

// damage replaces the stored content of snapshot info by other bytes (the
// object store then reports a digest mismatch).
func (e *env) damage(info journal.SnapshotInfo) {
	e.t.Helper()
	ctx := e.t.Context()
	oi, err := e.snaps.ObjectStore().GetInfo(ctx, info.Name)
	if err != nil {
		e.t.Fatal(err)
	}
	stream, err := e.js.Stream(ctx, "OBJ_"+journal.DefaultSnapshotBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	subj := "$O." + journal.DefaultSnapshotBucket + ".C." + oi.NUID
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.js.Publish(ctx, subj, []byte(rand.Text())); err != nil {
		e.t.Fatal(err)
	}
}

// purge purges the entries a snapshot at covered includes, keeping none
// for retention.
func (e *env) purge(covered uint64) {
	e.t.Helper()
	if _, err := e.j.Purge(e.t.Context(), e.subject, covered, journal.Retention{}, time.Now()); err != nil {
		e.t.Fatal(err)
	}
}

// history appends a history with KV pairs, SQL and alarms, and multi
// transaction entries.
func (e *env) history() {
	e.t.Helper()
	e.append(put("a", "1"), sqlExec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, r INTEGER)"))
	e.append(sqlExec("INSERT INTO t (v, r) VALUES (?, random())", "x"), setAlarm(1000))
	e.append(put("b", "2"), del("a"))
	e.appendNoise()
	e.appendEntry(e.entry(
		e.txn(put("c", "3"), sqlExec("UPDATE t SET v = ?, r = random()", "y")),
		e.txn(deleteAlarm, sqlExec("INSERT INTO t (v, r) VALUES (?, ?)", "z", int64(7))),
	))
	e.append(setAlarm(5000), put("a", "5"))
	e.append(deleteAll, put("z", "26"), sqlExec("CREATE TABLE t2 (v)")) // drops t and the alarm too
	e.append(put("y", "25"))
}

// uptos returns 0 and every sequence up to the last of the stream.
func (e *env) uptos() []uint64 {
	var s []uint64
	for seq := range e.nextSeq() {
		s = append(s, seq)
	}
	return s
}

func TestBuildFromJournal(t *testing.T) {
	e := newEnv(t)
	e.history()
	for _, name := range []string{"no snapshot bucket", "no snapshots"} {
		src := e.source()
		if name == "no snapshot bucket" {
			src.Snapshots = nil
		}
		t.Run(name, func(t *testing.T) {
			for _, upto := range e.uptos() {
				if upto > e.last {
					continue
				}
				var read []uint64
				src.OnEntry = func(seq uint64) { read = append(read, seq) }
				st := e.build(t, src, upto)
				want := e.entriesIn(0, upto)
				if !slices.Equal(read, want) {
					t.Errorf("Build(%d): OnEntry called for %v, want %v", upto, read, want)
				}
				var txns int
				for _, seq := range want {
					txns += len(e.entries[seq].Txns)
				}
				var lastTime time.Time
				if len(want) > 0 {
					lastTime = e.entries[want[len(want)-1]].Time
				}
				if st.Snapshot != nil || st.Entries != len(want) || st.Txns != txns || st.Restores != 0 ||
					!st.LastTime.Equal(lastTime) || len(st.Skips) != 0 {
					t.Errorf("Build(%d): stats %+v, want %d entries, %d txns, last time %v", upto, st, len(want), txns, lastTime)
				}
				if err := src.Check(t.Context(), upto); err != nil {
					t.Errorf("Check(%d) = %v, want nil", upto, err)
				}
			}
		})
	}
	t.Run("after the last entry", func(t *testing.T) {
		src := e.source()
		for _, upto := range []uint64{e.last + 1, e.nextSeq(), 1 << 40} {
			path := filepath.Join(t.TempDir(), "obj.db")
			if db, _, err := src.Build(t.Context(), path, upto); !errors.Is(err, journal.ErrInvalidArgument) {
				if db != nil {
					db.Close()
				}
				t.Errorf("Build(%d) = %v, want ErrInvalidArgument", upto, err)
			}
			if err := src.Check(t.Context(), upto); !errors.Is(err, journal.ErrInvalidArgument) {
				t.Errorf("Check(%d) = %v, want ErrInvalidArgument", upto, err)
			}
		}
	})
	t.Run("replaces the file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "obj.db")
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			if err := os.WriteFile(path+suffix, []byte("an old file"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		db, _, err := e.source().Build(t.Context(), path, e.last)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if db.Path() != path {
			t.Errorf("Path() = %s, want %s", db.Path(), path)
		}
		e.checkState(t, db, e.last)
	})
	t.Run("empty journal", func(t *testing.T) {
		src := e.source()
		src.Subject = e.j.Subject(3, "ns", "empty")
		db, st, err := src.Build(t.Context(), filepath.Join(t.TempDir(), "obj.db"), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if got := stateOf(t, db); len(got.kv) != 0 || got.alarm != 0 || st.Seq != 0 || st.Entries != 0 {
			t.Errorf("Build(0) of an empty journal: state %v, stats %+v", got, st)
		}
		if err := src.Check(t.Context(), 0); err != nil {
			t.Errorf("Check(0) = %v", err)
		}
		if err := src.Check(t.Context(), 1); !errors.Is(err, journal.ErrInvalidArgument) {
			t.Errorf("Check(1) of an empty journal = %v, want ErrInvalidArgument", err)
		}
	})
}

func TestBuildFromSnapshots(t *testing.T) {
	e := newEnv(t)
	e.history()
	snaps := []uint64{e.seqs[1], e.seqs[4]}
	for _, seq := range snaps {
		e.snapshot(seq)
	}
	src := e.source()
	for _, upto := range e.uptos() {
		if upto > e.last {
			continue
		}
		var read []uint64
		src.OnEntry = func(seq uint64) { read = append(read, seq) }
		st := e.build(t, src, upto)
		var from uint64
		for _, seq := range snaps {
			if seq <= upto {
				from = seq
			}
		}
		switch {
		case from == 0 && st.Snapshot != nil:
			t.Errorf("Build(%d) started from the snapshot at %d, want none", upto, st.Snapshot.Seq)
		case from != 0 && (st.Snapshot == nil || st.Snapshot.Seq != from):
			t.Errorf("Build(%d) started from snapshot %+v, want the one at %d", upto, st.Snapshot, from)
		}
		want := e.entriesIn(from, upto)
		if !slices.Equal(read, want) || st.Entries != len(want) {
			t.Errorf("Build(%d): read %v (%d entries), want %v", upto, read, st.Entries, want)
		}
		if err := src.Check(t.Context(), upto); err != nil {
			t.Errorf("Check(%d) = %v, want nil", upto, err)
		}
	}
}

func TestBuildSkipsUnusableSnapshots(t *testing.T) {
	tests := []struct {
		name string
		// spoil stores an unusable snapshot at seq.
		spoil func(e *env, seq uint64)
	}{
		{"damaged", func(e *env, seq uint64) { e.damage(e.snapshot(seq)) }},
		{"tagged with another seq", func(e *env, seq uint64) {
			file := filepath.Join(e.t.TempDir(), "snap.db")
			if _, err := e.reference(e.seqs[2]).Snapshot(e.t.Context(), file); err != nil {
				e.t.Fatal(err)
			}
			e.put(seq, file)
		}},
		{"not a database", func(e *env, seq uint64) {
			file := filepath.Join(e.t.TempDir(), "snap.db")
			if err := os.WriteFile(file, []byte(strings.Repeat(rand.Text(), 300)), 0o600); err != nil {
				e.t.Fatal(err)
			}
			e.put(seq, file)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.history()
			e.snapshot(e.seqs[1])
			tt.spoil(e, e.seqs[4])
			src := e.source()

			st := e.build(t, src, e.last)
			if st.Snapshot == nil || st.Snapshot.Seq != e.seqs[1] {
				t.Errorf("started from %+v, want the snapshot at %d", st.Snapshot, e.seqs[1])
			}
			if len(st.Skips) != 1 || !errors.Is(st.Skips[0], journal.ErrCorrupt) {
				t.Errorf("skips %v, want one ErrCorrupt", st.Skips)
			}
			// Below the unusable snapshot, it is not tried.
			if st := e.build(t, src, e.seqs[3]); len(st.Skips) != 0 {
				t.Errorf("Build(%d): skips %v, want none", e.seqs[3], st.Skips)
			}
		})
	}
	t.Run("only unusable snapshots", func(t *testing.T) {
		e := newEnv(t)
		e.history()
		e.damage(e.snapshot(e.seqs[4]))
		src := e.source()
		st := e.build(t, src, e.last)
		if st.Snapshot != nil || len(st.Skips) != 1 || st.Entries != len(e.seqs) {
			t.Errorf("stats %+v, want the whole journal after one skip", st)
		}
		// Once the history is purged, nothing is left to build from.
		e.purge(e.seqs[4])
		_, _, err := src.Build(t.Context(), filepath.Join(t.TempDir(), "obj.db"), e.last)
		var perr *rebuild.PurgedError
		if !errors.As(err, &perr) || !errors.Is(err, storage.ErrBookmarkExpired) || !errors.Is(err, journal.ErrCorrupt) {
			t.Fatalf("Build(%d) = %v, want a PurgedError naming the damaged snapshot", e.last, err)
		}
		if perr.Seq != e.last || perr.First != e.seqs[5] || perr.Earliest != e.seqs[4] || perr.Subject != e.subject {
			t.Errorf("PurgedError %+v", perr)
		}
		t.Logf("Build: %v", err)
		// Check trusts snapshots (documented).
		if err := src.Check(t.Context(), e.last); err != nil {
			t.Errorf("Check(%d) = %v, want nil", e.last, err)
		}
	})
}

// restoreHistory appends the history of the restore tests and returns the
// sequences of its entries by name.
func restoreHistory(e *env) map[string]uint64 {
	s := map[string]uint64{}
	s["a1"] = e.append(put("a", "1"), setAlarm(1000), sqlExec("CREATE TABLE t (v TEXT)"))
	s["a2"] = e.append(put("a", "2"), setAlarm(2000), sqlExec("INSERT INTO t VALUES (random())"))
	s["r1"] = e.append(restore(s["a1"]))
	s["b1"] = e.append(put("b", "1"))
	s["c1"] = e.append(put("c", "1"), deleteAlarm)
	s["r2"] = e.append(restore(s["b1"])) // its target lies after r1
	s["d1"] = e.append(put("d", "1"))
	s["r0"] = e.append(restore(0))
	s["e1"] = e.append(put("e", "1"), sqlExec("CREATE TABLE u (v)"))
	s["r3"] = e.append(restore(s["a2"] + 1)) // a noise seq: the state as of a2
	s["r4"] = e.append(restore(s["r0"]))     // a restore's state: empty
	s["f1"] = e.append(put("f", "1"))
	s["r5"] = e.append(restore(s["r2"]))
	return s
}

func TestRestore(t *testing.T) {
	e := newEnv(t)
	s := restoreHistory(e)
	src := e.source()
	want := map[string]map[string]string{
		"a1": {"a": "1"},
		"a2": {"a": "2"},
		"r1": {"a": "1"},
		"b1": {"a": "1", "b": "1"},
		"r2": {"a": "1", "b": "1"},
		"d1": {"a": "1", "b": "1", "d": "1"},
		"r0": {},
		"e1": {"e": "1"},
		"r3": {"a": "2"},
		"r4": {},
		"f1": {"f": "1"},
		"r5": {"a": "1", "b": "1"},
	}
	for name, kv := range want {
		db, _, err := src.Build(t.Context(), filepath.Join(t.TempDir(), "obj.db"), s[name])
		if err != nil {
			t.Fatalf("Build(%s) = %v", name, err)
		}
		if got := stateOf(t, db); !maps.Equal(got.kv, kv) {
			t.Errorf("Build(%s): %v, want %v", name, got, kv)
		}
		db.Close()
	}
	// The state at a restore is the state at its target, SQL and alarm
	// included.
	for _, r := range []string{"r1", "r2", "r0", "r3", "r4", "r5"} {
		target, _ := e.entries[s[r]].Restore()
		at := e.reference(target)
		db, st, err := src.Build(t.Context(), filepath.Join(t.TempDir(), "obj.db"), s[r])
		if err != nil {
			t.Fatalf("Build(%s) = %v", r, err)
		}
		if got, want := contentHash(t, db), contentHash(t, at); got != want {
			t.Errorf("Build(%s): content hash %s, want the target's %s", r, got, want)
		}
		if st.Restores == 0 || st.Seq != s[r] || !st.LastTime.Equal(e.entries[s[r]].Time) {
			t.Errorf("Build(%s): stats %+v", r, st)
		}
		db.Close()
	}

	// Every state, without snapshots and with some before, between and
	// after the restores (from the sequences of the other subject in
	// between too, without them).
	for _, snaps := range [][]string{nil, {"b1"}, {"a2", "r2", "f1"}} {
		for _, name := range snaps {
			e.snapshot(s[name])
		}
		uptos := append([]uint64{0}, e.seqs...)
		if snaps == nil {
			uptos = e.uptos()[:e.last+1]
		}
		t.Run(fmt.Sprint("snapshots ", snaps), func(t *testing.T) {
			for _, upto := range uptos {
				st := e.build(t, src, upto)
				if len(st.Skips) != 0 {
					t.Errorf("Build(%d): skips %v", upto, st.Skips)
				}
				if err := src.Check(t.Context(), upto); err != nil {
					t.Errorf("Check(%d) = %v, want nil", upto, err)
				}
			}
		})
	}
}

func TestCatchUp(t *testing.T) {
	e := newEnv(t)
	src := e.source()
	a1 := e.append(put("a", "1"), setAlarm(1000))
	e.append(put("a", "2"), setAlarm(2000))
	x := e.append(put("x", "1"))

	dir := t.TempDir()
	path := filepath.Join(dir, "obj.db")
	db, _, err := src.Build(t.Context(), path, x)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()

	// Nothing to catch up: the same file.
	same, st, err := src.CatchUp(t.Context(), db, 0)
	if err != nil || same != db || st.Seq != x || st.Entries != 0 {
		t.Fatalf("CatchUp at the last entry = %p (db %p), %+v, %v", same, db, st, err)
	}

	// Entries only: the same file, rolled forward.
	y := e.append(put("y", "1"))
	e.append(put("z", "1"))
	same, st, err = src.CatchUp(t.Context(), db, y)
	if err != nil || same != db || st.Seq != y || st.Entries != 1 {
		t.Fatalf("CatchUp(%d) = %p (db %p), %+v, %v", y, same, db, st, err)
	}
	e.checkState(t, db, y)

	// A restore: a new file at the same path, the old one closed.
	e.append(restore(a1))
	b1 := e.append(put("b", "1"))
	old := db
	db, st, err = src.CatchUp(t.Context(), old, 0)
	if err != nil {
		t.Fatal(err)
	}
	if db == old || db.Path() != path {
		t.Errorf("CatchUp across a restore returned %p at %s, want a new file at %s", db, db.Path(), path)
	}
	if _, _, err := old.AlarmTime(t.Context()); !errors.Is(err, storage.ErrInvalidState) {
		t.Errorf("the file before the restore: %v, want it closed", err)
	}
	e.checkState(t, db, b1)
	if got := stateOf(t, db); !maps.Equal(got.kv, map[string]string{"a": "1", "b": "1"}) || got.alarm != 1000 {
		t.Errorf("after the restore: %v, want a=1 b=1 and the alarm at 1000", got)
	}
	if st.Restores != 1 || st.Seq != b1 || st.Entries != 3 {
		t.Errorf("stats %+v, want 1 restore, 3 entries up to %d", st, b1)
	}

	// A restore to the empty state drops the alarm too.
	r0 := e.append(restore(0))
	if db, _, err = src.CatchUp(t.Context(), db, 0); err != nil {
		t.Fatal(err)
	}
	e.checkState(t, db, r0)
	if got := stateOf(t, db); len(got.kv) != 0 || got.alarm != 0 {
		t.Errorf("after a restore to 0: %v, want nothing", got)
	}

	// A restore to a state between earlier restores.
	e.append(put("c", "1"))
	r2 := e.append(restore(b1))
	if db, _, err = src.CatchUp(t.Context(), db, 0); err != nil {
		t.Fatal(err)
	}
	e.checkState(t, db, r2)

	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		if n := ent.Name(); n != "obj.db" && n != "obj.db-wal" && n != "obj.db-shm" {
			t.Errorf("%s left in the directory", n)
		}
	}

	// From an empty file, across every restore.
	empty, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "obj.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	full, _, err := src.CatchUp(t.Context(), empty, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	e.checkState(t, full, e.last)
}

// TestPurged: once history is purged (retention zero), the states before
// the oldest snapshot can only be built through a restore entry, to the
// empty state or to a state that is itself kept; Check agrees with Build.
func TestPurged(t *testing.T) {
	e := newEnv(t)
	src := e.source()
	e.append(put("a", "1"))
	a2 := e.append(put("a", "2"))
	b1 := e.append(put("b", "1"))
	c1 := e.append(put("c", "1"))
	e.snapshot(b1)
	e.purge(b1)
	r0 := e.append(restore(0))
	z1 := e.append(put("z", "1"))
	e.append(restore(z1))
	r2 := e.append(restore(a2)) // its target was purged
	r3 := e.append(restore(z1)) // but this one's was not
	y1 := e.append(put("y", "1"))

	// purgedAt returns the state asked for whose history is gone, 0 if it
	// can be built.
	check := func(t *testing.T, purgedAt func(upto uint64) uint64, earliest uint64) {
		t.Helper()
		for _, upto := range e.uptos() {
			if upto > e.last {
				continue
			}
			want := purgedAt(upto)
			cerr := src.Check(t.Context(), upto)
			if want == 0 {
				e.build(t, src, upto)
				if cerr != nil {
					t.Errorf("Check(%d) = %v, want nil", upto, cerr)
				}
				continue
			}
			db, _, err := src.Build(t.Context(), filepath.Join(t.TempDir(), "obj.db"), upto)
			if db != nil {
				db.Close()
			}
			for _, f := range []struct {
				name string
				err  error
			}{{"Build", err}, {"Check", cerr}} {
				var perr *rebuild.PurgedError
				if !errors.Is(f.err, storage.ErrBookmarkExpired) || !errors.As(f.err, &perr) {
					t.Errorf("%s(%d) = %v, want a PurgedError", f.name, upto, f.err)
					continue
				}
				if perr.Subject != e.subject || perr.Seq != want || perr.First != c1 || perr.Earliest != earliest {
					t.Errorf("%s(%d): %+v, want seq %d, first %d, earliest %d", f.name, upto, perr, want, c1, earliest)
				}
			}
		}
	}
	t.Run("snapshot", func(t *testing.T) {
		check(t, func(upto uint64) uint64 {
			switch {
			case upto > 0 && upto < b1:
				// Before the first entry left, even before a1: whether
				// there were entries before it is not known any more.
				return upto
			case upto >= r2 && upto < r3:
				return a2
			}
			return 0
		}, b1)
	})
	// A newer snapshot replaces the one the purge kept: the entries
	// between them are all that is left of that part of the history.
	e.snaps = mustSnapshots(t, e.js, 1)
	src.Snapshots = e.snaps
	e.snapshot(y1)
	t.Run("newer snapshot only", func(t *testing.T) {
		check(t, func(upto uint64) uint64 {
			switch {
			case upto > 0 && upto < r0:
				return upto
			case upto >= r2 && upto < r3:
				return a2
			}
			return 0
		}, y1)
	})
}

func mustSnapshots(t *testing.T, js jetstream.JetStream, keep int) *journal.Snapshots {
	t.Helper()
	s, err := journal.OpenSnapshots(t.Context(), js, journal.SnapshotConfig{Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBadRestore(t *testing.T) {
	for _, tt := range []struct {
		name   string
		target func(own uint64) uint64
	}{
		{"itself", func(own uint64) uint64 { return own }},
		{"the next", func(own uint64) uint64 { return own + 1 }},
		{"far ahead", func(uint64) uint64 { return 1 << 40 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			src := e.source()
			a1 := e.append(put("a", "1"))
			path := filepath.Join(t.TempDir(), "obj.db")
			db, _, err := src.Build(t.Context(), path, a1)
			if err != nil {
				t.Fatal(err)
			}
			own := e.nextSeq()
			if seq := e.appendEntry(e.entry(e.txn(restore(tt.target(own))))); seq != own {
				t.Fatalf("appended at %d, want %d", seq, own)
			}
			e.append(put("b", "1"))
			for _, upto := range []uint64{own, e.last} {
				if db, _, err := src.Build(t.Context(), filepath.Join(t.TempDir(), "obj.db"), upto); !errors.Is(err, journal.ErrCorrupt) {
					if db != nil {
						db.Close()
					}
					t.Errorf("Build(%d) = %v, want ErrCorrupt", upto, err)
				}
				if err := src.Check(t.Context(), upto); !errors.Is(err, journal.ErrCorrupt) {
					t.Errorf("Check(%d) = %v, want ErrCorrupt", upto, err)
				}
			}
			e.build(t, src, own-1)
			got, _, err := src.CatchUp(t.Context(), db, 0)
			if !errors.Is(err, journal.ErrCorrupt) || got != nil {
				t.Errorf("CatchUp = %v, %v; want ErrCorrupt", got, err)
			}
			if _, _, err := db.AlarmTime(t.Context()); !errors.Is(err, storage.ErrInvalidState) {
				t.Errorf("the file after a failed CatchUp: %v, want it closed", err)
			}
		})
	}
}

func TestFromSnapshotEntry(t *testing.T) {
	t.Run("first entry", func(t *testing.T) {
		e := newEnv(t)
		src := e.source()
		fork := e.entry(e.txn())
		fork.FromSnapshot = true
		f := e.appendEntry(fork)
		a1 := e.append(put("a", "1"))
		for _, upto := range []uint64{f, a1} {
			if db, _, err := src.Build(t.Context(), filepath.Join(t.TempDir(), "obj.db"), upto); err == nil {
				db.Close()
				t.Errorf("Build(%d) without the fork's snapshot succeeded", upto)
			} else {
				t.Logf("Build(%d): %v", upto, err)
			}
			if err := src.Check(t.Context(), upto); err == nil {
				t.Errorf("Check(%d) without the fork's snapshot = nil", upto)
			}
		}
		e.build(t, src, 0)

		// The fork's snapshot: its state, recorded as of its first entry.
		ref, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "fork.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		if err := ref.Apply(t.Context(), f, []storage.Txn{e.txn(put("forked", "yes"))}); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "snap.db")
		if _, err := ref.Snapshot(t.Context(), file); err != nil {
			t.Fatal(err)
		}
		e.put(f, file)
		for upto, want := range map[uint64]map[string]string{
			f:  {"forked": "yes"},
			a1: {"forked": "yes", "a": "1"},
		} {
			db, st, err := src.Build(t.Context(), filepath.Join(t.TempDir(), "obj.db"), upto)
			if err != nil {
				t.Fatalf("Build(%d) = %v", upto, err)
			}
			if got := stateOf(t, db); !maps.Equal(got.kv, want) || st.Snapshot == nil {
				t.Errorf("Build(%d): %v (stats %+v), want %v from the snapshot", upto, got, st, want)
			}
			db.Close()
			if err := src.Check(t.Context(), upto); err != nil {
				t.Errorf("Check(%d) = %v", upto, err)
			}
		}
	})
	t.Run("later entry", func(t *testing.T) {
		e := newEnv(t)
		src := e.source()
		a1 := e.append(put("a", "1"))
		fork := e.entry(e.txn(put("b", "1")))
		fork.FromSnapshot = true
		f := e.appendEntry(fork)
		b2 := e.append(put("b", "2"))
		for _, upto := range []uint64{f, b2} {
			if db, _, err := src.Build(t.Context(), filepath.Join(t.TempDir(), "obj.db"), upto); !errors.Is(err, journal.ErrSnapshotNotFound) {
				if db != nil {
					db.Close()
				}
				t.Errorf("Build(%d) = %v, want ErrSnapshotNotFound", upto, err)
			}
			if err := src.Check(t.Context(), upto); !errors.Is(err, journal.ErrSnapshotNotFound) {
				t.Errorf("Check(%d) = %v, want ErrSnapshotNotFound", upto, err)
			}
		}
		db, _, err := src.Build(t.Context(), filepath.Join(t.TempDir(), "obj.db"), a1)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := src.CatchUp(t.Context(), db, 0); !errors.Is(err, journal.ErrSnapshotNotFound) {
			t.Errorf("CatchUp = %v, want ErrSnapshotNotFound", err)
		}
		// A later restore makes it moot.
		r := e.append(restore(a1))
		c1 := e.append(put("c", "1"))
		for _, upto := range []uint64{r, c1} {
			e.build(t, src, upto)
			if err := src.Check(t.Context(), upto); err != nil {
				t.Errorf("Check(%d) = %v, want nil", upto, err)
			}
		}
	})
}

// TestBuildManyEntries crosses the batches in which entries are applied,
// and a restore between them.
func TestBuildManyEntries(t *testing.T) {
	e := newEnv(t)
	var target, before uint64
	for i := range 700 {
		seq := e.appendEntry(e.entry(e.txn(put(fmt.Sprint("k", i%60), fmt.Sprint(i)), setAlarm(int64(i)))))
		switch i {
		case 100:
			target = seq
		case 450:
			before = seq
			e.appendEntry(e.entry(e.txn(restore(target))))
		}
	}
	src := e.source()
	for _, upto := range []uint64{target, before, before + 1, e.last} {
		st := e.build(t, src, upto)
		if wantRestores := upto > before; (st.Restores == 1) != wantRestores || st.Restores > 1 {
			t.Errorf("Build(%d): %d restores", upto, st.Restores)
		}
	}
	empty, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "obj.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, st, err := src.CatchUp(t.Context(), empty, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e.checkState(t, db, e.last)
	// Entries counts the entries read from the starting point on, not
	// those of the restore's target.
	if st.Seq != e.last || st.Restores != 1 || st.Entries != len(e.seqs) {
		t.Errorf("CatchUp: stats %+v, want seq %d, 1 restore, %d entries", st, e.last, len(e.seqs))
	}
}

// TestLongUndoChain: each restore targets the previous restore entry (an
// undo of an undo of ...). Such chains are followed link by link, not by
// nesting builds: the build works at any length, with short temp names.
func TestLongUndoChain(t *testing.T) {
	e := newEnv(t)
	base := e.append(put("a", "1"))
	e.append(put("a", "2"))
	prev := e.append(restore(base))
	for range 60 {
		prev = e.append(restore(prev))
	}
	last := e.append(put("b", "1"))
	st := e.build(t, e.source(), last)
	if st.Restores < 61 {
		t.Errorf("Stats.Restores %d, want at least 61", st.Restores)
	}
}

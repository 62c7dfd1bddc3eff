package journal_test

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite"

	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/journal"
)

func openSnapshots(t testing.TB, js jetstream.JetStream, cfg journal.SnapshotConfig) *journal.Snapshots {
	t.Helper()
	s, err := journal.OpenSnapshots(t.Context(), js, cfg)
	if err != nil {
		t.Fatalf("open snapshots: %v", err)
	}
	return s
}

// writeDB writes a WAL-mode SQLite file with rows rows of 200 random bytes
// and closes it (after a TRUNCATE checkpoint, as a snapshot is taken).
func writeDB(t testing.TB, path string, rows int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		"PRAGMA journal_mode = WAL",
		"CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)",
		"BEGIN",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i := range rows {
		if _, err := db.Exec("INSERT INTO t (id, v) VALUES (?, ?)", i, rand.Text()+rand.Text()+rand.Text()+rand.Text()+rand.Text()+rand.Text()+rand.Text()); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"COMMIT", "PRAGMA wal_checkpoint(TRUNCATE)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeRandom writes size random bytes to path.
func writeRandom(t testing.TB, path string, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// noTemp fails if dir holds anything but the named files.
func noTemp(t testing.TB, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !slices.Contains(names, e.Name()) {
			t.Errorf("%s left in %s", e.Name(), dir)
		}
	}
}

func seqsOf(infos []journal.SnapshotInfo) []uint64 {
	var s []uint64
	for _, i := range infos {
		s = append(s, i.Seq)
	}
	return s
}

func TestSnapshotRoundTrip(t *testing.T) {
	srv := natstest.Start(t)
	s := openSnapshots(t, srv.JetStream(t), journal.SnapshotConfig{})
	ctx := t.Context()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	writeDB(t, src, 5000)
	want := readFile(t, src)
	subject := "opendo.journal.3.counter.a"

	before := time.Now()
	info, err := s.Put(ctx, subject, 42, src)
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if info.Subject != subject || info.Seq != 42 || info.Size != int64(len(want)) || info.Name == "" || info.Digest == "" ||
		info.Time.Before(before.Add(-time.Second)) || info.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("put returned %+v", info)
	}
	latest, ok, err := s.Latest(ctx, subject)
	if d := latest.Time.Sub(info.Time).Abs(); d > time.Second {
		t.Errorf("latest time %v, put time %v", latest.Time, info.Time)
	}
	if latest.Time = info.Time; err != nil || !ok || latest != info {
		t.Fatalf("latest = %+v, %v, %v; want %+v", latest, ok, err, info)
	}

	out := t.TempDir()
	dst := filepath.Join(out, "restored.db")
	if err := os.WriteFile(dst, []byte("an older file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Fetch(ctx, latest, dst); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if got := readFile(t, dst); !bytes.Equal(got, want) {
		t.Fatalf("fetched %d bytes, differing from the %d put", len(got), len(want))
	}
	noTemp(t, out, "restored.db")

	db, err := sql.Open("sqlite", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	var check string
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 5000 {
		t.Errorf("restored rows = %d, %v; want 5000", n, err)
	}
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v", check, err)
	}
}

func TestSnapshotLatestNone(t *testing.T) {
	srv := natstest.Start(t)
	s := openSnapshots(t, srv.JetStream(t), journal.SnapshotConfig{})
	info, ok, err := s.Latest(t.Context(), "opendo.journal.0.ns.none")
	if err != nil || ok {
		t.Errorf("latest = %+v, %v, %v; want none", info, ok, err)
	}
	if all, err := s.List(t.Context(), "opendo.journal.0.ns.none"); err != nil || len(all) != 0 {
		t.Errorf("list = %v, %v; want none", all, err)
	}
}

func TestSnapshotKeep(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	ctx := t.Context()
	file := filepath.Join(t.TempDir(), "f")
	writeRandom(t, file, 1000)
	subject, other := "opendo.journal.0.ns.a", "opendo.journal.0.ns.b"

	put := func(s *journal.Snapshots, subject string, seq uint64) error {
		t.Helper()
		info, err := s.Put(ctx, subject, seq, file)
		if err == nil && info.Seq != seq {
			t.Errorf("put %d returned %+v", seq, info)
		}
		return err
	}
	check := func(s *journal.Snapshots, subject string, want ...uint64) {
		t.Helper()
		all, err := s.List(ctx, subject)
		if err != nil || !slices.Equal(seqsOf(all), want) {
			t.Fatalf("list %s = %v, %v; want %v", subject, seqsOf(all), err, want)
		}
		latest, ok, err := s.Latest(ctx, subject)
		if err != nil || !ok || latest.Seq != want[len(want)-1] {
			t.Fatalf("latest %s = %+v, %v, %v; want %d", subject, latest, ok, err, want[len(want)-1])
		}
	}

	s := openSnapshots(t, js, journal.SnapshotConfig{})
	for _, seq := range []uint64{10, 20, 30} {
		if err := put(s, subject, seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := put(s, other, 7); err != nil {
		t.Fatal(err)
	}
	check(s, subject, 20, 30)
	if err := put(s, subject, 30); err != nil { // a retry
		t.Fatal(err)
	}
	check(s, subject, 20, 30)
	if err := put(s, subject, 25); err != nil { // older than the newest, newer than the oldest
		t.Fatal(err)
	}
	check(s, subject, 25, 30)
	if err := put(s, subject, 5); !errors.Is(err, journal.ErrInvalidArgument) {
		t.Errorf("put of an old snapshot: %v, want ErrInvalidArgument", err)
	}
	check(s, subject, 25, 30)

	s3 := openSnapshots(t, js, journal.SnapshotConfig{Keep: 3})
	if err := put(s3, subject, 40); err != nil {
		t.Fatal(err)
	}
	check(s3, subject, 25, 30, 40)
	check(s, subject, 25, 30, 40) // readers see every slot whatever their Keep

	s1 := openSnapshots(t, js, journal.SnapshotConfig{Keep: 1})
	if err := put(s1, subject, 50); err != nil {
		t.Fatal(err)
	}
	check(s1, subject, 50)
	check(s1, other, 7)

	// The bucket holds one object for subject and one for other.
	objs, err := s.ObjectStore().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	slices.Sort(names)
	if want := []string{subject + "/0", other + "/0"}; !slices.Equal(names, want) {
		t.Errorf("objects %v, want %v", names, want)
	}
}

// TestSnapshotFetchIntegrity damages stored chunks through the bucket's
// stream and checks that Fetch refuses them and leaves the target alone.
func TestSnapshotFetchIntegrity(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	ctx := t.Context()
	s := openSnapshots(t, js, journal.SnapshotConfig{Keep: 1})
	stream, err := js.Stream(ctx, "OBJ_"+journal.DefaultSnapshotBucket)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	data := writeRandom(t, src, 1<<20+1000)

	// chunks replaces the stored chunks of info with parts (the store
	// reads whatever messages the object's chunk subject holds).
	chunks := func(info journal.SnapshotInfo, parts ...[]byte) {
		t.Helper()
		oi, err := s.ObjectStore().GetInfo(ctx, info.Name)
		if err != nil {
			t.Fatal(err)
		}
		subj := "$O." + journal.DefaultSnapshotBucket + ".C." + oi.NUID
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			if _, err := js.Publish(ctx, subj, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	flipped := bytes.Clone(data)
	flipped[700_000] ^= 1
	const c = 512 << 10
	tests := []struct {
		name   string
		damage func(journal.SnapshotInfo)
	}{
		{"bit flip", func(i journal.SnapshotInfo) { chunks(i, flipped[:c], flipped[c:2*c], flipped[2*c:]) }},
		{"missing chunk", func(i journal.SnapshotInfo) { chunks(i, data[:c], data[2*c:]) }},
		{"truncated", func(i journal.SnapshotInfo) { chunks(i, data[:c], data[c:2*c]) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject := fmt.Sprint("opendo.journal.0.ns.o", i)
			info, err := s.Put(ctx, subject, 9, src)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(info)
			out := t.TempDir()
			dst := filepath.Join(out, "db")
			if err := os.WriteFile(dst, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			err = s.Fetch(ctx, info, dst)
			if !errors.Is(err, journal.ErrCorrupt) || !errors.Is(err, jetstream.ErrDigestMismatch) {
				t.Errorf("fetch: %v, want ErrCorrupt and ErrDigestMismatch", err)
			}
			t.Logf("fetch: %v", err)
			if got := readFile(t, dst); string(got) != "keep me" {
				t.Errorf("target overwritten with %d bytes", len(got))
			}
			noTemp(t, out, "db")
		})
	}

	t.Run("replaced", func(t *testing.T) {
		subject := "opendo.journal.0.ns.replaced"
		old, err := s.Put(ctx, subject, 10, src)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, subject, 20, src); err != nil { // Keep 1: same slot
			t.Fatal(err)
		}
		out := t.TempDir()
		if err := s.Fetch(ctx, old, filepath.Join(out, "db")); !errors.Is(err, journal.ErrSnapshotNotFound) {
			t.Errorf("fetch of a replaced snapshot: %v, want ErrSnapshotNotFound", err)
		}
		noTemp(t, out)
	})
	t.Run("missing", func(t *testing.T) {
		err := s.Fetch(ctx, journal.SnapshotInfo{Subject: "a.b", Seq: 1, Name: "a.b/0"}, filepath.Join(t.TempDir(), "db"))
		if !errors.Is(err, journal.ErrSnapshotNotFound) {
			t.Errorf("fetch of a missing snapshot: %v, want ErrSnapshotNotFound", err)
		}
	})
}

// TestSnapshotManySubjects stores snapshots of 200 subjects and logs what
// Latest costs, next to listing the bucket (the alternative to slots).
func TestSnapshotManySubjects(t *testing.T) {
	srv := natstest.Start(t)
	s := openSnapshots(t, srv.JetStream(t), journal.SnapshotConfig{})
	ctx := t.Context()
	file := filepath.Join(t.TempDir(), "f")
	writeRandom(t, file, 4096)
	const n = 200
	subject := func(i int) string { return fmt.Sprintf("opendo.journal.%d.ns.o%d", i%64, i) }
	for i := range n {
		for seq := range uint64(i%3 + 1) { // 1 to 3 puts, 333 objects kept
			if _, err := s.Put(ctx, subject(i), 100*uint64(i)+seq+1, file); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := time.Now()
	for i := range n {
		info, ok, err := s.Latest(ctx, subject(i))
		if want := 100*uint64(i) + uint64(i%3) + 1; err != nil || !ok || info.Seq != want {
			t.Fatalf("latest %s = %+v, %v, %v; want seq %d", subject(i), info, ok, err, want)
		}
	}
	perLatest := time.Since(start) / n
	start = time.Now()
	objs, err := s.ObjectStore().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Latest: %v each; listing the bucket's %d objects: %v", perLatest, len(objs), time.Since(start))
}

func TestSnapshotInvalid(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	ctx := t.Context()
	for _, cfg := range []journal.SnapshotConfig{
		{Bucket: "a.b"}, {Bucket: "a b"}, {Keep: -1}, {Keep: journal.MaxSnapshotKeep + 1}, {Replicas: 6},
	} {
		if _, err := journal.OpenSnapshots(ctx, js, cfg); !errors.Is(err, journal.ErrInvalidArgument) {
			t.Errorf("open %+v: %v, want ErrInvalidArgument", cfg, err)
		}
	}
	s := openSnapshots(t, js, journal.SnapshotConfig{})
	file := filepath.Join(t.TempDir(), "f")
	writeRandom(t, file, 10)
	for _, tc := range []struct {
		subject string
		seq     uint64
	}{{"opendo.journal.*", 1}, {"", 1}, {"a..b", 1}, {"opendo.journal.0.ns.x", 0}} {
		if _, err := s.Put(ctx, tc.subject, tc.seq, file); !errors.Is(err, journal.ErrInvalidArgument) {
			t.Errorf("put %q at %d: %v, want ErrInvalidArgument", tc.subject, tc.seq, err)
		}
	}
	if _, err := s.Put(ctx, "opendo.journal.0.ns.x", 1, filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("put of a missing file: %v, want ErrNotExist", err)
	}
	if _, _, err := s.Latest(ctx, "opendo.>"); !errors.Is(err, journal.ErrInvalidArgument) {
		t.Errorf("latest of a wildcard: %v, want ErrInvalidArgument", err)
	}
}

// BenchmarkSnapshotPutFetch measures Put and Fetch of 1 MB and 10 MB files
// (random content) on an embedded server over loopback TCP.
func BenchmarkSnapshotPutFetch(b *testing.B) {
	srv := natstest.Start(b)
	s := openSnapshots(b, srv.JetStream(b), journal.SnapshotConfig{})
	dir := b.TempDir()
	for _, size := range []int{1 << 20, 10 << 20} {
		name := fmt.Sprintf("%dMB", size>>20)
		src := filepath.Join(dir, name)
		writeRandom(b, src, size)
		subject := "opendo.journal.0.bench." + name
		var seq uint64
		var info journal.SnapshotInfo
		b.Run("Put/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				seq++
				var err error
				if info, err = s.Put(b.Context(), subject, seq, src); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Fetch/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			dst := filepath.Join(dir, name+".fetched")
			for b.Loop() {
				if err := s.Fetch(b.Context(), info, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSnapshotLatest measures Latest with 1,000 objects in the bucket
// (500 subjects with 2 snapshots each), next to listing the bucket, which
// is what finding a subject's snapshots by name would cost without slots.
func BenchmarkSnapshotLatest(b *testing.B) {
	srv := natstest.Start(b)
	s := openSnapshots(b, srv.JetStream(b), journal.SnapshotConfig{})
	file := filepath.Join(b.TempDir(), "f")
	writeRandom(b, file, 4096)
	const subjects = 500
	for i := range subjects {
		for seq := range uint64(2) {
			if _, err := s.Put(b.Context(), fmt.Sprint("opendo.journal.0.ns.o", i), seq+1, file); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("Latest", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok, err := s.Latest(b.Context(), fmt.Sprint("opendo.journal.0.ns.o", i%subjects)); err != nil || !ok {
				b.Fatal(ok, err)
			}
			i++
		}
	})
	b.Run("ObjectStore.List", func(b *testing.B) {
		for b.Loop() {
			objs, err := s.ObjectStore().List(b.Context())
			if err != nil || len(objs) != 2*subjects {
				b.Fatal(len(objs), err)
			}
		}
	})
}

package actor_test

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/examples/counter"
	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
)

// BenchmarkActivation100k measures the first request to an object with
// 100,000 journal entries on a node without its file: rebuilt from the
// journal, then from the latest snapshot plus the (empty) tail.
//
//	go test -run '^$' -bench Activation100k -benchtime 5x ./actor/
func BenchmarkActivation100k(b *testing.B) {
	const entries = 100_000
	srv := natstest.Start(b)
	nc := srv.Conn(b)
	ctx := context.Background()
	jr, err := journal.Open(ctx, srv.JetStream(b), journal.Config{})
	if err != nil {
		b.Fatal(err)
	}
	id := actor.NameID(counter.Namespace, "big")
	rt0, err := actor.New(actor.Config{Conn: nc, DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	subject := rt0.Subjects().Journal(counter.Namespace, string(id))
	var last uint64
	for i := 1; i <= entries; i++ {
		e := &journal.Entry{CommitID: ulid.Make(), Time: time.Now(), Txns: []storage.Txn{{
			RequestID: strconv.Itoa(i),
			Context:   storage.TxContext{Time: time.Now(), Seed: uint64(i)},
			Mutations: []storage.Mutation{{Op: storage.OpPut, Key: "n", Value: []byte(strconv.Itoa(i))}},
		}}}
		if last, err = jr.Append(ctx, subject, last, e); err != nil {
			b.Fatal(err)
		}
	}
	keepAll := &journal.Retention{KeepEntries: math.MaxUint64}
	activate := func(b *testing.B, snapshotEvery int) time.Duration {
		b.Helper()
		// Each activation on its own runtime, closed after it: another
		// would serve the object from memory.
		rt, c := counterRuntime(b, actor.Config{Conn: nc, DataDir: b.TempDir(), SnapshotEvery: snapshotEvery, Retention: keepAll})
		defer rt.Close(ctx)
		start := time.Now()
		resp, err := c.Namespace(counter.Namespace).Get("big").Do(ctx, "get", nil)
		took := time.Since(start)
		if err != nil || string(resp.Body) != strconv.Itoa(entries) {
			b.Fatalf("get = %v, %v", resp, err)
		}
		return took
	}
	run := func(b *testing.B, snapshotEvery int) {
		var total time.Duration
		for b.Loop() {
			total += activate(b, snapshotEvery)
		}
		b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/activation")
	}
	b.Run("journal", func(b *testing.B) { run(b, -1) })

	// Take one snapshot: activate with SnapshotEvery 1 and wait for it.
	activate(b, 1)
	snaps, err := journal.OpenSnapshots(ctx, srv.JetStream(b), journal.SnapshotConfig{})
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if info, ok, err := snaps.Latest(ctx, subject); err == nil && ok && info.Seq == last {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no snapshot")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Run("snapshot", func(b *testing.B) { run(b, -1) })
}

// counterRuntime starts a runtime serving the counter example with cfg and
// returns it with a client. The caller closes it.
func counterRuntime(b *testing.B, cfg actor.Config) (*actor.Runtime, *actor.Client) {
	b.Helper()
	rt, err := actor.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Register(counter.Namespace, counter.New); err != nil {
		b.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	c, _ := actor.NewClient(cfg.Conn, actor.ClientConfig{Timeout: time.Minute})
	return rt, c
}

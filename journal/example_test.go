package journal_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
)

func ExampleEntry() {
	e := &journal.Entry{
		CommitID: ulid.MustParse("01JQ0000000000000000000009"),
		Time:     time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Txns: []storage.Txn{{
			RequestID: "req-1",
			Context:   storage.TxContext{Time: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), Seed: 1},
			Mutations: []storage.Mutation{
				{Op: storage.OpPut, Key: "n", Value: []byte("1")},
				{Op: storage.OpSQL, SQL: "INSERT INTO log VALUES (?, ?)", Args: []any{int64(1), "hello"}},
			},
		}},
	}
	b, err := e.MarshalBinary()
	if err != nil {
		panic(err)
	}
	d, err := journal.Decode(b)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d bytes\n%s", len(b), d)
	// Output:
	// 103 bytes
	// entry commit=01JQ0000000000000000000009 time=2025-03-01T12:00:00Z txns=1
	// txn 0 request="req-1" time=2025-03-01T12:00:00Z seed=0x0000000000000001 mutations=2
	//   put key="n" value=0x31
	//   sql "INSERT INTO log VALUES (?, ?)" args=[int 1, text "hello"]
}

// An owner appends fenced on the last sequence it knows and replays the
// subject on activation.
func ExampleJournal() {
	var js jetstream.JetStream // connected elsewhere
	ctx := context.Background()
	j, err := journal.Open(ctx, js, journal.Config{})
	if err != nil {
		panic(err)
	}
	subject := j.Subject(7, "counter", "01JQ0000000000000000000009")

	// Activation: replay everything after the state we have (here none).
	last, err := j.LastSeq(ctx, subject)
	if err != nil {
		panic(err)
	}
	err = j.Read(ctx, subject, 0, last, func(seq uint64, e *journal.Entry) error {
		// apply e.Txns, record seq
		return nil
	})
	if err != nil {
		panic(err)
	}

	// Commit: append fenced on last.
	e := &journal.Entry{CommitID: ulid.Make(), Time: time.Now(), Txns: []storage.Txn{{RequestID: "r"}}}
	seq, err := j.Append(ctx, subject, last, e)
	switch {
	case errors.Is(err, journal.ErrConflict):
		// another owner wrote: deactivate the object
	case err != nil:
		// not durable: reset to the last durable state, fail held replies
	default:
		fmt.Println("durable at sequence", seq)
	}
}

package journal

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/internal/natstest"
)

// readFunc is a read strategy with Journal.Read's contract (upto given).
type readFunc func(ctx context.Context, j *Journal, subject string, after, upto uint64, fn func(uint64, *Entry) error) error

// BenchmarkRead compares ways to replay one object's subject in a stream
// that also holds other objects' entries (see doc.go for the results):
//
//	batch:   batched direct gets (what Read does)
//	ordered: an ordered consumer filtered on the subject
//	each:    one direct get per entry (next message by subject)
func BenchmarkRead(b *testing.B) {
	srv := natstest.Start(b)
	js := srv.JetStream(b)
	j, err := Open(b.Context(), js, Config{})
	if err != nil {
		b.Fatal(err)
	}
	sizes := []int{1, 100, 10_000}
	last := map[int]uint64{}
	// Interleave the objects with as many entries of 100 other objects.

	data, _ := smallEntry().MarshalBinary()
	for i := range sizes[len(sizes)-1] {
		for _, n := range sizes {
			if i < n {
				_, err := js.PublishAsync(j.Subject(0, "bench", fmt.Sprint("n", n)), data)
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		if _, err := js.PublishAsync(j.Subject(0, "noise", fmt.Sprint(i%100)), data); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	for _, n := range sizes {
		if last[n], err = j.LastSeq(b.Context(), j.Subject(0, "bench", fmt.Sprint("n", n))); err != nil {
			b.Fatal(err)
		}
	}
	strategies := []struct {
		name string
		read readFunc
	}{
		{"batch", func(ctx context.Context, j *Journal, subject string, after, upto uint64, fn func(uint64, *Entry) error) error {
			return j.Read(ctx, subject, after, upto, fn)
		}},
		{"ordered", readOrdered},
		{"each", readEach},
	}
	for _, n := range sizes {
		for _, s := range strategies {
			b.Run(fmt.Sprintf("n=%d/%s", n, s.name), func(b *testing.B) {
				subj := j.Subject(0, "bench", fmt.Sprint("n", n))
				for b.Loop() {
					var got int
					err := s.read(b.Context(), j, subj, 0, last[n], func(uint64, *Entry) error {
						got++
						return nil
					})
					if err != nil || got != n {
						b.Fatalf("read %d entries, %v; want %d", got, err, n)
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			})
		}
	}
}

func readOrdered(ctx context.Context, j *Journal, subject string, after, upto uint64, fn func(uint64, *Entry) error) error {
	c, err := j.Stream().OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    after + 1,
	})
	if err != nil {
		return err
	}
	// Ordered consumers live on the server until their inactive threshold
	// (5 min) unless deleted, and v2.15 allows 1,000 consumers per stream.
	defer j.Stream().DeleteConsumer(context.WithoutCancel(ctx), c.CachedInfo().Name)
	it, err := c.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		seq := md.Sequence.Stream
		if seq > upto {
			return nil
		}
		e, err := Decode(m.Data())
		if err != nil {
			return err
		}
		if err := fn(seq, e); err != nil {
			return err
		}
		if seq == upto || md.NumPending == 0 {
			return nil
		}
	}
}

func readEach(ctx context.Context, j *Journal, subject string, after, upto uint64, fn func(uint64, *Entry) error) error {
	for next := after + 1; next <= upto; {
		m, err := j.Stream().GetMsg(ctx, next, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.Sequence > upto {
			return nil
		}
		e, err := Decode(m.Data)
		if err != nil {
			return err
		}
		if err := fn(m.Sequence, e); err != nil {
			return err
		}
		next = m.Sequence + 1
	}
	return nil
}

// BenchmarkAppend measures one fenced, synchronous append of a small entry
// with and without fsync per message.
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("syncAlways=%v", sync), func(b *testing.B) {
			var opts []natstest.Option
			if sync {
				opts = append(opts, natstest.WithSyncAlways())
			}
			srv := natstest.Start(b, opts...)
			j, err := Open(b.Context(), srv.JetStream(b), Config{})
			if err != nil {
				b.Fatal(err)
			}
			subj := j.Subject(0, "bench", "append")
			e := smallEntry()
			var last uint64
			start := time.Now()
			for b.Loop() {
				e.CommitID = ulid.Make()
				if last, err = j.Append(b.Context(), subj, last, e); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
		})
	}
}

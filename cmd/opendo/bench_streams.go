package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/opendo/opendo/journal"
)

// benchSpread is how many streams jspub-3s and incr-1000-3s spread their
// writes over.
const benchSpread = 3

// BenchStreamStats are the figures of jspub-3s and incr-1000-3s.
type BenchStreamStats struct {
	Streams int `json:"streams"`
	// Leaders names the server leading each stream (on a cluster), in
	// stream order, once journal.BalanceLeaders spread them over the
	// servers.
	Leaders []string `json:"leaders,omitempty"`
}

// balance spreads the leaders of streams (of js) over the cluster's
// servers (journal.BalanceLeaders) and returns them; nil for streams of one
// replica, which have nothing to place.
func (e *benchEnv) balance(ctx context.Context, js jetstream.JetStream, names []string) ([]string, error) {
	if e.o.replicas < 2 {
		return nil, nil
	}
	return journal.BalanceLeaders(ctx, js, names)
}

// runSpreadPub runs jspub-3s: jspub's publishes, each caller to one of 3
// streams configured as jspub's.
func (e *benchEnv) runSpreadPub(ctx context.Context, w benchWorkload, profile string) (_ *benchResult, err error) {
	names := make([]string, benchSpread)
	for i := range names {
		names[i] = e.pub + "_S" + strconv.Itoa(i)
		_, err := e.jss[0].CreateStream(ctx, jetstream.StreamConfig{
			Name:      names[i],
			Subjects:  []string{e.prefix + ".pubs." + strconv.Itoa(i) + ".>"},
			Storage:   jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy,
			Replicas:  e.o.replicas,
			Discard:   jetstream.DiscardNew,
		})
		if err != nil {
			return nil, fmt.Errorf("create stream %s: %w", names[i], err)
		}
	}
	defer func() {
		if e.srv == nil {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, name := range names {
				err = errors.Join(err, e.jss[0].DeleteStream(dctx, name))
			}
		}
	}()
	leaders, err := e.balance(ctx, e.jss[0], names)
	if err != nil {
		return nil, err
	}
	payload := make([]byte, e.o.payload)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	mk := func(i int) benchOp {
		js := e.jss[e.conn(i)]
		subj := e.prefix + ".pubs." + strconv.Itoa(i%benchSpread) + "." + strconv.Itoa(i)
		return func(ctx context.Context) error {
			_, err := js.Publish(ctx, subj, payload)
			return err
		}
	}
	r, err := benchTimed(ctx, e.o.callers, e.o.warmup, e.o.duration, profile, mk)
	if err != nil {
		return nil, err
	}
	r.Workload, r.Sync, r.Callers, r.Conns = w.name, e.mode, e.o.callers, min(e.o.callers, len(e.conns))
	r.BenchStreamStats = &BenchStreamStats{Streams: benchSpread, Leaders: leaders}
	return r, nil
}

// runSpreadIncr runs incr-1000-3s: incr-1000 against a runtime of its own
// whose journal is spread over 3 streams (actor.Config.JournalStreams).
func (e *benchEnv) runSpreadIncr(ctx context.Context, w benchWorkload, profile string) (_ *benchResult, err error) {
	prefix := e.prefix + "s" + strconv.Itoa(benchSpread)
	journal := strings.Replace(e.journal, "_JOURNAL", "_S"+strconv.Itoa(benchSpread)+"_JOURNAL", 1)
	names := []string{journal}
	for i := 1; i < benchSpread; i++ {
		names = append(names, journal+"_"+strconv.Itoa(i))
	}
	rt, err := e.startNodeWith(ctx, e.rtConn, "", prefix, journal, 0, benchSpread)
	if err != nil {
		return nil, err
	}
	defer func() {
		err = errors.Join(err, closeBenchRuntime(rt))
		if e.srv == nil {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, name := range append(names, journal+"_ALARMS") {
				err = errors.Join(err, e.jss[0].DeleteStream(dctx, name))
			}
		}
	}()
	// The runtime's streams are on its connection's server (in -sync
	// always mode not the raw baselines' one).
	rjs, err := jetstream.New(e.rtConn)
	if err != nil {
		return nil, err
	}
	leaders, err := e.balance(ctx, rjs, names)
	if err != nil {
		return nil, err
	}
	mk, err := e.incr1000Under(ctx, prefix)
	if err != nil {
		return nil, err
	}
	r, err := benchTimed(ctx, e.o.callers, e.o.warmup, e.o.duration, profile, mk)
	if err != nil {
		return nil, err
	}
	r.Workload, r.Sync, r.Callers, r.Conns = w.name, e.mode, e.o.callers, len(e.conns)
	r.BenchStreamStats = &BenchStreamStats{Streams: benchSpread, Leaders: leaders}
	return r, nil
}

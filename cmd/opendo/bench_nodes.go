package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opendo/opendo/actor"
)

// BenchNodeStats are the figures of incr-1000-2n and incr-1000-3n.
type BenchNodeStats struct {
	Nodes int `json:"nodes"`
	// Owned is how many partitions each node owned when the load began.
	Owned []int `json:"owned"`
	// Forwarded is the share of requests a node received for an object
	// another node owns, and sent on (forwards over the warmup and the
	// measured time, over the requests of that time at the measured rate).
	Forwarded float64 `json:"forwarded_share"`
	// Fences counts journal fences: 0 means no takeover from a live owner.
	Fences uint64 `json:"fences"`
}

// runNodes runs incr-1000 against n runtimes serving the bench namespace
// under a prefix and journal of their own, each on its own connection and
// data directory: requests reach any of them (a queue group) and go on to
// the owner of their object's partition.
func (e *benchEnv) runNodes(ctx context.Context, w benchWorkload, profile string) (_ *benchResult, err error) {
	n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(w.name, "incr-1000-"), "n"))
	prefix := e.prefix + "n" + strconv.Itoa(n)
	journal := strings.Replace(e.journal, "_JOURNAL", "_N"+strconv.Itoa(n)+"_JOURNAL", 1)
	var rts []*actor.Runtime
	defer func() {
		for _, rt := range rts {
			err = errors.Join(err, closeBenchRuntime(rt))
		}
		if e.srv == nil {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = errors.Join(err, e.jss[0].DeleteStream(dctx, journal), e.jss[0].DeleteStream(dctx, journal+"_ALARMS"))
		}
	}()
	for i := range n {
		nc, err := e.dial(fmt.Sprintf("opendo-bench-node-%d", i+1))
		if err != nil {
			return nil, err
		}
		e.closers = append(e.closers, func() error { nc.Close(); return nil })
		rt, err := e.startNode(ctx, nc, fmt.Sprintf("%s-node-%d", prefix, i+1), prefix, journal, 0)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		rts = append(rts, rt)
	}
	// Wait until the nodes agree on the split: every partition of the
	// namespace owned by exactly one node.
	parts := rts[0].Subjects().Partitions * 2 // bench and benchalarm namespaces
	deadline := time.Now().Add(30 * time.Second)
	for {
		total := 0
		for _, rt := range rts {
			total += rt.Stats().Owned
		}
		if total == parts {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d nodes own %d of %d partitions after 30 s", n, total, parts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := &BenchNodeStats{Nodes: n}
	for _, rt := range rts {
		st.Owned = append(st.Owned, rt.Stats().Owned)
	}
	mk, err := e.incr1000Under(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var fwd0 uint64
	for _, rt := range rts {
		fwd0 += rt.Stats().Forwarded
	}
	r, err := benchTimed(ctx, e.o.callers, e.o.warmup, e.o.duration, profile, mk)
	if err != nil {
		return nil, err
	}
	var fwd uint64
	for _, rt := range rts {
		s := rt.Stats()
		fwd += s.Forwarded
		st.Fences += s.Fences
	}
	if total := r.OpsPerSec * (e.o.warmup + e.o.duration).Seconds(); total > 0 {
		st.Forwarded = round(float64(fwd-fwd0)/total, 3)
	}
	r.Workload, r.Sync, r.Callers, r.Conns = w.name, e.mode, e.o.callers, len(e.conns)
	r.BenchNodeStats = st
	return r, nil
}

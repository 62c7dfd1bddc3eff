package alarms_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opendo/opendo/alarms"
)

// TestManySameInstant schedules 2000 alarms for the same instant and
// reports how late they fire. `opendo bench` runs the 10k version.
func TestManySameInstant(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	_, js, a := startServer(t, alarms.Config{})
	ch := consume(t, a, true)
	st := fireMany(t, a, ch, n, 16, 1500*time.Millisecond)
	t.Logf("%d alarms for one instant: published in %v; lateness first %v, p50 %v, p99 %v, last %v",
		n, st.publish, st.first, st.p50, st.p99, st.last)
	waitStreamMsgs(t, js, 0)
}

// fireStats describes one fireMany run.
type fireStats struct {
	publish               time.Duration // to schedule all alarms
	first, p50, p99, last time.Duration // lateness of the firings
}

// fireMany schedules n alarms of distinct objects, all due lead from now,
// from workers goroutines, and waits for their n firings on ch. lead must
// leave time to publish them all.
func fireMany(t testing.TB, a *alarms.Alarms, ch <-chan delivery, n, workers int, lead time.Duration) fireStats {
	t.Helper()
	start := time.Now()
	due := start.Add(lead)
	ids := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range ids {
				f := alarms.Firing{NS: "bench", ID: fmt.Sprintf("o%d", i), Alarm: due.UnixMilli()}
				if err := a.Schedule(t.Context(), due, f); err != nil {
					t.Errorf("Schedule %v: %v", f, err)
				}
			}
		})
	}
	for i := range n {
		ids <- i
	}
	close(ids)
	wg.Wait()
	st := fireStats{publish: time.Since(start)}
	if time.Now().After(due) {
		t.Errorf("publishing took %v, longer than the lead %v", st.publish, lead)
	}

	seen := make(map[string]bool, n)
	late := make([]time.Duration, 0, n)
	timeout := time.After(lead + 30*time.Second)
	for len(late) < n {
		select {
		case d := <-ch:
			if seen[d.f.ID] {
				continue // a redelivery
			}
			seen[d.f.ID] = true
			late = append(late, d.at.Sub(due))
		case <-timeout:
			t.Fatalf("%d of %d alarms fired", len(late), n)
		}
	}
	slices.Sort(late)
	st.first, st.last = late[0], late[n-1]
	st.p50, st.p99 = late[n/2], late[n*99/100]
	return st
}

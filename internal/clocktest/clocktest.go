package clocktest

import (
	"container/heap"
	"sync"
	"time"

	"github.com/opendo/opendo/alarms"
)

var _ alarms.Clock = (*Clock)(nil)

// Clock is a fake clock. Create it with New.
type Clock struct {
	mu struct {
		sync.Mutex
		now    time.Time
		timers timerHeap
		seq    uint64 // orders timers due at the same instant by creation
	}
}

// New returns a clock standing at start.
func New(start time.Time) *Clock {
	c := &Clock{}
	c.mu.now = start
	return c
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.now
}

// AfterFunc arms a timer that calls f once the clock has been advanced by d.
// A timer with d <= 0 is due at once and fires on the next Advance (also
// Advance(0)), never inside AfterFunc.
func (c *Clock) AfterFunc(d time.Duration, f func()) alarms.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.seq++
	t := &timer{c: c, when: c.mu.now.Add(max(d, 0)), seq: c.mu.seq, f: f, index: -1}
	heap.Push(&c.mu.timers, t)
	return t
}

// Advance moves the clock forward by d (d < 0 counts as 0). Each timer due
// by then fires in order of due time (then of creation), with Now returning
// its due time while its callback runs; timers armed by callbacks fire too
// if they fall due within d. Advance returns once all due callbacks have
// returned, with the clock at its old time plus d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.mu.now.Add(max(d, 0))
	c.mu.Unlock()
	for {
		c.mu.Lock()
		if len(c.mu.timers) == 0 || c.mu.timers[0].when.After(end) {
			if c.mu.now.Before(end) {
				c.mu.now = end
			}
			c.mu.Unlock()
			return
		}
		t := heap.Pop(&c.mu.timers).(*timer)
		if t.when.After(c.mu.now) {
			c.mu.now = t.when
		}
		c.mu.Unlock()
		t.f()
	}
}

// Pending returns the number of armed timers (neither fired nor stopped).
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mu.timers)
}

// timer is an armed AfterFunc call; index is its place in the heap, -1 once
// it fired or was stopped. Its fields are guarded by c.mu.
type timer struct {
	c     *Clock
	when  time.Time
	seq   uint64
	f     func()
	index int
}

// Stop disarms the timer; it reports whether the timer was armed.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.c.mu.timers, t.index)
	return true
}

// timerHeap orders timers by due time, then by creation.
type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}

func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}

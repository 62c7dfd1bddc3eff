package clocktest_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opendo/opendo/internal/clocktest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestAdvanceFiresInTimeOrder(t *testing.T) {
	clk := clocktest.New(t0)
	var got []string
	at := map[string]time.Duration{}
	arm := func(name string, d time.Duration) {
		clk.AfterFunc(d, func() {
			got = append(got, name)
			at[name] = clk.Now().Sub(t0)
		})
	}
	arm("c", 3*time.Second)
	arm("a", time.Second)
	arm("b1", 2*time.Second)
	arm("b2", 2*time.Second) // same instant: creation order
	arm("late", time.Hour)

	clk.Advance(2500 * time.Millisecond)
	if want := []string{"a", "b1", "b2"}; !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if at["a"] != time.Second || at["b2"] != 2*time.Second {
		t.Errorf("Now in callbacks: a=%v b2=%v, want 1s and 2s", at["a"], at["b2"])
	}
	if got, want := clk.Now(), t0.Add(2500*time.Millisecond); !got.Equal(want) {
		t.Errorf("Now = %v, want %v", got, want)
	}
	if got := clk.Pending(); got != 2 {
		t.Errorf("Pending = %d, want 2", got)
	}
	clk.Advance(time.Second)
	if want := []string{"a", "b1", "b2", "c"}; !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
}

func TestStop(t *testing.T) {
	tests := []struct {
		name      string
		advance   time.Duration // before Stop
		wantStop  bool
		wantFired bool
	}{
		{"before due", 500 * time.Millisecond, true, false},
		{"after fired", time.Second, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.New(t0)
			fired := false
			tm := clk.AfterFunc(time.Second, func() { fired = true })
			clk.Advance(tt.advance)
			if got := tm.Stop(); got != tt.wantStop {
				t.Errorf("Stop = %v, want %v", got, tt.wantStop)
			}
			if got := tm.Stop(); got {
				t.Error("second Stop = true, want false")
			}
			clk.Advance(time.Hour)
			if fired != tt.wantFired {
				t.Errorf("fired = %v, want %v", fired, tt.wantFired)
			}
			if got := clk.Pending(); got != 0 {
				t.Errorf("Pending = %d, want 0", got)
			}
		})
	}
}

func TestZeroDelayFiresOnNextAdvance(t *testing.T) {
	clk := clocktest.New(t0)
	n := 0
	clk.AfterFunc(0, func() { n++ })
	clk.AfterFunc(-time.Second, func() { n++ })
	if n != 0 {
		t.Fatal("fired inside AfterFunc")
	}
	clk.Advance(0)
	if n != 2 {
		t.Fatalf("fired %d, want 2", n)
	}
	if !clk.Now().Equal(t0) {
		t.Errorf("Now moved to %v", clk.Now())
	}
}

func TestCallbacksMayUseTheClock(t *testing.T) {
	clk := clocktest.New(t0)
	var ticks []time.Duration
	var tick func()
	tick = func() { // re-arms itself, as a periodic timer would
		ticks = append(ticks, clk.Now().Sub(t0))
		if len(ticks) < 5 {
			clk.AfterFunc(time.Second, tick)
		}
	}
	clk.AfterFunc(time.Second, tick)
	var stopped bool
	victim := clk.AfterFunc(10*time.Second, func() { t.Error("stopped timer fired") })
	clk.AfterFunc(2*time.Second, func() { stopped = victim.Stop() })

	clk.Advance(time.Minute)
	if want := []time.Duration{1e9, 2e9, 3e9, 4e9, 5e9}; !slices.Equal(ticks, want) {
		t.Errorf("ticks %v, want %v", ticks, want)
	}
	if !stopped {
		t.Error("Stop from a callback = false, want true")
	}
}

func TestConcurrentUse(t *testing.T) {
	clk := clocktest.New(t0)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fired int
	)
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				tm := clk.AfterFunc(time.Duration(i+j)*time.Millisecond, func() {
					mu.Lock()
					fired++
					mu.Unlock()
				})
				if j%10 == 0 {
					tm.Stop()
				}
				_ = clk.Now()
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			clk.Advance(time.Millisecond)
			_ = clk.Pending()
		}
	})
	wg.Wait()
	clk.Advance(time.Hour)
	if clk.Pending() != 0 {
		t.Errorf("Pending = %d after advancing past every timer", clk.Pending())
	}
	mu.Lock()
	defer mu.Unlock()
	// Each goroutine stops 10 of its 100 timers, but a stop may come too
	// late; at most 8*100 fire, at least 8*90.
	if fired < 720 || fired > 800 {
		t.Errorf("fired %d, want 720..800", fired)
	}
}

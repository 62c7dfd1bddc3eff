package alarms_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/opendo/opendo/alarms"
)

func TestRetryDelay(t *testing.T) {
	const s = time.Second
	fixed := func(v float64) func() float64 { return func() float64 { return v } }
	tests := []struct {
		name  string
		retry int
		rnd   func() float64
		want  time.Duration
	}{
		{"first attempt", 0, nil, 0},
		{"negative", -3, fixed(0.5), 0},
		{"retry 1", 1, nil, 2 * s},
		{"retry 2", 2, nil, 4 * s},
		{"retry 3", 3, nil, 8 * s},
		{"retry 4", 4, nil, 16 * s},
		{"retry 5", 5, nil, 32 * s},
		{"retry 6 = MaxRetries", alarms.MaxRetries, nil, 64 * s},
		{"beyond MaxRetries", 40, nil, 64 * s},
		{"jitter 0", 1, fixed(0), 2 * s},
		{"jitter half", 1, fixed(0.5), 2*s + 250*time.Millisecond},
		{"jitter almost 1", 6, fixed(0.999999), 64*s + 16*s - 16*time.Microsecond},
		{"jitter out of range high", 2, fixed(7), 5 * s},
		{"jitter out of range low", 2, fixed(-1), 4 * s},
		{"jitter NaN", 2, fixed(math.NaN()), 4 * s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := alarms.RetryDelay(tt.retry, tt.rnd); got != tt.want {
				t.Errorf("RetryDelay(%d) = %v, want %v", tt.retry, got, tt.want)
			}
		})
	}
}

func ExampleRetryDelay() {
	noJitter := func() float64 { return 0 }
	for retry := 1; retry <= alarms.MaxRetries; retry++ {
		fmt.Print(alarms.RetryDelay(retry, noJitter), " ")
	}
	fmt.Println()
	// Output: 2s 4s 8s 16s 32s 1m4s
}

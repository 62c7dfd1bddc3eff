package alarms

import "time"

// MaxRetries is how many times a failing alarm handler is retried after its
// first attempt, as in Cloudflare.
const MaxRetries = 6

// firstRetryDelay is the delay before retry 1; each further retry doubles it.
const firstRetryDelay = 2 * time.Second

// RetryDelay returns how long to wait before retry number retry (1 for the
// first retry) of a failed alarm: 2 s, doubling up to 64 s for retry
// MaxRetries, plus up to 25% jitter drawn from rnd, which returns values in
// [0, 1) (math/rand/v2's Float64; nil means no jitter). Values of retry
// below 1 yield 0 (the first attempt is not delayed); values above
// MaxRetries yield the delay of MaxRetries.
func RetryDelay(retry int, rnd func() float64) time.Duration {
	if retry < 1 {
		return 0
	}
	retry = min(retry, MaxRetries)
	d := firstRetryDelay << (retry - 1)
	if rnd == nil {
		return d
	}
	j := rnd()
	if !(j >= 0) { // also catches NaN
		j = 0
	}
	j = min(j, 1)
	return d + time.Duration(j*float64(d/4))
}

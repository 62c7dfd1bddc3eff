// Package clocktest provides a fake alarms.Clock for tests: time stands
// still until the test advances it, and due timers then fire in time order,
// synchronously, on the goroutine calling Advance.
//
//	clk := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
//	clk.AfterFunc(time.Second, func() { ... })
//	clk.Advance(time.Second) // runs the callback before returning
//
// A Clock is safe for concurrent use. Callbacks run outside its lock, so they
// may call Now, AfterFunc, Stop and even Advance.
package clocktest

// Package counter is the smallest useful opendo object: a durable counter.
//
// Paths: "incr" adds one and returns the new value as text; "get" returns
// the current value; anything else is a 404.
package counter

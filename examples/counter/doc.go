// Package counter is the smallest useful opendo object: a durable counter.
//
// Paths: "incr" adds one and returns the new value as text; "get" returns
// the current value; "bookmark" returns a bookmark of the current value;
// "restore" (body: a bookmark) brings the counter back to the value it
// names, from the next request on, and returns the bookmark that undoes
// it; anything else is a 404.
package counter

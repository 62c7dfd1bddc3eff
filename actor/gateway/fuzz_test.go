package gateway

import (
	"net/url"
	"strings"
	"testing"

	"github.com/opendo/opendo/actor"
)

// FuzzParseTarget: any URL path either names a target whose path starts
// with "/" and fits the protocol, or gets an *actor.Error.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"/counter/a/incr", "/echo/room%2F1/x?y=1", "/echo/@0123/x", "/", "//", "/a/%zz/b", "/a/%40b/c", "/a/b/c/d%2F?x#y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		tg, err := parseTarget(u)
		if err != nil {
			if _, ok := err.(*actor.Error); !ok {
				t.Fatalf("%q: error %T %v", raw, err, err)
			}
			return
		}
		if tg.ns == "" || !strings.HasPrefix(tg.path, "/") || len(tg.path) > actor.MaxPathLen || (tg.name == "") == (tg.id == "") {
			t.Fatalf("%q: target %+v", raw, tg)
		}
	})
}

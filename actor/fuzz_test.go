package actor

import (
	"testing"

	"github.com/nats-io/nats.go"
)

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"", "6de1a1491c5b0fab20594b167787364f", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "..", "a.b", ">", "*", "01arz3ndektsv4rrffq69g5fav"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		// Every valid ID is a safe subject token.
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				t.Fatalf("ParseID(%q) accepted byte %q", s, c)
			}
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add("incr", "POST", "rid", "k", "v", []byte("body"))
	f.Add("", "", "", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, path, method, rid, hk, hv string, body []byte) {
		m := &nats.Msg{Subject: "x", Data: body, Header: nats.Header{}}
		if path != "" {
			m.Header.Set(HeaderPath, path)
		}
		if method != "" {
			m.Header.Set(HeaderMethod, method)
		}
		if rid != "" {
			m.Header.Set(HeaderRequestID, rid)
		}
		if hk != "" {
			m.Header[hk] = []string{hv}
		}
		req, err := decodeRequest(m)
		if err != nil {
			if toError(err).Code != CodeBadRequest {
				t.Fatalf("decode error with code %q", toError(err).Code)
			}
			return
		}
		if len(req.Path) > MaxPathLen || req.Method == "" {
			t.Fatalf("bad request accepted: %+v", req)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	f.Add("200", "", []byte("ok"))
	f.Add("409", CodeConflict, []byte("stale"))
	f.Add("x", "", []byte(nil))
	f.Fuzz(func(t *testing.T, status, code string, body []byte) {
		m := &nats.Msg{Subject: "x", Data: body, Header: nats.Header{}}
		if status != "" {
			m.Header.Set(HeaderStatus, status)
		}
		if code != "" {
			m.Header.Set(HeaderError, code)
		}
		resp, err := decodeReply(m)
		if (resp == nil) == (err == nil) {
			t.Fatalf("decodeReply returned %v, %v", resp, err)
		}
	})
}

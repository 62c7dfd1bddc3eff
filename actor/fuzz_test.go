package actor

import (
	"strings"
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
		checkDecodedRequest(t, m, req, err)
	})
}

// FuzzDecodeRequestFrame fuzzes decodeRequest over raw NATS header frames,
// the bytes an HMSG carries before its payload ("NATS/1.0\r\nKey: value\r\n
// \r\n"), decoded by nats.go's own DecodeHeadersMsg as a subscriber does.
// Like nats.go, a frame that does not decode still delivers the message,
// with no header.
func FuzzDecodeRequestFrame(f *testing.F) {
	for _, seed := range []struct {
		frame string
		body  string
	}{
		{"NATS/1.0\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Path: incr\r\nOpendo-Method: GET\r\nOpendo-Request-Id: 01ARZ3NDEKTSV4RRFFQ69G5FAV\r\n\r\n", "body"},
		{"NATS/1.0\r\nOpendo-Name: room-1\r\nOpendo-Id: 6de1a1491c5b0fab20594b167787364f\r\nX-Trace: abc\r\n\r\n", ""},
		// Inline status and description, as no-responders replies carry.
		{"NATS/1.0 503\r\n\r\n", ""},
		{"NATS/1.0 408 Request Timeout\r\nOpendo-Path: p\r\n\r\n", ""},
		{"NATS/1.0 5\r\n\r\n", ""},
		// Escape sequences, controls and bidi overrides in the request ID.
		{"NATS/1.0\r\nOpendo-Request-Id: \x1b[31mred\x1b[0m\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Request-Id: \x1b]0;title\a\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Request-Id: abc\u202egpj\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Request-Id: a\u0085b\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Request-Id: a\x00b\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Request-Id: a b\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Request-Id: a\x7f\r\n\r\n", ""},
		// CR/LF injection: a bare CR stays in the value, a bare LF ends the line.
		{"NATS/1.0\r\nOpendo-Request-Id: a\rOpendo-Path: x\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Request-Id: a\nOpendo-Path: x\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Path: a\r\n\r\nOpendo-Request-Id: \x1b[2J\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Request-Id:\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Request-Id:\t \tid\r\n\r\n", ""},
		// Duplicate keys: only the first value counts, other cases are other keys.
		{"NATS/1.0\r\nOpendo-Request-Id: good\r\nOpendo-Request-Id: \x1b[31m\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Request-Id: \x1b[31m\r\nOpendo-Request-Id: good\r\n\r\n", ""},
		{"NATS/1.0\r\nopendo-request-id: \x1b[31m\r\nOPENDO-METHOD: x\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Method:\r\nOpendo-Method: PUT\r\n\r\n", ""},
		// Huge values.
		{"NATS/1.0\r\nOpendo-Path: " + strings.Repeat("p", MaxPathLen) + "\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Path: " + strings.Repeat("p", MaxPathLen+1) + "\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Method: " + strings.Repeat("M", 65) + "\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Request-Id: " + strings.Repeat("r", MaxRequestIDLen+1) + "\r\n\r\n", ""},
		{"NATS/1.0\r\nX-Big: " + strings.Repeat("v", 1<<16) + "\r\n\r\n", ""},
		// Invalid UTF-8 in keys and values.
		{"NATS/1.0\r\nOpendo-Request-Id: \xff\xfe\r\n\r\n", ""},
		{"NATS/1.0\r\nOpendo-Path: \xc0\x80\r\n\xffKey: \x9b31m\r\n\r\n", "\xff"},
		// Malformed frames.
		{"", ""},
		{"NATS/1.0", ""},
		{"NATS/1.0\r\nOpendo-Path: x\r\n", ""},
		{"NATS/1.0\r\nno colon\r\n\r\n", ""},
		{"NATS/1.0\r\n: empty key\r\n\r\n", ""},
		{"HTTP/1.1 200 OK\r\nOpendo-Path: x\r\n\r\n", ""},
	} {
		f.Add([]byte(seed.frame), []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, frame, body []byte) {
		h, err := nats.DecodeHeadersMsg(frame)
		if err != nil {
			h = nil
		}
		m := &nats.Msg{Subject: "opendo.rpc.0.ns.id", Header: h, Data: body}
		req, err := decodeRequest(m)
		checkDecodedRequest(t, m, req, err)
	})
}

// checkDecodedRequest checks decodeRequest's result for m: a bad_request
// error, or a request within the protocol's limits whose ID, if any, is the
// valid first value of the request ID header.
func checkDecodedRequest(t *testing.T, m *nats.Msg, req *Request, err error) {
	t.Helper()
	rid, hasRID := "", false
	if v := m.Header[HeaderRequestID]; len(v) > 0 {
		rid, hasRID = v[0], true
	}
	if err != nil {
		if req != nil {
			t.Fatalf("decodeRequest returned both %+v and %v", req, err)
		}
		if code := toError(err).Code; code != CodeBadRequest {
			t.Fatalf("decode error %v with code %q, want %q", err, code, CodeBadRequest)
		}
		return
	}
	switch {
	case req == nil:
		t.Fatal("decodeRequest returned neither a request nor an error")
	case req.Method == "" || len(req.Method) > 64:
		t.Fatalf("accepted method %q (%d bytes)", req.Method, len(req.Method))
	case len(req.Path) > MaxPathLen:
		t.Fatalf("accepted a %d-byte path", len(req.Path))
	case req.ID != "" && ValidRequestID(req.ID) != nil:
		t.Fatalf("accepted request id %q: %v", req.ID, ValidRequestID(req.ID))
	case hasRID && req.ID != rid:
		t.Fatalf("request id %q, want the header's %q", req.ID, rid)
	}
	for _, k := range []string{HeaderMethod, HeaderPath, HeaderRequestID, HeaderName, HeaderID} {
		if _, ok := req.Header[k]; ok {
			t.Fatalf("protocol header %s passed on to the handler", k)
		}
	}
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

// TestDecodeRequestFrame pins what FuzzDecodeRequestFrame only bounds: how
// raw header frames become a request ID.
func TestDecodeRequestFrame(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frame  string
		wantID string
		bad    bool // refused with bad_request
	}{
		{"valid", "NATS/1.0\r\nOpendo-Request-Id: req-1\r\n\r\n", "req-1", false},
		{"no id", "NATS/1.0\r\nOpendo-Path: p\r\n\r\n", "", false},
		{"empty id", "NATS/1.0\r\nOpendo-Request-Id:\r\n\r\n", "", false},
		{"leading blanks trimmed", "NATS/1.0\r\nOpendo-Request-Id: \t req-1\r\n\r\n", "req-1", false},
		{"escape sequence", "NATS/1.0\r\nOpendo-Request-Id: \x1b[31mred\r\n\r\n", "", true},
		{"bidi override", "NATS/1.0\r\nOpendo-Request-Id: a\u202eb\r\n\r\n", "", true},
		{"C1 control", "NATS/1.0\r\nOpendo-Request-Id: a\u0085b\r\n\r\n", "", true},
		{"bare CR", "NATS/1.0\r\nOpendo-Request-Id: a\rX: y\r\n\r\n", "", true},
		{"trailing space", "NATS/1.0\r\nOpendo-Request-Id: a \r\n\r\n", "", true},
		{"too long", "NATS/1.0\r\nOpendo-Request-Id: " + strings.Repeat("r", MaxRequestIDLen+1) + "\r\n\r\n", "", true},
		{"first of duplicates wins", "NATS/1.0\r\nOpendo-Request-Id: good\r\nOpendo-Request-Id: \x1b[31m\r\n\r\n", "good", false},
		{"bad first duplicate", "NATS/1.0\r\nOpendo-Request-Id: \x1b[31m\r\nOpendo-Request-Id: good\r\n\r\n", "", true},
		{"other case is another header", "NATS/1.0\r\nopendo-request-id: \x1b[31m\r\n\r\n", "", false},
		{"broken frame has no header", "NATS/1.0\r\nOpendo-Request-Id: \x1b[31m\r\n", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := nats.DecodeHeadersMsg([]byte(tc.frame))
			if err != nil {
				h = nil
			}
			m := &nats.Msg{Subject: "x", Header: h}
			req, err := decodeRequest(m)
			checkDecodedRequest(t, m, req, err)
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted request id %q", req.ID)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.ID != tc.wantID {
				t.Errorf("request id %q, want %q", req.ID, tc.wantID)
			}
		})
	}
}

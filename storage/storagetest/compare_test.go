package storagetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opendo/opendo/storage"
)

func mustDecode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := decode([]byte(s), &v, true); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func TestFirstDiff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		expected string
		actual   string
		lax      bool
		wantPath string // "" with match=true
		match    bool
	}{
		{"int equals float", `1`, `1.0`, false, "", true},
		{"doubles beyond 2^53", `9007199254740993`, `9007199254740992`, false, "", true},
		{"different numbers", `1`, `2`, false, "", false},
		{"bool is not a number", `1`, `true`, false, "", false},
		{"number is not a bool", `true`, `1`, false, "", false},
		{"null vs missing value", `null`, `false`, false, "", false},
		{"huge ints compare exactly", `1` + strings.Repeat("0", 400), `1` + strings.Repeat("0", 400), false, "", true},
		{"huge ints differ", `1` + strings.Repeat("0", 400), `2` + strings.Repeat("0", 400), false, "", false},
		{"float exponent forms", `1.5e-07`, `1.5e-7`, false, "", true},
		{"object order ignored", `{"a":1,"b":[1,2]}`, `{"b":[1,2.0],"a":1}`, false, "", true},
		{"object missing key", `{"a":1,"b":2}`, `{"a":1}`, false, "", false},
		{"object extra key", `{"a":1}`, `{"a":1,"c":3}`, false, "", false},
		{"array order matters", `[1,2]`, `[2,1]`, false, "[0]", false},
		{"array length", `[1,2]`, `[1]`, false, "", false},
		{"nested path", `{"ok":[["a",1]]}`, `{"ok":[["a",2]]}`, false, ".ok[0][1]", false},
		{"odd key path", `{"a b":1}`, `{"a b":2}`, false, `["a b"]`, false},
		{"predicate holds", `{"$gt":1,"$lt":3}`, `2`, false, "", true},
		{"predicate bound exclusive", `{"$gt":1,"$lt":3}`, `3`, false, "", false},
		{"predicate inclusive", `{"$ge":0,"$le":0}`, `0`, false, "", true},
		{"predicate wants a number", `{"$ge":0}`, `"0"`, false, "", false},
		{"not a predicate with other keys", `{"$ge":0,"x":1}`, `{"$ge":0,"x":1}`, false, "", true},
		{"empty object is no predicate", `{}`, `{}`, false, "", true},
		{"strict counters", `{"columnNames":[],"rowsRead":1}`, `{"columnNames":[],"rowsRead":2}`, false, ".rowsRead", false},
		{"lax counters", `{"columnNames":[],"rowsRead":1}`, `{"columnNames":[],"rowsRead":2}`, true, "", true},
		{"lax counters not negative", `{"columnNames":[],"rowsRead":1}`, `{"columnNames":[],"rowsRead":-1}`, true, ".rowsRead", false},
		{"lax only in SQL results", `{"rowsRead":1}`, `{"rowsRead":2}`, true, ".rowsRead", false},
		{"not-implemented marker matches", `{"ok":[1,2]}`, `{"$notImplemented":"sql"}`, false, "", true},
		{"marker inside", `{"ok":{"committed":[{"ok":null},{"ok":3}]}}`, `{"ok":{"committed":[{"ok":null},{"$notImplemented":"sql"}]}}`, false, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, msg, bad := firstDiff(mustDecode(t, tc.expected), mustDecode(t, tc.actual), "", tc.lax)
			if bad == tc.match {
				t.Fatalf("firstDiff(%s, %s) bad=%v (%s), want match=%v", tc.expected, tc.actual, bad, msg, tc.match)
			}
			if bad && path != tc.wantPath {
				t.Errorf("path = %q, want %q (%s)", path, tc.wantPath, msg)
			}
		})
	}
}

func TestCompareOpsCount(t *testing.T) {
	got := compareOps("c", []any{nil, nil}, []any{nil}, false)
	if len(got) != 1 || got[0].op != -1 || !strings.Contains(got[0].line, "expected 2 op results, got 1") {
		t.Errorf("compareOps = %+v", got)
	}
}

func TestCategory(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: key of 3000 bytes", storage.ErrKeyTooLarge), "limit_exceeded"},
		{storage.ErrValueTooLarge, "limit_exceeded"},
		{storage.ErrTooManyKeys, "limit_exceeded"},
		{storage.ErrLimitExceeded, "limit_exceeded"},
		{storage.ErrInvalidArgument, "invalid_argument"},
		{storage.ErrInvalidState, "invalid_state"},
		{storage.ErrSQL, "sql_error"},
		{storage.ErrForbiddenSQL, "forbidden_sql"},
		{storage.ErrReservedName, "reserved_name"},
		{storage.ErrNotFound, "not_found"},
		{storage.ErrMultipleRows, "multiple_rows"},
		{errors.New("disk on fire"), "unexpected error: disk on fire"},
	} {
		if got := category(tc.err); got != tc.want {
			t.Errorf("category(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestEncodeValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`12345678901234567890`, `12345678901234567000`},
		{`1.0`, `1`},
		{`{ "b": 1, "a": [ true, null ] }`, `{"a":[true,null],"b":1}`},
		{`"<&>"`, `"<&>"`},
		{`"\u00e9"`, `"é"`},
	} {
		got, err := encodeValue([]byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("encodeValue(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestCeilDiv(t *testing.T) {
	for _, tc := range []struct{ a, want int64 }{
		{0, 0}, {1, 1}, {999, 1}, {1000, 1}, {1001, 2}, {-1, 0}, {-999, 0}, {-1000, -1}, {-1001, -1}, {60000, 60},
	} {
		if got := ceilDiv(tc.a, 1000); got != tc.want {
			t.Errorf("ceilDiv(%d, 1000) = %d, want %d", tc.a, got, tc.want)
		}
	}
}

func TestListOptionsLimit(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		limit   *float64
		want    int
		wantErr bool
	}{
		{nil, 0, false}, {f(1), 1, false}, {f(2147483647), 2147483647, false},
		{f(0), -1, false}, {f(-5), -5, false}, {f(1.5), 0, true},
	} {
		o, err := (&listOptions{Limit: tc.limit}).toStorage()
		if (err != nil) != tc.wantErr || (!tc.wantErr && o.Limit != tc.want) {
			t.Errorf("limit %v: got %d, %v; want %d (error %v)", tc.limit, o.Limit, err, tc.want, tc.wantErr)
		}
	}
}

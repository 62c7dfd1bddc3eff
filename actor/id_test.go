package actor

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"ascii", "room-42", true},
		{"latin", "café", true},
		{"cjk", "名前", true},
		{"emoji", "🦀 crab", true},
		{"space and punctuation", "a b/c.d*e>f", true},
		{"leading space", " a", false},
		{"trailing space", "a ", false},
		{"only a space", " ", false},
		{"max length", strings.Repeat("x", MaxNameLen), true},
		{"max length multibyte", strings.Repeat("é", MaxNameLen/2), true},
		{"empty", "", false},
		{"too long", strings.Repeat("x", MaxNameLen+1), false},
		{"too long multibyte", strings.Repeat("é", MaxNameLen/2) + "x", false},
		{"NUL", "a\x00b", false},
		{"tab", "a\tb", false},
		{"newline", "a\nb", false},
		{"ESC", "\x1b[31mred", false},
		{"DEL", "a\x7fb", false},
		{"U+0080", "a\u0080b", false},
		{"U+0085 NEL", "a\u0085b", false},
		{"U+009B CSI", "a\u009b31m", false},
		{"U+009F", "a\u009fb", false},
		{"U+202A LRE", "a\u202ab", false},
		{"U+202E RLO", "abc\u202egpj.exe", false},
		{"U+2066 LRI", "a\u2066b", false},
		{"U+2069 PDI", "a\u2069b", false},
		{"invalid UTF-8", "a\xffb", false},
		{"lone C1 byte", "a\x9bb", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidName(tc.in)
			if got := err == nil; got != tc.ok {
				t.Fatalf("ValidName(%q) = %v, want ok %v", tc.in, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidName) {
				t.Errorf("ValidName(%q) = %v, want an error wrapping ErrInvalidName", tc.in, err)
			}
		})
	}
}

func TestValidRequestID(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"ulid", "01ARZ3NDEKTSV4RRFFQ69G5FAV", true},
		{"punctuation", `req-1:a/b_c.d~e!"#$%&'()*+,;<=>?@[\]^{|}`, true},
		{"one byte", "x", true},
		{"max length", strings.Repeat("r", MaxRequestIDLen), true},
		{"empty", "", false},
		{"too long", strings.Repeat("r", MaxRequestIDLen+1), false},
		{"space", "req 1", false},
		{"tab", "req\t1", false},
		{"CR LF", "req\r\nX-Injected: 1", false},
		{"NUL", "req\x00", false},
		{"ESC", "\x1b[31mred\x1b[0m", false},
		{"DEL", "req\x7f", false},
		{"latin", "café", false},
		{"U+0085 NEL", "a\u0085b", false},
		{"U+202E RLO", "a\u202eb", false},
		{"invalid UTF-8", "a\xffb", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidRequestID(tc.in); (err == nil) != tc.ok {
				t.Fatalf("ValidRequestID(%q) = %v, want ok %v", tc.in, err, tc.ok)
			}
		})
	}
}

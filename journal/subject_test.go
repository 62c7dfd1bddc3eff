package journal

import "testing"

func TestCovers(t *testing.T) {
	tests := []struct {
		pattern, filter string
		want            bool
	}{
		{"opendo.journal.>", "opendo.journal.>", true},
		{"opendo.>", "opendo.journal.>", true},
		{">", "opendo.journal.>", true},
		{"opendo.*.>", "opendo.journal.>", true},
		{"opendo.journal.*", "opendo.journal.>", false},
		{"opendo.journal", "opendo.journal.>", false},
		{"opendo.alarms.>", "opendo.journal.>", false},
		{"opendo.journal.>", "opendo.journal", false},
		{"a.b", "a.b", true},
		{"a.*", "a.b", true},
		{"a.*", "a.*", true},
		{"a.b", "a.*", false},
	}
	for _, tt := range tests {
		if got := Covers(tt.pattern, tt.filter); got != tt.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tt.pattern, tt.filter, got, tt.want)
		}
	}
}

package alarms_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opendo/opendo/alarms"
)

func TestFiringWireFormat(t *testing.T) {
	tests := []struct {
		name string
		f    alarms.Firing
		want string
	}{
		{"first attempt", alarms.Firing{NS: "chat", ID: "room-7", Alarm: 1767225600000},
			`{"v":1,"ns":"chat","id":"room-7","alarm":1767225600000}`},
		{"retry", alarms.Firing{NS: "chat", ID: "room-7", Alarm: 1767225600000, Retry: 2},
			`{"v":1,"ns":"chat","id":"room-7","alarm":1767225600000,"retry":2}`},
		{"before 1970", alarms.Firing{NS: "a", ID: "B_-9", Alarm: -1},
			`{"v":1,"ns":"a","id":"B_-9","alarm":-1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.f.Marshal()
			if string(b) != tt.want {
				t.Errorf("Marshal = %s, want %s", b, tt.want)
			}
			got, err := alarms.ParseFiring(b)
			if err != nil || got != tt.f {
				t.Errorf("ParseFiring = %+v, %v, want %+v", got, err, tt.f)
			}
		})
	}
}

// TestFiringFixtures parses testdata/firings: good-* must parse, bad-* must
// fail with ErrInvalidFiring.
func TestFiringFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "firings", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := alarms.ParseFiring(b)
			switch {
			case strings.HasPrefix(name, "good-"):
				if err != nil {
					t.Fatalf("ParseFiring: %v", err)
				}
				if again, err := alarms.ParseFiring(f.Marshal()); err != nil || again != f {
					t.Errorf("round trip: %+v, %v, want %+v", again, err, f)
				}
			case strings.HasPrefix(name, "bad-"):
				if !errors.Is(err, alarms.ErrInvalidFiring) {
					t.Errorf("ParseFiring = %+v, %v, want %v", f, err, alarms.ErrInvalidFiring)
				} else {
					t.Log(err)
				}
			default:
				t.Fatal("fixture name must start with good- or bad-")
			}
		})
	}
}

func TestParseFiringTooLarge(t *testing.T) {
	b := []byte(`{"v":1,"ns":"chat","id":"room-7","alarm":1,"pad":"` + strings.Repeat("x", 2000) + `"}`)
	if _, err := alarms.ParseFiring(b); !errors.Is(err, alarms.ErrInvalidFiring) {
		t.Errorf("ParseFiring of %d bytes: %v, want %v", len(b), err, alarms.ErrInvalidFiring)
	}
}

// FuzzParseFiring: ParseFiring never panics, and whatever it accepts
// survives Marshal unchanged.
func FuzzParseFiring(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "firings", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := alarms.ParseFiring(b)
		if err != nil {
			if !errors.Is(err, alarms.ErrInvalidFiring) {
				t.Fatalf("error %v does not match ErrInvalidFiring", err)
			}
			return
		}
		again, err := alarms.ParseFiring(fr.Marshal())
		if err != nil || again != fr {
			t.Fatalf("round trip of %+v: %+v, %v", fr, again, err)
		}
	})
}

package storagetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendo/opendo/storage"
)

// Session is a fresh, empty object inside one open request: Storage is
// usable until the test ends (the opener cleans up with t.Cleanup), and Now
// is the request's "now", the time alarms are set and read against.
//
// A Session may also have a method LaxCounters() bool; when it returns true,
// the SQL counters rowsRead/rowsWritten are compared laxly (any
// non-negative number), for implementations without Cloudflare's patched
// SQLite counters.
type Session interface {
	Storage() storage.Storage
	Now() time.Time
}

type laxCounters interface{ LaxCounters() bool }

// RunConformance runs every case of dir/cases/*.json against a Session made
// by open, one subtest per case named after it, and compares the results
// with dir/expected/<case>.json by the rules of check.py. Ops for features
// the implementation has not built (storage.ErrNotImplemented) make the
// case skip, naming the feature, after the ops before it have been
// compared.
//
// With $OPENDO_CONFORMANCE_OUT set to a folder, the actual results are also
// written there as <case>.json, for check.py.
func RunConformance(t *testing.T, dir string, open func(t *testing.T) Session) {
	t.Helper()
	cases, err := filepath.Glob(filepath.Join(dir, "cases", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatalf("storagetest: no cases in %s", filepath.Join(dir, "cases"))
	}
	slices.Sort(cases)
	expected, err := filepath.Glob(filepath.Join(dir, "expected", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range expected {
		if _, err := os.Stat(filepath.Join(dir, "cases", filepath.Base(e))); err != nil {
			t.Errorf("storagetest: %s has no case file", e)
		}
	}
	var laxOnce sync.Once
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			if runCase(t, name, path, filepath.Join(dir, "expected", name+".json"), open) {
				laxOnce.Do(func() {
					t.Log("rowsRead/rowsWritten are compared laxly (any non-negative number): the implementation does not have Cloudflare's patched SQLite counters")
				})
			}
		})
	}
}

// caseFile is the part of a case file the runner needs.
type caseFile struct {
	Name string `json:"name"`
	Ops  []op   `json:"ops"`
}

// runCase runs one case; it reports whether the counters were compared laxly.
func runCase(t *testing.T, name, casePath, expectedPath string, open func(t *testing.T) Session) (lax bool) {
	var c caseFile
	if err := readJSON(casePath, &c, false); err != nil {
		t.Fatalf("read case: %v", err)
	}
	if c.Name != name {
		t.Errorf("case file %s is named %q", casePath, c.Name)
	}
	var expected []any
	if err := readJSON(expectedPath, &expected, true); err != nil {
		t.Fatalf("read expected results: %v", err)
	}

	s := open(t)
	r := &runner{t: t, now: s.Now()}
	actual := make([]any, 0, len(c.Ops))
	st := s.Storage()
	firstMissing := len(c.Ops)
	for i := range c.Ops {
		actual = append(actual, r.do(st, st, &c.Ops[i]))
		if len(r.missing) > 0 && firstMissing == len(c.Ops) {
			firstMissing = i
		}
	}

	// Compare what check.py would read: the results as a JSON file.
	b, err := json.Marshal(actual)
	if err != nil {
		t.Fatalf("encode results: %v", err)
	}
	var decoded []any
	if err := decode(b, &decoded, true); err != nil {
		t.Fatalf("decode results: %v", err)
	}
	if out := os.Getenv("OPENDO_CONFORMANCE_OUT"); out != "" {
		if err := os.WriteFile(filepath.Join(out, name+".json"), b, 0o644); err != nil {
			t.Errorf("write actual results: %v", err)
		}
	}
	if l, ok := s.(laxCounters); ok && l.LaxCounters() {
		lax = true
	}
	// From the first op that reached a missing feature on, results may
	// depend on that feature's effects: their mismatches are only logged.
	for _, m := range compareOps(name, expected, decoded, lax) {
		if m.op >= firstMissing {
			t.Logf("(after a missing feature) %s", m.line)
			continue
		}
		t.Error(m.line)
	}
	if len(r.missing) > 0 {
		t.Skipf("%s: skipped, not implemented: %s (ops before op %d were compared)", name, strings.Join(r.missing, ", "), firstMissing)
	}
	return lax
}

func readJSON(path string, v any, useNumber bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := decode(b, v, useNumber); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func decode(b []byte, v any, useNumber bool) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if useNumber {
		d.UseNumber()
	}
	return d.Decode(v)
}

package storagetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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

// CorpusDir returns the conformance corpus: $OPENDO_CONFORMANCE_DIR if it
// is set ("skip" skips the test), else the corpus kept in this package's
// testdata/conformance (recorded from workerd; its README says how).
func CorpusDir(t *testing.T) string {
	t.Helper()
	switch dir := os.Getenv("OPENDO_CONFORMANCE_DIR"); dir {
	case "skip":
		t.Skip("OPENDO_CONFORMANCE_DIR=skip")
	case "":
	default:
		return dir
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("storagetest: cannot locate the package's source")
	}
	dir := filepath.Join(filepath.Dir(file), "testdata", "conformance")
	if _, err := os.Stat(filepath.Join(dir, "cases")); err != nil {
		t.Fatalf("storagetest: conformance corpus not found at %s: %v", dir, err)
	}
	return dir
}

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
	runAll(t, dir, func(t *testing.T, exec func(storage.Storage, time.Time)) bool {
		s := open(t)
		exec(s.Storage(), s.Now())
		l, ok := s.(laxCounters)
		return ok && l.LaxCounters()
	})
}

// RunConformanceInside is RunConformance for storage that can be used only
// inside a call, such as what a runtime's handler gets. For each case,
// inside must make one call to a brand-new object and, from inside that
// call, run exec once with the handler's storage and the time of its
// transaction; it returns once the call is done, and reports whether
// rowsRead/rowsWritten are to be compared laxly.
func RunConformanceInside(t *testing.T, dir string, inside func(t *testing.T, exec func(st storage.Storage, now time.Time)) (lax bool)) {
	t.Helper()
	runAll(t, dir, inside)
}

func runAll(t *testing.T, dir string, inside func(t *testing.T, exec func(storage.Storage, time.Time)) bool) {
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
			if runCase(t, name, path, filepath.Join(dir, "expected", name+".json"), inside) {
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
func runCase(t *testing.T, name, casePath, expectedPath string, inside func(t *testing.T, exec func(storage.Storage, time.Time)) bool) (lax bool) {
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

	var r *runner
	actual := make([]any, 0, len(c.Ops))
	firstMissing := len(c.Ops)
	ran := false
	lax = inside(t, func(st storage.Storage, now time.Time) {
		ran = true
		r = &runner{t: t, now: now}
		for i := range c.Ops {
			actual = append(actual, r.do(st, st, &c.Ops[i]))
			if len(r.missing) > 0 && firstMissing == len(c.Ops) {
				firstMissing = i
			}
		}
	})
	if !ran {
		t.Fatal("storagetest: the case's ops never ran")
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

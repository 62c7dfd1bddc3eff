package storagetest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// This file ports check.py's comparison (the reference is
// shared/conformance/check.py). Expected and actual results are both
// decoded with json.Decoder.UseNumber, so numbers arrive as json.Number
// literals and are compared as check.py compares Python numbers.

// notImplemented is the key of the marker object that stands, in actual
// results, for an op whose feature the implementation does not have yet
// (it returned storage.ErrNotImplemented). The marker matches any expected
// value; the case is then reported as skipped, never as passed.
const notImplemented = "$notImplemented"

var (
	predicates = []string{"$gt", "$ge", "$lt", "$le"}
	ident      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	counters   = []string{"rowsRead", "rowsWritten"}
)

// mismatch is one line of check.py's report; op is the index of the op
// (-1 for a mismatch of the whole case).
type mismatch struct {
	op   int
	line string
}

// compareOps compares one case's op results and returns one line per
// mismatching op, as check.py prints them.
func compareOps(name string, expected, actual []any, lax bool) []mismatch {
	var out []mismatch
	if len(actual) != len(expected) {
		out = append(out, mismatch{-1, fmt.Sprintf("%s: expected %d op results, got %d", name, len(expected), len(actual))})
	}
	for i := range min(len(expected), len(actual)) {
		if path, msg, bad := firstDiff(expected[i], actual[i], "", lax); bad {
			where := ""
			if path != "" {
				where = " at " + path
			}
			out = append(out, mismatch{i, fmt.Sprintf("%s op %d%s: %s", name, i, where, msg)})
		}
	}
	return out
}

// firstDiff returns the first difference between expected e and actual a:
// where, what, and bad=true; bad=false when a matches e.
func firstDiff(e, a any, path string, lax bool) (string, string, bool) {
	if isMarker(a) {
		return "", "", false
	}
	if isPred(e) {
		m := e.(map[string]any)
		if an, ok := a.(json.Number); ok {
			match := true
			for k, n := range m {
				c := parseNum(an).cmp(parseNum(n.(json.Number)))
				switch k {
				case "$gt":
					match = match && c > 0
				case "$ge":
					match = match && c >= 0
				case "$lt":
					match = match && c < 0
				case "$le":
					match = match && c <= 0
				}
			}
			if match {
				return "", "", false
			}
		}
		return path, fmt.Sprintf("expected a number satisfying %s, got %s", enc(e), enc(a)), true
	}
	switch ev := e.(type) {
	case json.Number:
		if av, ok := a.(json.Number); ok && numEq(ev, av) {
			return "", "", false
		}
		return path, fmt.Sprintf("expected %s, got %s", enc(e), enc(a)), true
	case nil, bool, string:
		if a == e {
			return "", "", false
		}
		return path, fmt.Sprintf("expected %s, got %s", enc(e), enc(a)), true
	case []any:
		av, ok := a.([]any)
		if !ok {
			return path, fmt.Sprintf("expected an array, got %s", enc(a)), true
		}
		if len(av) != len(ev) {
			return path, fmt.Sprintf("expected %d items, got %d: expected %s, got %s", len(ev), len(av), enc(e), enc(a)), true
		}
		for i := range ev {
			if p, msg, bad := firstDiff(ev[i], av[i], fmt.Sprintf("%s[%d]", path, i), lax); bad {
				return p, msg, true
			}
		}
		return "", "", false
	case map[string]any:
		av, ok := a.(map[string]any)
		if !ok {
			return path, fmt.Sprintf("expected an object, got %s", enc(a)), true
		}
		var missing, extra []string
		for k := range ev {
			if _, ok := av[k]; !ok {
				missing = append(missing, k)
			}
		}
		for k := range av {
			if _, ok := ev[k]; !ok {
				extra = append(extra, k)
			}
		}
		if len(missing) > 0 || len(extra) > 0 {
			slices.Sort(missing)
			slices.Sort(extra)
			return path, fmt.Sprintf("object keys differ (missing %s, unexpected %s): expected %s, got %s",
				enc(orEmpty(missing)), enc(orEmpty(extra)), enc(e), enc(a)), true
		}
		_, isSQL := ev["columnNames"]
		for _, k := range sortedKeys(ev) {
			sub := path + "." + k
			if !ident.MatchString(k) {
				sub = path + "[" + strconv.Quote(k) + "]"
			}
			if lax && isSQL && slices.Contains(counters, k) {
				if n, ok := av[k].(json.Number); ok && parseNum(n).cmp(num{r: new(big.Rat)}) >= 0 {
					continue
				}
				return sub, fmt.Sprintf("expected a non-negative number, got %s", enc(av[k])), true
			}
			if p, msg, bad := firstDiff(ev[k], av[k], sub, lax); bad {
				return p, msg, true
			}
		}
		return "", "", false
	}
	return path, fmt.Sprintf("unsupported expected value %s", enc(e)), true
}

func isMarker(a any) bool {
	m, ok := a.(map[string]any)
	if !ok || len(m) != 1 {
		return false
	}
	_, ok = m[notImplemented]
	return ok
}

// isPred reports an expected predicate object: non-empty, every key one of
// $gt/$ge/$lt/$le, every value a number.
func isPred(e any) bool {
	m, ok := e.(map[string]any)
	if !ok || len(m) == 0 {
		return false
	}
	for k, v := range m {
		if _, isNum := v.(json.Number); !isNum || !slices.Contains(predicates, k) {
			return false
		}
	}
	return true
}

// num is a JSON number as Python's json module reads it: an integer
// literal is exact, any other literal is an IEEE double (±Inf when it
// overflows). inf is -1/+1 for infinities, else r holds the exact value.
type num struct {
	r   *big.Rat
	inf int
}

func isIntLiteral(s string) bool { return !strings.ContainsAny(s, ".eE") }

func parseNum(n json.Number) num {
	s := n.String()
	if isIntLiteral(s) {
		if i, ok := new(big.Int).SetString(s, 10); ok {
			return num{r: new(big.Rat).SetInt(i)}
		}
	}
	f, _ := strconv.ParseFloat(s, 64)
	if math.IsInf(f, 0) {
		if f > 0 {
			return num{inf: 1}
		}
		return num{inf: -1}
	}
	return num{r: new(big.Rat).SetFloat64(f)}
}

// cmp compares exactly, as Python compares ints and floats.
func (x num) cmp(y num) int {
	if x.inf != 0 || y.inf != 0 {
		switch {
		case x.inf < y.inf:
			return -1
		case x.inf > y.inf:
			return 1
		}
		return 0
	}
	return x.r.Cmp(y.r)
}

// numEq is check.py's num_eq: float(e) == float(a), falling back to exact
// equality when an integer is too large for a float.
func numEq(e, a json.Number) bool {
	fe, okE := toFloat(e.String())
	fa, okA := toFloat(a.String())
	if !okE || !okA {
		return parseNum(e).cmp(parseNum(a)) == 0
	}
	return fe == fa
}

// toFloat is Python's float() of a parsed JSON number; ok is false where
// Python raises OverflowError (an integer beyond the double range).
func toFloat(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && isIntLiteral(s) {
		return 0, false
	}
	return f, true
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// enc renders x as compact JSON for messages, cut at 160 characters.
func enc(x any) string {
	b, err := json.Marshal(x)
	if err != nil {
		return fmt.Sprintf("%v", x)
	}
	s := string(b)
	if len(s) <= 160 {
		return s
	}
	return fmt.Sprintf("%s...(%d chars)", s[:160], len(s))
}

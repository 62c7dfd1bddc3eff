package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/actor"
	"github.com/opendo/opendo/bus"
	"github.com/opendo/opendo/internal/natstest"
	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
)

// hostileTexts would rewrite or reorder an operator's terminal if printed
// as they are: escape sequences (CSI, OSC), C0 and C1 controls, DEL, bidi
// overrides and isolates, line breaks that fake output lines, invalid UTF-8
// (a lone 0x9b is CSI on 8-bit terminals).
var hostileTexts = []string{
	"\x1b[31mred\x1b[0m",
	"\x1b]0;pwned\a",
	"\x1b[2J\x1b[H",
	"abc\u202egpj.exe",
	"\u202a\u202b\u202c\u202d",
	"\u2066isolate\u2069\u2067\u2068",
	"nel\u0085csi\u009b31m\u0080\u009f",
	"del\x7f",
	"nul\x00bs\b",
	"cr\rlf\n# seq 1  fake line",
	"tab\tcolumn",
	"bad\xff\xfeutf8",
	"\x9b31mraw C1 byte",
}

// checkTerminalSafe fails unless out is valid UTF-8 whose characters are
// all printable, newline or tab: no byte below 0x20 but '\n' and '\t', no
// DEL, no C1 control (U+0080–U+009F), no bidi formatting character
// (U+202A–U+202E, U+2066–U+2069), nor any other non-printable character.
func checkTerminalSafe(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s: output is not valid UTF-8:\n%q", what, out)
		return
	}
	for i, r := range out {
		if r != '\n' && r != '\t' && !unicode.IsPrint(r) {
			line := out[strings.LastIndexByte(out[:i], '\n')+1:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			t.Errorf("%s: output holds %U at byte %d, in line %q", what, r, i, line)
		}
	}
}

// TestJournalEscapesHostileText: request IDs, keys, values, SQL text and
// arguments, and namespace, ID and partition tokens of subjects, as old or
// hand-written journals may hold them, reach the terminal escaped in show,
// show -restores, tail and ls; JSON output keeps them exact.
func TestJournalEscapesHostileText(t *testing.T) {
	ctx := t.Context()
	srv := natstest.Start(t)
	js, err := jetstream.New(srv.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	jr, err := journal.Open(ctx, js, journal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	subj, err := bus.NewSubjects(bus.DefaultPrefix, bus.DefaultPartitions)
	if err != nil {
		t.Fatal(err)
	}
	base := bus.DefaultPrefix + ".journal."
	last := map[string]uint64{}
	var lastSeq uint64
	appendTxn := func(subject, rid string, muts ...storage.Mutation) {
		t.Helper()
		now := time.Now()
		e := &journal.Entry{CommitID: ulid.Make(), Time: now, Txns: []storage.Txn{{
			RequestID: rid,
			Context:   storage.TxContext{Time: now, Seed: 1},
			Mutations: muts,
		}}}
		seq, err := jr.Append(ctx, subject, last[subject], e)
		if err != nil {
			t.Fatalf("append to %q: %v", subject, err)
		}
		last[subject], lastSeq = seq, seq
	}

	// One object whose entries hold every hostile text everywhere.
	const name = "obj-hostile"
	subject := subj.Journal(journalTestNS, string(actor.NameID(journalTestNS, name)))
	for _, h := range hostileTexts {
		appendTxn(subject, h,
			storage.Mutation{Op: storage.OpPut, Key: h, Value: []byte(h)},
			storage.Mutation{Op: storage.OpPut, Key: "json", Value: []byte(`{"v":"` + h + `"}`)},
			storage.Mutation{Op: storage.OpDelete, Key: h},
			storage.Mutation{Op: storage.OpSQL, SQL: "INSERT INTO t VALUES (?) -- " + h, Args: []any{h, []byte(h)}},
		)
	}
	appendTxn(subject, hostileTexts[0], storage.Mutation{Op: storage.OpRestore, Target: last[subject]})
	appendTxn(subject, hostileTexts[3], storage.Mutation{Op: storage.OpRestore, Target: 0})
	// Objects whose namespace and ID, parsed from their subjects, are
	// hostile; NATS subjects refuse only whitespace, '.', '*' and '>'. (A
	// subject with a DEL is stored but never listed: nats-server's subject
	// tree refuses that byte, so ls cannot show it.)
	for i, h := range []string{"\x1b[31mns", "ns\u202e", "\u0085\x01", "\u009b2J"} {
		appendTxn(base+"0."+h+"."+h+"id", fmt.Sprintf("req-%d", i), storage.Mutation{Op: storage.OpPut, Key: "k", Value: []byte("v")})
	}
	// An object of the test namespace journaled under a hostile partition
	// token: show finds it by scanning every partition and names its subject.
	const namePart = "obj-partition"
	idPart := string(actor.NameID(journalTestNS, namePart))
	appendTxn(base+"\x1b[5m\u202e."+journalTestNS+"."+idPart, "req-p", storage.Mutation{Op: storage.OpPut, Key: "k", Value: []byte("v")})

	cmd := func(args ...string) (string, string) {
		t.Helper()
		out, errb, err := journalCmd(t, ctx, append(args, "-nats", srv.URL())...)
		if err != nil {
			t.Fatalf("journal %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, errb)
		}
		return out, errb
	}
	for _, args := range [][]string{
		{"show", journalTestNS, name},
		{"show", journalTestNS, name, "-full"},
		{"show", journalTestNS, name, "-restores"},
		{"show", journalTestNS, namePart},
		{"ls"},
		{"ls", journalTestNS},
	} {
		out, errb := cmd(args...)
		what := strings.Join(args, " ")
		checkTerminalSafe(t, what, out)
		checkTerminalSafe(t, what+" (stderr)", errb)
		if len(strings.TrimSpace(out)) == 0 {
			t.Errorf("%s printed nothing", what)
		}
	}
	if out, _ := cmd("show", journalTestNS, name); !strings.Contains(out, `txn request "\x1b[31mred\x1b[0m"`) ||
		!strings.Contains(out, `txn request "abc\u202egpj.exe"`) || !strings.Contains(out, `txn request "bad\xff\xfeutf8"`) {
		t.Errorf("show: hostile request IDs not shown escaped:\n%s", out)
	}
	if out, _ := cmd("show", journalTestNS, namePart); !strings.Contains(out, `on "opendo.journal.\x1b[5m\u202e.`) {
		t.Errorf("show of an object in a hostile partition:\n%s", out)
	}
	if out, _ := cmd("ls"); !strings.Contains(out, `"\x1b[31mns"`) || !strings.Contains(out, `"ns\u202e"`) {
		t.Errorf("ls: hostile namespaces not shown escaped:\n%s", out)
	}

	// JSON output escapes them too, and decodes to the exact texts.
	for _, args := range [][]string{
		{"show", journalTestNS, name, "-restores", "-json"},
		{"ls", "-json"},
	} {
		out, errb := cmd(args...)
		what := strings.Join(args, " ")
		checkTerminalSafe(t, what, out)
		checkTerminalSafe(t, what+" (stderr)", errb)
	}
	if out, _ := cmd("ls", "-json"); !strings.Contains(out, `"ns":"ns\u202e"`) {
		t.Errorf("ls -json: hostile namespace not escaped:\n%s", out)
	}
	out, _ := cmd("show", journalTestNS, name, "-json")
	checkTerminalSafe(t, "show -json", out)
	var rids []string
	for line := range strings.Lines(out) {
		var je jsonEntry
		if err := json.Unmarshal([]byte(line), &je); err != nil {
			t.Fatalf("show -json line %q: %v", line, err)
		}
		rids = append(rids, je.Txns[0].Request)
	}
	for i, h := range hostileTexts {
		if utf8.ValidString(h) && (i >= len(rids) || rids[i] != h) {
			t.Errorf("show -json: request %d is not %q: %q", i, h, rids)
		}
	}

	// tail, from the first entry, of every object: each line starts with
	// the entry's object. An entry that does not decode is reported on
	// stderr with its subject.
	if _, err := js.Publish(ctx, base+"1.\x1b[33mns.\u2066id", []byte("\x1b[31mnot an entry")); err != nil {
		t.Fatal(err)
	}
	appendTxn(base+"2.end.end", "req-end", storage.Mutation{Op: storage.OpDeleteAll})
	tailOut, tailErr := &lockedBuffer{}, &lockedBuffer{}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runJournal(tctx, []string{"tail", "-from", "1", "-nats", srv.URL()}, tailOut, tailErr)
	}()
	end := fmt.Sprintf("end/end seq %d ", lastSeq)
	journalWaitFor(t, "tail to print the last entry", func() bool { return strings.Contains(tailOut.String(), end) }, done)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("tail: %v\nstderr:\n%s", err, tailErr.String())
	}
	checkTerminalSafe(t, "tail", tailOut.String())
	checkTerminalSafe(t, "tail (stderr)", tailErr.String())
	if !strings.Contains(tailOut.String(), `"\x1b[31mns"/"\x1b[31mnsid" seq `) {
		t.Errorf("tail: hostile object not shown escaped:\n%s", tailOut.String())
	}
	if !strings.Contains(tailErr.String(), `opendo: "opendo.journal.1.\x1b[33mns.\u2066id" seq `) {
		t.Errorf("tail: undecodable entry not reported with its subject escaped:\n%s", tailErr.String())
	}
}

func TestJournalSafeText(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"", ""},
		{"req-1", "req-1"},
		{"café", "café"},
		{"名前", "名前"},
		{"🦀 crab", "🦀 crab"},
		{`it's "fine"`, `it's "fine"`},
		{`back\slash`, `back\slash`},
		{"\x1b[31mred", `"\x1b[31mred"`},
		{"a\u202eb", `"a\u202eb"`},
		{"a\u2066b\u2069", `"a\u2066b\u2069"`},
		{"a\u0085b", `"a\u0085b"`},
		{"a\u009fb", `"a\u009fb"`},
		{"a\x00b", `"a\x00b"`},
		{"a\x7fb", `"a\x7fb"`},
		{"a\tb", `"a\tb"`},
		{"a\nb", `"a\nb"`},
		{"a\u00a0b", `"a\u00a0b"`},
		{"a\u200bb", `"a\u200bb"`},
		{"a\u2028b", `"a\u2028b"`},
		{"a\xffb", `"a\xffb"`},
		{"\x9b", `"\x9b"`},
		// A printable text that starts like a quoted one is quoted too.
		{`"\x1b"`, `"\"\\x1b\""`},
	} {
		if got := safeText(tc.in); got != tc.want {
			t.Errorf("safeText(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestJournalSQLArgFormat(t *testing.T) {
	p := &entryPrinter{}
	for _, tc := range []struct {
		in   any
		want string
	}{
		{"it's", "'it''s'"},
		{"café", "'café'"},
		{"\x1b[31m", `"\x1b[31m"`},
		{"it's\u202e", `"it's\u202e"`},
		{"bad\xff", `"bad\xff"`},
		{strings.Repeat("\x1b", 300), `"` + strings.Repeat(`\x1b`, maxShownText) + `"... (300 bytes)`},
		{strings.Repeat("x", 300), "'" + strings.Repeat("x", maxShownText) + "'... (300 bytes)"},
	} {
		if got := p.sqlArg(tc.in); got != tc.want {
			t.Errorf("sqlArg(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestJournalJSONEscapes(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{"plain café 名前 🦀", `"plain café 名前 🦀"`},
		{"\x1b[31m\x00", `"\u001b[31m\u0000"`},
		{"del\x7f", `"del\u007f"`},
		{"nel\u0085csi\u009b", `"nel\u0085csi\u009b"`},
		{"a\u202eb\u2066c\u2069", `"a\u202eb\u2066c\u2069"`},
		{"nbsp\u00a0zw\u200b", `"nbsp\u00a0zw\u200b"`},
		{"tag\U000E0041", `"tag\udb40\udc41"`},
		{map[string]string{"k\u202e": "v\u0085"}, `{"k\u202e":"v\u0085"}`},
	} {
		var b strings.Builder
		if err := writeJSONLine(&b, tc.in); err != nil {
			t.Fatal(err)
		}
		got := b.String()
		if got != tc.want+"\n" {
			t.Errorf("writeJSONLine(%q) = %s, want %s", tc.in, got, tc.want)
			continue
		}
		checkTerminalSafe(t, "writeJSONLine", got)
		// The escapes decode to the same value.
		want, _ := json.Marshal(tc.in)
		var a, b2 any
		if err := json.Unmarshal([]byte(got), &a); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if err := json.Unmarshal(want, &b2); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(a) != fmt.Sprint(b2) {
			t.Errorf("writeJSONLine(%q) decodes to %q, want %q", tc.in, a, b2)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage"
)

// Cut-off of long texts (bytes) and binary values (bytes shown in hex)
// unless -full.
const (
	maxShownText = 200
	maxShownHex  = 64
)

// entryPrinter prints journal entries as text or JSON lines.
type entryPrinter struct {
	w      io.Writer
	json   bool
	full   bool
	object bool // start each entry with its object (tail)
	// bookmarks, if set, finds the bookmark of a restore's target: the
	// subject's entry at that sequence (ok false if it has none).
	bookmarks func(ctx context.Context, subject string, seq uint64) (b journal.Bookmark, ok bool, err error)
}

// restoreView is what is shown of a restore entry's target.
type restoreView struct {
	target   uint64
	bookmark string // "" if unknown
	gone     bool   // looked up: the object has no entry at target
}

// restore returns the view of e's restore, if e is a restore entry of
// subject.
func (p *entryPrinter) restore(ctx context.Context, subject string, e *journal.Entry) (restoreView, bool, error) {
	target, ok := e.Restore()
	if !ok {
		return restoreView{}, false, nil
	}
	v := restoreView{target: target}
	if p.bookmarks != nil {
		b, found, err := p.bookmarks(ctx, subject, target)
		if err != nil {
			return v, true, fmt.Errorf("the bookmark of seq %d, target of a restore: %w", target, err)
		}
		if found {
			v.bookmark = b.String()
		} else {
			v.gone = true
		}
	}
	return v, true, nil
}

// String formats the restore as a mutation line.
func (v restoreView) String() string {
	switch {
	case v.target == 0:
		return "restore to the empty state (seq 0)"
	case v.bookmark != "":
		return fmt.Sprintf("restore to seq %d (bookmark %s)", v.target, safeText(v.bookmark))
	case v.gone:
		return fmt.Sprintf("restore to seq %d (bookmark unknown: the journal no longer has this object's entry at seq %d)", v.target, v.target)
	}
	return fmt.Sprintf("restore to seq %d", v.target)
}

// print writes the entry at seq of object ns/id, journaled on subject.
func (p *entryPrinter) print(ctx context.Context, subject, ns, id string, seq uint64, e *journal.Entry) error {
	rv, isRestore, err := p.restore(ctx, subject, e)
	if err != nil {
		return err
	}
	if p.json {
		je := entryJSON(seq, e)
		if p.object {
			je.NS, je.ID = ns, id
		}
		if isRestore {
			m := &je.Txns[0].Mutations[0]
			m.Bookmark = rv.bookmark
		}
		return writeJSONLine(p.w, je)
	}
	var b strings.Builder
	if p.object {
		fmt.Fprintf(&b, "%s/%s ", safeText(ns), safeText(id))
	}
	fmt.Fprintf(&b, "seq %d  %s  commit %s", seq, fmtEntryTime(e.Time), e.CommitID)
	if e.FromSnapshot {
		fmt.Fprintf(&b, "  from the snapshot at seq %d", seq)
	}
	b.WriteByte('\n')
	for i := range e.Txns {
		tx := &e.Txns[i]
		fmt.Fprintf(&b, "  txn request %s  %s\n", orDash(safeText(tx.RequestID)), fmtEntryTime(tx.Context.Time))
		for j := range tx.Mutations {
			b.WriteString("    ")
			if m := &tx.Mutations[j]; isRestore && m.Op == storage.OpRestore {
				b.WriteString(rv.String())
			} else {
				b.WriteString(p.mutation(m))
			}
			b.WriteByte('\n')
		}
		if len(tx.Mutations) == 0 {
			b.WriteString("    (no mutations)\n")
		}
	}
	_, err = io.WriteString(p.w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// safeText returns s fit to print on an operator's terminal: s itself when
// it is valid UTF-8 made of printable characters (unicode.IsPrint: letters,
// marks, numbers, punctuation, symbols and the ASCII space, so "café" and
// "名前" stay as they are) and does not start with a double quote; otherwise
// s quoted by strconv.Quote, which escapes every control character (C0, DEL,
// C1 such as U+0085 and U+009B), every format character (among them the
// bidirectional overrides and isolates U+202A–U+202E and U+2066–U+2069),
// the other non-ASCII spaces and line separators, and invalid UTF-8 bytes,
// so no escape sequence or reordering reaches the terminal. Quoting a
// printable s that starts with '"' keeps the output unambiguous: a value
// printed with a leading '"' is always a quoted one.
//
// Human output passes every value that came from outside the command
// through safeText (or quotes it itself, as keys and SQL text are): request
// IDs, namespaces and IDs parsed from subjects, subjects, bookmarks, errors.
// JSON output is made safe by writeJSONLine instead.
func safeText(s string) string {
	if printableText(s) && !strings.HasPrefix(s, `"`) {
		return s
	}
	return strconv.Quote(s)
}

// printableText reports whether s is valid UTF-8 made of printable
// characters (see safeText).
func printableText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// writeJSONLine writes v as one line of JSON. encoding/json escapes the
// C0 controls and U+2028/U+2029 but writes DEL, the C1 controls (U+0085,
// U+009B CSI...) and the bidi overrides and isolates as they are, which a
// terminal would act on: those, and every other character unicode.IsPrint
// refuses, are written as \uXXXX escapes too. They can only occur inside
// JSON strings, so the escapes decode to the very same values.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(escapeJSONText(b), '\n')
	_, err = w.Write(b)
	return err
}

// escapeJSONText returns the JSON text b with every non-printable
// character that encoding/json leaves raw written as a \uXXXX escape (a
// UTF-16 surrogate pair beyond the BMP).
func escapeJSONText(b []byte) []byte {
	i := 0
	for i < len(b) && b[i] < utf8.RuneSelf && b[i] != 0x7f {
		i++
	}
	if i == len(b) {
		return b
	}
	out := append(make([]byte, 0, len(b)+32), b[:i]...)
	for i < len(b) {
		r, n := utf8.DecodeRune(b[i:])
		if r == 0x7f || r >= utf8.RuneSelf && !unicode.IsPrint(r) {
			if r1, r2 := utf16.EncodeRune(r); r1 != unicode.ReplacementChar {
				out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		} else {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}

// mutation formats one mutation on one line.
func (p *entryPrinter) mutation(m *storage.Mutation) string {
	switch m.Op {
	case storage.OpPut:
		return "put " + p.text(m.Key) + " = " + p.value(m.Value)
	case storage.OpDelete:
		return "delete " + p.text(m.Key)
	case storage.OpDeleteAll:
		return "deleteAll"
	case storage.OpSQL:
		var b strings.Builder
		b.WriteString("sql ")
		b.WriteString(p.text(m.SQL))
		if len(m.Args) > 0 {
			b.WriteString(" [")
			for i, a := range m.Args {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(p.sqlArg(a))
			}
			b.WriteString("]")
		}
		return b.String()
	case storage.OpSetAlarm:
		return "setAlarm " + fmtEntryTime(time.UnixMilli(m.Alarm))
	case storage.OpDeleteAlarm:
		return "deleteAlarm"
	case storage.OpRestore:
		return restoreView{target: m.Target}.String()
	}
	return m.Op.String()
}

// text quotes s, cut unless -full.
func (p *entryPrinter) text(s string) string {
	if !p.full && len(s) > maxShownText {
		return strconv.Quote(cutUTF8(s, maxShownText)) + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return strconv.Quote(s)
}

// value shows a stored value: JSON as is, other printable UTF-8 quoted,
// anything else in hex.
func (p *entryPrinter) value(v []byte) string {
	if !printableUTF8(v) {
		return p.hex(v)
	}
	if json.Valid(v) {
		var b bytes.Buffer
		if json.Compact(&b, v) == nil {
			s := b.String()
			if !p.full && len(s) > maxShownText {
				return cutUTF8(s, maxShownText) + fmt.Sprintf("... (%d bytes)", len(v))
			}
			return s
		}
	}
	return p.text(string(v))
}

func (p *entryPrinter) hex(v []byte) string {
	if !p.full && len(v) > maxShownHex {
		return "0x" + hex.EncodeToString(v[:maxShownHex]) + fmt.Sprintf("... (%d bytes)", len(v))
	}
	return "0x" + hex.EncodeToString(v)
}

// sqlArg formats an SQL argument as an SQL literal.
func (p *entryPrinter) sqlArg(a any) string {
	switch v := a.(type) {
	case nil:
		return "NULL"
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		// A text that cannot be printed as it is shows as a Go-quoted
		// string (see safeText), like the SQL text before it.
		s, cut := v, ""
		if !p.full && len(s) > maxShownText {
			s, cut = cutUTF8(s, maxShownText), fmt.Sprintf("... (%d bytes)", len(v))
		}
		if !printableText(s) {
			return strconv.Quote(s) + cut
		}
		return "'" + strings.ReplaceAll(s, "'", "''") + "'" + cut
	case []byte:
		if !p.full && len(v) > maxShownHex {
			return "X'" + hex.EncodeToString(v[:maxShownHex]) + fmt.Sprintf("'... (%d bytes)", len(v))
		}
		return "X'" + hex.EncodeToString(v) + "'"
	}
	return fmt.Sprintf("%T(%v)", a, a)
}

// printableUTF8 reports whether v is valid UTF-8 made of printable characters
// and ordinary whitespace.
func printableUTF8(v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	for _, r := range string(v) {
		if !unicode.IsPrint(r) && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// JSON form of an entry (one line per entry with -json).
type jsonEntry struct {
	NS     string    `json:"ns,omitempty"`
	ID     string    `json:"id,omitempty"`
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Commit string    `json:"commit"`
	// FromSnapshot: the entry applies to the snapshot tagged with its
	// sequence (a fork's first entry), not to the entries before it.
	FromSnapshot bool      `json:"from_snapshot,omitempty"`
	Txns         []jsonTxn `json:"txns"`
}

type jsonTxn struct {
	Request   string         `json:"request"`
	Time      time.Time      `json:"time"`
	Seed      string         `json:"seed"`
	Mutations []jsonMutation `json:"mutations"`
}

// jsonMutation: a put's value is in value when it is valid UTF-8, in
// value_hex otherwise. A restore has its target sequence and, unless the
// journal no longer has the object's entry there, the target's bookmark.
type jsonMutation struct {
	Op       string    `json:"op"`
	Key      *string   `json:"key,omitempty"`
	Value    *string   `json:"value,omitempty"`
	ValueHex *string   `json:"value_hex,omitempty"`
	SQL      *string   `json:"sql,omitempty"`
	Args     []jsonArg `json:"args,omitempty"`
	Alarm    *int64    `json:"alarm_ms,omitempty"`
	AlarmAt  string    `json:"alarm,omitempty"`
	Target   *uint64   `json:"target,omitempty"`
	Bookmark string    `json:"bookmark,omitempty"`
}

// jsonArg is an SQL argument: type null, int, float, text or blob (value
// in hex). Non-finite floats are strings ("NaN", "+Inf", "-Inf").
type jsonArg struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

func entryJSON(seq uint64, e *journal.Entry) jsonEntry {
	je := jsonEntry{Seq: seq, Time: e.Time.UTC(), Commit: e.CommitID.String(), FromSnapshot: e.FromSnapshot, Txns: make([]jsonTxn, len(e.Txns))}
	for i := range e.Txns {
		tx := &e.Txns[i]
		jt := jsonTxn{
			Request:   tx.RequestID,
			Time:      tx.Context.Time.UTC(),
			Seed:      fmt.Sprintf("%#016x", tx.Context.Seed),
			Mutations: make([]jsonMutation, len(tx.Mutations)),
		}
		for j := range tx.Mutations {
			jt.Mutations[j] = mutationJSON(&tx.Mutations[j])
		}
		je.Txns[i] = jt
	}
	return je
}

func mutationJSON(m *storage.Mutation) jsonMutation {
	jm := jsonMutation{Op: m.Op.String()}
	switch m.Op {
	case storage.OpPut:
		k := m.Key
		jm.Key = &k
		if utf8.Valid(m.Value) {
			v := string(m.Value)
			jm.Value = &v
		} else {
			v := hex.EncodeToString(m.Value)
			jm.ValueHex = &v
		}
	case storage.OpDelete:
		k := m.Key
		jm.Key = &k
	case storage.OpSQL:
		q := m.SQL
		jm.SQL = &q
		jm.Args = make([]jsonArg, len(m.Args))
		for i, a := range m.Args {
			jm.Args[i] = argJSON(a)
		}
	case storage.OpSetAlarm:
		ms := m.Alarm
		jm.Alarm = &ms
		jm.AlarmAt = time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
	case storage.OpRestore:
		t := m.Target
		jm.Target = &t
	}
	return jm
}

func argJSON(a any) jsonArg {
	switch v := a.(type) {
	case nil:
		return jsonArg{Type: "null"}
	case int64:
		return jsonArg{Type: "int", Value: v}
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return jsonArg{Type: "float", Value: strconv.FormatFloat(v, 'g', -1, 64)}
		}
		return jsonArg{Type: "float", Value: v}
	case string:
		return jsonArg{Type: "text", Value: v}
	case []byte:
		return jsonArg{Type: "blob", Value: hex.EncodeToString(v)}
	}
	return jsonArg{Type: fmt.Sprintf("%T", a), Value: fmt.Sprint(a)}
}

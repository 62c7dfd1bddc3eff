package journal

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/opendo/opendo/storage"
)

// Version is the newest format version this package writes. Decode reads
// it and every older version. An entry is written in the oldest version
// that can express it: version 1 unless it uses a version 2 feature (a
// restore mutation or the FromSnapshot flag), so that older readers keep
// reading journals that do not need the new features.
const Version = 2

// Entry flags (the byte after the version; version 2 and later).
const (
	// flagFromSnapshot: the entry applies to the state stored in the
	// snapshot tagged with its own sequence, not to the state of the
	// entries before it (the first entry of a fork).
	flagFromSnapshot = 0x01
)

// Layout constants of the entry format (see doc.go).
const (
	magic0, magic1 = 'O', 'J'
	headerSize     = 2 + 1 + 1 + 16 + 8 // magic, version, flags, commit ID, time
	crcSize        = 4
	minTxnSize     = 1 + 1 + 8 + 1 // request ID length, time, seed, mutation count
)

// SQL argument type tags.
const (
	argNull  = 0
	argInt   = 1
	argFloat = 2
	argText  = 3
	argBlob  = 4
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	minTime    = time.Unix(0, math.MinInt64)
	maxTime    = time.Unix(0, math.MaxInt64)
)

// Entry is one journal record: one or more transactions of one object,
// committed together (group commit) in order.
type Entry struct {
	CommitID ulid.ULID     // unique per entry; also the message's Nats-Msg-Id
	Time     time.Time     // when the entry was written
	Txns     []storage.Txn // at least one, in commit order
	// FromSnapshot says that the state before this entry is not the state
	// of the subject's earlier entries but the snapshot tagged with this
	// entry's own sequence: `opendo journal fork` writes it on a fork's first
	// entry. Version 2.
	FromSnapshot bool
}

// version returns the oldest format version that can express e.
func (e *Entry) version() byte {
	if e.FromSnapshot {
		return 2
	}
	for i := range e.Txns {
		for j := range e.Txns[i].Mutations {
			if e.Txns[i].Mutations[j].Op == storage.OpRestore {
				return 2
			}
		}
	}
	return 1
}

// Restore returns the target sequence of e's restore mutation, if e is a
// restore entry (its first transaction's first mutation is OpRestore).
func (e *Entry) Restore() (target uint64, ok bool) {
	if len(e.Txns) == 0 || len(e.Txns[0].Mutations) == 0 || e.Txns[0].Mutations[0].Op != storage.OpRestore {
		return 0, false
	}
	return e.Txns[0].Mutations[0].Target, true
}

// MarshalBinary returns the encoding of e. It fails with ErrInvalidEntry
// when e has no transactions, an unknown op, an SQL argument of another
// type than nil, int64, float64, string or []byte, or a time outside the
// years 1678–2262.
func (e *Entry) MarshalBinary() ([]byte, error) {
	return e.appendEntry(make([]byte, 0, e.size()))
}

// AppendBinary appends the encoding of e to b (see MarshalBinary). On error
// it returns b unchanged.
func (e *Entry) AppendBinary(b []byte) ([]byte, error) {
	return e.appendEntry(slices.Grow(b, e.size()))
}

func (e *Entry) appendEntry(b []byte) ([]byte, error) {
	if len(e.Txns) == 0 {
		return b, fmt.Errorf("%w: no transactions", ErrInvalidEntry)
	}
	if err := e.checkRestore(); err != nil {
		return b, err
	}
	start := len(b)
	var flags byte
	if e.FromSnapshot {
		flags |= flagFromSnapshot
	}
	b = append(b, magic0, magic1, e.version(), flags)
	b = append(b, e.CommitID[:]...)
	t, err := unixNano(e.Time)
	if err != nil {
		return b[:start], fmt.Errorf("%w: entry time: %w", ErrInvalidEntry, err)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(t))
	b = binary.AppendUvarint(b, uint64(len(e.Txns)))
	for i := range e.Txns {
		if b, err = appendTxn(b, &e.Txns[i]); err != nil {
			return b[:start], fmt.Errorf("%w: txn %d: %w", ErrInvalidEntry, i, err)
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli)), nil
}

// checkRestore enforces that a restore mutation is alone in its
// transaction and that transaction alone in its entry: replay replaces the
// whole state at a restore, so nothing may share its entry.
func (e *Entry) checkRestore() error {
	for i := range e.Txns {
		for j, m := range e.Txns[i].Mutations {
			if m.Op == storage.OpRestore && (len(e.Txns) != 1 || len(e.Txns[i].Mutations) != 1) {
				return fmt.Errorf("%w: txn %d mutation %d: a restore must be the only mutation of its entry", ErrInvalidEntry, i, j)
			}
		}
	}
	return nil
}

func appendTxn(b []byte, tx *storage.Txn) ([]byte, error) {
	b = appendString(b, tx.RequestID)
	t, err := unixNano(tx.Context.Time)
	if err != nil {
		return b, fmt.Errorf("context time: %w", err)
	}
	b = binary.AppendVarint(b, t)
	b = binary.BigEndian.AppendUint64(b, tx.Context.Seed)
	b = binary.AppendUvarint(b, uint64(len(tx.Mutations)))
	for j := range tx.Mutations {
		m := &tx.Mutations[j]
		b = append(b, byte(m.Op))
		switch m.Op {
		case storage.OpPut:
			b = appendString(b, m.Key)
			b = appendBytes(b, m.Value)
		case storage.OpDelete:
			b = appendString(b, m.Key)
		case storage.OpDeleteAll, storage.OpDeleteAlarm:
		case storage.OpSQL:
			b = appendString(b, m.SQL)
			b = binary.AppendUvarint(b, uint64(len(m.Args)))
			for k, a := range m.Args {
				if b, err = appendArg(b, a); err != nil {
					return b, fmt.Errorf("mutation %d: arg %d: %w", j, k, err)
				}
			}
		case storage.OpSetAlarm:
			b = binary.AppendVarint(b, m.Alarm)
		case storage.OpRestore:
			b = binary.AppendUvarint(b, m.Target)
		default:
			return b, fmt.Errorf("mutation %d: unknown op %v", j, m.Op)
		}
	}
	return b, nil
}

func appendArg(b []byte, a any) ([]byte, error) {
	switch v := a.(type) {
	case nil:
		return append(b, argNull), nil
	case int64:
		return binary.AppendVarint(append(b, argInt), v), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(b, argFloat), math.Float64bits(v)), nil
	case string:
		return appendString(append(b, argText), v), nil
	case []byte:
		return appendBytes(append(b, argBlob), v), nil
	}
	return b, fmt.Errorf("unsupported type %T", a)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// unixNano encodes t; the zero time is 0.
func unixNano(t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("%v out of range", t)
	}
	return t.UnixNano(), nil
}

// fromUnixNano decodes a time written by unixNano: 0 is the zero time.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// size returns (an upper bound of) the encoded size of e.
func (e *Entry) size() int {
	n := headerSize + binary.MaxVarintLen64 + crcSize
	for i := range e.Txns {
		n += TxnSize(&e.Txns[i])
	}
	return n
}

// TxnSize returns an upper bound of the bytes transaction tx takes in an
// entry: a runtime sizes its journal entries with it before encoding them.
func TxnSize(tx *storage.Txn) int {
	n := 2*binary.MaxVarintLen64 + len(tx.RequestID) + 8 + binary.MaxVarintLen64
	for j := range tx.Mutations {
		m := &tx.Mutations[j]
		n += 1 + 3*binary.MaxVarintLen64 + len(m.Key) + len(m.Value) + len(m.SQL)
		for _, a := range m.Args {
			n += 1 + binary.MaxVarintLen64
			switch v := a.(type) {
			case string:
				n += len(v)
			case []byte:
				n += len(v)
			}
		}
	}
	return n
}

// Decode decodes one entry; see UnmarshalBinary.
func Decode(b []byte) (*Entry, error) {
	e := new(Entry)
	if err := e.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return e, nil
}

// UnmarshalBinary decodes b, which must hold exactly one entry of any
// version up to Version, into e. It is strict: every malformed input yields
// an error wrapping ErrCorrupt (ErrVersion for an unknown version) and
// leaves e unchanged. The decoded entry does not alias b, and its
// allocations are bounded by len(b).
//
// Decoding is canonical: an entry that decodes re-encodes to the same bytes.
// Empty values and blobs decode as empty, non-nil slices; SQL arguments
// decode as nil, int64, float64, string or []byte.
func (e *Entry) UnmarshalBinary(b []byte) error {
	if len(b) < 4 {
		return corruptf("%d bytes, too short", len(b))
	}
	if b[0] != magic0 || b[1] != magic1 {
		return corruptf("bad magic %q", b[:2])
	}
	version, flags := b[2], b[3]
	if version < 1 || version > Version {
		return versionError{got: version}
	}
	if version < 2 && flags != 0 || flags&^flagFromSnapshot != 0 {
		return corruptf("unknown flags %#02x in a version %d entry", flags, version)
	}
	if len(b) < headerSize+1+minTxnSize+crcSize {
		return corruptf("%d bytes, too short", len(b))
	}
	body, sum := b[:len(b)-crcSize], binary.BigEndian.Uint32(b[len(b)-crcSize:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return corruptf("checksum %08x, want %08x", got, sum)
	}
	var d Entry
	copy(d.CommitID[:], body[4:20])
	d.Time = fromUnixNano(int64(binary.BigEndian.Uint64(body[20:28])))
	d.FromSnapshot = flags&flagFromSnapshot != 0
	r := reader{b: body, off: headerSize, version: version}
	n := r.count("txn", minTxnSize)
	if r.err == nil && n == 0 {
		r.fail("no transactions")
	}
	if r.err == nil {
		d.Txns = make([]storage.Txn, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		r.txn(&d.Txns[i])
	}
	if r.err == nil && r.off != len(body) {
		r.fail("%d trailing bytes", len(body)-r.off)
	}
	if r.err != nil {
		return r.err
	}
	if err := d.checkRestore(); err != nil {
		return corruptf("%v", err)
	}
	if v := d.version(); v != version {
		// Canonical: the encoder writes the oldest version that fits.
		return corruptf("a version %d entry that version %d expresses", version, v)
	}
	*e = d
	return nil
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// reader decodes the body of an entry. The first error sticks: later calls
// return zero values, so callers check r.err only where it matters.
type reader struct {
	b       []byte
	off     int
	err     error
	version byte
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = corruptf("offset %d: "+format, append([]any{r.off}, args...)...)
	}
}

func (r *reader) remaining() int { return len(r.b) - r.off }

// uvarint reads a minimally encoded unsigned LEB128 integer.
func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var x uint64
	for i, s := 0, uint(0); i < binary.MaxVarintLen64; i, s = i+1, s+7 {
		if r.off+i >= len(r.b) {
			r.fail("truncated varint")
			return 0
		}
		c := r.b[r.off+i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflow
			}
			if c == 0 && i > 0 {
				r.fail("non-minimal varint")
				return 0
			}
			r.off += i + 1
			return x | uint64(c)<<s
		}
		x |= uint64(c&0x7f) << s
	}
	r.fail("varint overflows 64 bits")
	return 0
}

// varint reads a zigzag-encoded signed integer.
func (r *reader) varint() int64 {
	ux := r.uvarint()
	return int64(ux>>1) ^ -int64(ux&1)
}

func (r *reader) uint64() uint64 {
	if r.err != nil {
		return 0
	}
	if r.remaining() < 8 {
		r.fail("truncated fixed64")
		return 0
	}
	v := binary.BigEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v
}

func (r *reader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if r.remaining() < 1 {
		r.fail("truncated")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// count reads a count of items that take at least min bytes each, and
// rejects counts the remaining bytes cannot hold.
func (r *reader) count(what string, min int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(r.remaining()/min) {
		r.fail("%d %ss cannot fit in %d bytes", n, what, r.remaining())
		return 0
	}
	return int(n)
}

// raw reads a length-prefixed byte string without copying.
func (r *reader) raw(what string) []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(r.remaining()) {
		r.fail("%s length %d exceeds the %d remaining bytes", what, n, r.remaining())
		return nil
	}
	v := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return v
}

func (r *reader) string(what string) string { return string(r.raw(what)) }

// bytes reads a length-prefixed byte string into a new, non-nil slice.
func (r *reader) bytes(what string) []byte {
	v := r.raw(what)
	if r.err != nil {
		return nil
	}
	return append(make([]byte, 0, len(v)), v...)
}

func (r *reader) txn(tx *storage.Txn) {
	tx.RequestID = r.string("request ID")
	tx.Context.Time = fromUnixNano(r.varint())
	tx.Context.Seed = r.uint64()
	n := r.count("mutation", 1)
	if r.err != nil {
		return
	}
	tx.Mutations = make([]storage.Mutation, n)
	for j := 0; j < n && r.err == nil; j++ {
		m := &tx.Mutations[j]
		m.Op = storage.Op(r.byte1())
		switch m.Op {
		case storage.OpPut:
			m.Key = r.string("key")
			m.Value = r.bytes("value")
		case storage.OpDelete:
			m.Key = r.string("key")
		case storage.OpDeleteAll, storage.OpDeleteAlarm:
		case storage.OpSQL:
			m.SQL = r.string("sql")
			na := r.count("arg", 1)
			if r.err == nil && na > 0 {
				m.Args = make([]any, na)
			}
			for k := 0; k < na && r.err == nil; k++ {
				m.Args[k] = r.arg()
			}
		case storage.OpSetAlarm:
			m.Alarm = r.varint()
		case storage.OpRestore:
			if r.version < 2 {
				r.off--
				r.fail("unknown op %d", m.Op)
				break
			}
			m.Target = r.uvarint()
		default:
			if r.err == nil {
				r.off--
				r.fail("unknown op %d", m.Op)
			}
		}
	}
}

func (r *reader) arg() any {
	switch t := r.byte1(); t {
	case argNull:
		return nil
	case argInt:
		return r.varint()
	case argFloat:
		return math.Float64frombits(r.uint64())
	case argText:
		return r.string("text")
	case argBlob:
		return r.bytes("blob")
	default:
		if r.err == nil {
			r.off--
			r.fail("unknown argument type %d", t)
		}
		return nil
	}
}

// String returns a readable multi-line dump of e, as in testdata/*.txt.
func (e *Entry) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "entry commit=%s time=%s txns=%d", e.CommitID, fmtTime(e.Time), len(e.Txns))
	if e.FromSnapshot {
		s.WriteString(" fromSnapshot")
	}
	s.WriteString("\n")
	for i := range e.Txns {
		tx := &e.Txns[i]
		fmt.Fprintf(&s, "txn %d request=%q time=%s seed=%#016x mutations=%d\n",
			i, tx.RequestID, fmtTime(tx.Context.Time), tx.Context.Seed, len(tx.Mutations))
		for j := range tx.Mutations {
			m := &tx.Mutations[j]
			fmt.Fprintf(&s, "  %v", m.Op)
			switch m.Op {
			case storage.OpPut:
				fmt.Fprintf(&s, " key=%q value=%s", m.Key, fmtBytes(m.Value))
			case storage.OpDelete:
				fmt.Fprintf(&s, " key=%q", m.Key)
			case storage.OpSQL:
				fmt.Fprintf(&s, " %q args=[", m.SQL)
				for k, a := range m.Args {
					if k > 0 {
						s.WriteString(", ")
					}
					s.WriteString(fmtArg(a))
				}
				s.WriteString("]")
			case storage.OpSetAlarm:
				fmt.Fprintf(&s, " at=%s (%d ms)", fmtTime(time.UnixMilli(m.Alarm)), m.Alarm)
			case storage.OpRestore:
				fmt.Fprintf(&s, " target=%d", m.Target)
			}
			s.WriteString("\n")
		}
	}
	return s.String()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// fmtBytes shows up to 32 bytes in hex, and the length of longer slices.
func fmtBytes(b []byte) string {
	switch {
	case len(b) == 0:
		return "<empty>"
	case len(b) > 32:
		return "0x" + hex.EncodeToString(b[:32]) + "... (" + strconv.Itoa(len(b)) + " bytes)"
	}
	return "0x" + hex.EncodeToString(b)
}

func fmtArg(a any) string {
	switch v := a.(type) {
	case nil:
		return "null"
	case int64:
		return "int " + strconv.FormatInt(v, 10)
	case float64:
		return "float " + strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return "text " + strconv.Quote(v)
	case []byte:
		return "blob " + fmtBytes(v)
	}
	return fmt.Sprintf("%T(%v)", a, a)
}

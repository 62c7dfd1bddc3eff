package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldens are fixtures that must decode forever: when the format changes,
// add cases for the new version and keep the old ones (their entry
// functions and files) untouched.
var goldens = []struct {
	name    string
	version int
	entry   func() *Entry
}{
	{"v1-small", 1, smallEntry},
	{"v1-all-ops", 1, allOpsEntry},
	{"v1-multi-txn", 1, multiTxnEntry},
	{"v2-restore", 2, restoreEntry},
	{"v2-fork", 2, forkEntry},
}

// bads are deliberately broken fixtures, derived from v1-small.
var bads = []struct {
	name   string
	why    string
	want   error
	reason string // in the error message: it failed for the right reason
	make   func(good []byte) []byte
}{
	{"bad-truncated", "v1-small without its last 5 bytes", ErrCorrupt, "checksum",
		func(b []byte) []byte { return b[:len(b)-5] }},
	{"bad-crc", "v1-small with one bit of the value flipped", ErrCorrupt, "checksum",
		func(b []byte) []byte { return patch(b, len(b)-crcSize-1, b[len(b)-crcSize-1]^0x10) }},
	{"bad-version", "v1-small with version byte 3 and a valid checksum", ErrVersion, "version 3",
		func(b []byte) []byte { return withCRC(patch(b, 2, 3)) }},
	{"bad-v2-needless", "v1-small with version byte 2 (it uses no version 2 feature) and a valid checksum", ErrCorrupt, "version 1 expresses",
		func(b []byte) []byte { return withCRC(patch(b, 2, 2)) }},
	{"bad-v2-flags", "v1-small with version byte 2, flags byte 0x02 and a valid checksum", ErrCorrupt, "unknown flags",
		func(b []byte) []byte { return withCRC(patch(patch(b, 2, 2), 3, 2)) }},
	{"bad-op", "v1-small with op byte 9 and a valid checksum", ErrCorrupt, "unknown op 9",
		func(b []byte) []byte { return withCRC(patch(b, smallOpOffset(), 9)) }},
	{"bad-flags", "v1-small with flags byte 0x01 and a valid checksum", ErrCorrupt, "unknown flags",
		func(b []byte) []byte { return withCRC(patch(b, 3, 1)) }},
	{"bad-magic", "v1-small starting with \"XJ\"", ErrCorrupt, "bad magic",
		func(b []byte) []byte { return withCRC(patch(b, 0, 'X')) }},
	{"bad-trailing", "v1-small with one extra byte before a valid checksum", ErrCorrupt, "1 trailing bytes",
		func(b []byte) []byte {
			return withCRC(append(bytes.Clone(b[:len(b)-crcSize]), 0, 0, 0, 0, 0))
		}},
	{"bad-no-txns", "v1-small with a transaction count of 0 and a valid checksum", ErrCorrupt, "no transactions",
		func(b []byte) []byte { return withCRC(patch(b, headerSize, 0)) }},
}

// smallOpOffset is the offset of the op byte of v1-small's mutation.
func smallOpOffset() int {
	tx := smallEntry().Txns[0]
	return headerSize + 1 + 1 + len(tx.RequestID) +
		len(binary.AppendVarint(nil, tx.Context.Time.UnixNano())) + 8 + 1
}

func TestGolden(t *testing.T) {
	known := map[string]bool{}
	for _, g := range goldens {
		known[g.name] = true
		t.Run(g.name, func(t *testing.T) {
			want := g.entry()
			// The encoder writes the oldest version that expresses an
			// entry, so every golden re-encodes to its bytes.
			if v := want.version(); int(v) != g.version {
				t.Fatalf("entry is version %d, fixture says %d", v, g.version)
			}
			{
				b, err := want.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if *update {
					writeFixture(t, g.name+".bin", b)
					writeFixture(t, g.name+".txt", []byte(want.String()))
				}
				if bin := readFixture(t, g.name+".bin"); !bytes.Equal(b, bin) {
					t.Errorf("encoding changed (fixtures of a released version never change: add a new version instead)\ngot:  %x\nwant: %x", b, bin)
				}
			}
			got, err := Decode(readFixture(t, g.name+".bin"))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !sameEntry(got, want) {
				t.Errorf("decoded\n%s\nwant\n%s", got, want)
			}
			if txt := string(readFixture(t, g.name+".txt")); got.String() != txt {
				t.Errorf("dump\n%s\nwant (%s.txt)\n%s", got, g.name, txt)
			}
		})
	}
	good, err := smallEntry().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range bads {
		known[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			if *update {
				writeFixture(t, c.name+".bin", c.make(bytes.Clone(good)))
				writeFixture(t, c.name+".txt", []byte(c.why+"\nwant: "+c.want.Error()+"\n"))
			}
			_, err := Decode(readFixture(t, c.name+".bin"))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("got %v, want %v (%s)", err, c.want, c.reason)
			}
		})
	}
	for _, name := range fixtureNames(t) {
		if !known[name] {
			t.Errorf("testdata/%s.bin is not a known fixture", name)
		}
	}
}

func fixtureNames(tb testing.TB) []string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.bin"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no fixtures in testdata (%v)", err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), ".bin")
	}
	return names
}

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func writeFixture(tb testing.TB, name string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

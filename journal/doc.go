// Package journal is opendo's write-ahead journal: every committed
// transaction of an object is appended, before its reply is released, to
// one JetStream subject per object, and replaying that subject rebuilds the
// object's state.
//
// # Model
//
// An Entry holds one or more transactions (storage.Txn) of one object in
// commit order, a unique CommitID (ULID) and the time it was written. Entries
// live in one stream (default OPENDO_JOURNAL) on subjects
//
//	<Prefix>.journal.<partition>.<ns>.<id>
//
// so an object's history is one ordered subject. The stream uses file
// storage, limits retention without any message, age or per-subject limit,
// discard-new (a full stream rejects appends, it never drops history), deny
// delete, and direct gets.
//
// # Fencing
//
// Append carries Nats-Expected-Last-Subject-Sequence: it succeeds only if
// the subject's last sequence is the one the writer expects (0: empty). A
// stale owner's append fails with a *ConflictError matching ErrConflict
// (server error codes 10071 and 10164 both map to it) and writes nothing;
// that owner must deactivate the object. Each message also carries the
// CommitID as Nats-Msg-Id, which makes Append idempotent: retrying an
// append whose acknowledgement was lost returns the sequence it was stored
// at.
//
// # Reading
//
// Read replays a subject with batched direct gets (up to 1,024 entries per
// request, then an end-of-batch status), which need no server-side state.
// Measured on 2 cores over loopback TCP, in a stream interleaving the object
// with 10,000 other entries (BenchmarkRead; medians of noisy runs):
//
//	entries   batched direct get   ordered consumer   one direct get each
//	1         30–39 µs             230–250 µs         18–28 µs
//	100       0.31 ms              0.55–0.61 ms       1.9–2.6 ms
//	10,000    25–31 ms (~350k/s)   25–33 ms (~350k/s) 190–270 ms (~40k/s)
//
// An ordered consumer pays a consumer creation and deletion per read, and
// consumers count against nats-server's default limit of 1,000 per stream
// (v2.14+), which a burst of activations could exhaust. On a replicated
// stream, direct gets may be answered by a follower that lags slightly:
// a read may then miss the newest entries, which fencing turns into an
// ErrConflict on the next append rather than a lost write.
//
// # Wire format (version 1)
//
// Fixed-width integers are big-endian; "uvarint" is unsigned LEB128 and
// "varint" zigzag LEB128, as encoding/binary writes them, always in their
// shortest form. Strings and byte strings are a uvarint length followed by
// the bytes.
//
//	offset  size     field
//	0       2        magic "OJ" (0x4F 0x4A)
//	2       1        format version: 1
//	3       1        flags: 0 (reserved; a decoder rejects other values)
//	4       16       CommitID, the ULID's 16 bytes
//	20      8        Time: int64 Unix nanoseconds (0 = zero time.Time)
//	28      uvarint  number of transactions, at least 1
//	...              the transactions
//	n-4     4        CRC-32C (Castagnoli) of bytes [0, n-4)
//
// A transaction:
//
//	string   RequestID
//	varint   Context.Time, Unix nanoseconds (0 = zero time.Time)
//	8 bytes  Context.Seed, uint64
//	uvarint  number of mutations (may be 0)
//	...      the mutations
//
// A mutation is its op byte (storage.Op) followed by the op's fields:
//
//	1 put          string Key, string Value
//	2 delete       string Key
//	3 deleteAll    -
//	4 sql          string SQL, uvarint argument count, the arguments
//	5 setAlarm     varint Alarm (Unix milliseconds)
//	6 deleteAlarm  -
//
// An SQL argument is a type byte followed by its value:
//
//	0 null   -
//	1 int64  varint
//	2 float  8 bytes, IEEE 754 bits
//	3 text   string
//	4 blob   string
//
// The encoder accepts only nil, int64, float64, string and []byte
// arguments (ErrInvalidEntry for any other type); the decoder returns
// exactly those, with empty blobs and values as empty non-nil slices. Times
// must lie within int64 nanoseconds (years 1678–2262); the Unix epoch
// itself reads back as the zero time. Fields an op does not use are not
// encoded.
//
// Decoding is strict and canonical: any other byte sequence (bad magic,
// flags, op or type byte, truncation, non-minimal varints, counts the
// remaining bytes cannot hold, trailing bytes, checksum mismatch) fails
// with ErrCorrupt, an unknown version with ErrVersion; whatever decodes
// re-encodes to the same bytes. The decoder never panics, allocates no
// more than its input justifies, and never aliases its input.
//
// # Versions
//
// A decoder reads every version ever written; a new version is added only
// for a change older decoders must refuse. The golden files in testdata/
// (v1-*.bin with readable .txt dumps, regenerated with go test -update)
// pin each version's bytes, and bad-*.bin fixtures pin the rejections.
// docs/journal.md has an annotated example.
//
// # Concurrency
//
// A Journal and its methods are safe for concurrent use. Entry values are
// not: encode or decode one from one goroutine at a time.
package journal

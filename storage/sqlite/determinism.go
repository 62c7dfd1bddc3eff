package sqlite

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
	"unsafe"

	"modernc.org/libc"
	lib "modernc.org/sqlite/lib"

	"github.com/opendo/opendo/storage"
)

// Deterministic replay of SQL
//
// A journaled SQL statement is run again by Apply, on another connection,
// maybe years later. Whatever SQLite would take from outside the database
// is taken from the transaction's storage.TxContext instead:
//
//   - "now" (date('now'), CURRENT_TIMESTAMP, unixepoch(), julianday(),
//     strftime(..., 'now'), DEFAULT CURRENT_TIMESTAMP, ...) comes from SQLite's
//     VFS (xCurrentTimeInt64). Each DB opens its file through a VFS of its
//     own: a copy of the default one whose clock returns the transaction's
//     TxContext.Time, in whole milliseconds. Built-in date functions keep
//     their exact semantics.
//   - random() and randomblob(N) are replaced on the connection by functions
//     that draw from a ChaCha8 stream keyed by SHA-256(TxContext.Seed, the
//     statement's index in the transaction's mutations, a read counter). A
//     journaled statement at index i of a transaction sees the same stream
//     live and in replay whatever ran before it; statements that are not
//     journaled (reads) use streams that no journaled statement uses.
//   - changes() and total_changes() are replaced by counters of the user's
//     statements within the transaction (internal key-value statements, which
//     replay differently, do not count); last_insert_rowid() is SQLite's,
//     reset to 0 when a transaction begins and restored when a statement
//     fails or a savepoint rolls back.
//
// C callbacks find their connection's state through live, keyed by the
// address of the DB's VFS (also the user data of its functions and of its
// progress handler). It is the one mutable package-level variable here; the
// callbacks cannot be handed a Go pointer.
var live = struct {
	sync.RWMutex
	m map[uintptr]*sqlState
}{m: make(map[uintptr]*sqlState)}

// sqlState is the outside world as a DB's user SQL sees it. Only the DB's
// goroutine touches it (the callbacks run on the goroutine that steps the
// statement).
type sqlState struct {
	nowMS  int64 // the transaction's now, Unix ms; valid with hasNow
	hasNow bool

	seed  uint64 // TxContext.Seed
	key   [3]uint64
	rng   *rand.ChaCha8 // made on first use in a statement
	reads uint64        // statements run this transaction that are not journaled

	changes int64 // changes(): rows changed by the last user INSERT/UPDATE/DELETE
	total   int64 // total_changes(): rows changed by user statements this transaction

	ctx    context.Context // interrupts the running user statement when done
	maxLen int64           // SQLITE_LIMIT_LENGTH, for randomblob
}

// beginTxn resets the state for a transaction with context tc.
func (s *sqlState) beginTxn(tc storage.TxContext) {
	*s = sqlState{maxLen: s.maxLen, seed: tc.Seed}
	if !tc.Time.IsZero() {
		s.nowMS, s.hasNow = tc.Time.UnixMilli(), true
	}
}

// statement prepares random() for the statement at index (its position in
// the transaction's mutations); journaled tells whether it is recorded.
func (s *sqlState) statement(index int, journaled bool) {
	s.rng = nil
	s.key = [3]uint64{s.seed, uint64(index), 0}
	if !journaled {
		s.reads++
		s.key[2] = s.reads
	}
}

func (s *sqlState) random() *rand.ChaCha8 {
	if s.rng == nil {
		var b [32]byte
		binary.BigEndian.PutUint64(b[0:], s.key[0])
		binary.BigEndian.PutUint64(b[8:], s.key[1])
		binary.BigEndian.PutUint64(b[16:], s.key[2])
		copy(b[24:], "opendo/1")
		s.rng = rand.NewChaCha8(sha256.Sum256(b[:]))
	}
	return s.rng
}

// julianDayMS is the Julian day of the Unix epoch in milliseconds.
const julianDayMS = 210866760000000

func (s *sqlState) nowJulianMS() int64 {
	if s.hasNow {
		return s.nowMS + julianDayMS
	}
	return time.Now().UnixMilli() + julianDayMS
}

func stateOf(key uintptr) *sqlState {
	live.RLock()
	defer live.RUnlock()
	return live.m[key]
}

// vfs is a DB's private copy of the default VFS, with the transaction's
// clock. Its address is the DB's key in live.
type vfs struct {
	p    uintptr // sqlite3_vfs*, C memory
	name string
}

// vfsMu serializes copying the default VFS and registering and
// unregistering ours: sqlite3_vfs_register writes the default VFS's pNext,
// which newVFS reads when it copies the struct.
var vfsMu sync.Mutex

// newVFS registers a VFS for st.
func newVFS(st *sqlState) (*vfs, error) {
	vfsMu.Lock()
	defer vfsMu.Unlock()
	tls := libc.NewTLS()
	defer tls.Close()
	base := lib.Xsqlite3_vfs_find(tls, 0)
	if base == 0 {
		return nil, fmt.Errorf("sqlite: no default VFS")
	}
	bv := (*lib.Tsqlite3_vfs)(cptr(base))
	if bv.FiVersion < 2 {
		return nil, fmt.Errorf("sqlite: default VFS has version %d, want >= 2", bv.FiVersion)
	}
	p := libc.Xmalloc(tls, lib.Tsize_t(unsafe.Sizeof(lib.Tsqlite3_vfs{})))
	if p == 0 {
		return nil, fmt.Errorf("sqlite: out of memory for a VFS")
	}
	v := &vfs{p: p, name: fmt.Sprintf("opendo-%x", p)}
	name, err := libc.CString(v.name)
	if err != nil {
		libc.Xfree(tls, p)
		return nil, err
	}
	c := (*lib.Tsqlite3_vfs)(cptr(p))
	*c = *bv
	c.FpNext = 0
	c.FzName = name
	c.FxCurrentTime = cfunc(vfsCurrentTime)
	c.FxCurrentTimeInt64 = cfunc(vfsCurrentTimeInt64)
	live.Lock()
	live.m[p] = st
	live.Unlock()
	if rc := lib.Xsqlite3_vfs_register(tls, p, 0); rc != lib.SQLITE_OK {
		v.free(tls)
		return nil, fmt.Errorf("sqlite: register VFS: %s", codeName(rc))
	}
	return v, nil
}

// close unregisters and frees the VFS; no connection may use it any more.
func (v *vfs) close() {
	vfsMu.Lock()
	defer vfsMu.Unlock()
	tls := libc.NewTLS()
	defer tls.Close()
	lib.Xsqlite3_vfs_unregister(tls, v.p)
	v.free(tls)
}

func (v *vfs) free(tls *libc.TLS) {
	live.Lock()
	delete(live.m, v.p)
	live.Unlock()
	libc.Xfree(tls, (*lib.Tsqlite3_vfs)(cptr(v.p)).FzName)
	libc.Xfree(tls, v.p)
}

// vfsNow returns the Julian day in milliseconds as the DB of pVfs sees it.
func vfsNow(pVfs uintptr) int64 {
	if st := stateOf(pVfs); st != nil {
		return st.nowJulianMS()
	}
	return time.Now().UnixMilli() + julianDayMS
}

func vfsCurrentTimeInt64(tls *libc.TLS, pVfs, pOut uintptr) int32 {
	*(*int64)(cptr(pOut)) = vfsNow(pVfs)
	return lib.SQLITE_OK
}

func vfsCurrentTime(tls *libc.TLS, pVfs, pOut uintptr) int32 {
	*(*float64)(cptr(pOut)) = float64(vfsNow(pVfs)) / 86400000.0
	return lib.SQLITE_OK
}

// installFunctions replaces the functions that would differ on replay and
// installs the progress handler that interrupts user statements.
func (h rawConn) installFunctions(key uintptr) error {
	const flags = lib.SQLITE_UTF8 | lib.SQLITE_INNOCUOUS
	for _, f := range []struct {
		name string
		n    int32
		fn   uintptr
	}{
		{"random", 0, cfunc(fnRandom)},
		{"randomblob", 1, cfunc(fnRandomblob)},
		{"changes", 0, cfunc(fnChanges)},
		{"total_changes", 0, cfunc(fnTotalChanges)},
	} {
		name, err := h.cstring(f.name)
		if err != nil {
			return err
		}
		rc := lib.Xsqlite3_create_function_v2(h.tls, h.db, name, f.n, flags, key, f.fn, 0, 0, 0)
		h.free(name)
		if rc != lib.SQLITE_OK {
			return fmt.Errorf("sqlite: create function %s: %s", f.name, codeName(rc))
		}
	}
	lib.Xsqlite3_progress_handler(h.tls, h.db, progressOps, cfunc(progress), key)
	return nil
}

// progressOps is how many virtual machine instructions run between checks
// of the running user statement's context.
const progressOps = 1000

func progress(tls *libc.TLS, key uintptr) int32 {
	if st := stateOf(key); st != nil && st.ctx != nil && st.ctx.Err() != nil {
		return 1
	}
	return 0
}

func fnRandom(tls *libc.TLS, ctx uintptr, argc int32, argv uintptr) {
	st := stateOf(lib.Xsqlite3_user_data(tls, ctx))
	if st == nil {
		lib.Xsqlite3_result_null(tls, ctx)
		return
	}
	lib.Xsqlite3_result_int64(tls, ctx, int64(st.random().Uint64()))
}

func fnRandomblob(tls *libc.TLS, ctx uintptr, argc int32, argv uintptr) {
	st := stateOf(lib.Xsqlite3_user_data(tls, ctx))
	if st == nil || argc != 1 {
		lib.Xsqlite3_result_null(tls, ctx)
		return
	}
	n := lib.Xsqlite3_value_int64(tls, *(*uintptr)(cptr(argv)))
	if n < 1 {
		n = 1
	}
	if n > st.maxLen {
		lib.Xsqlite3_result_error_toobig(tls, ctx)
		return
	}
	p := lib.Xsqlite3_malloc64(tls, uint64(n))
	if p == 0 {
		lib.Xsqlite3_result_error_nomem(tls, ctx)
		return
	}
	st.random().Read(cbytes(p, int(n)))
	lib.Xsqlite3_result_blob64(tls, ctx, p, uint64(n), lib.SQLITE_TRANSIENT)
	lib.Xsqlite3_free(tls, p)
}

func fnChanges(tls *libc.TLS, ctx uintptr, argc int32, argv uintptr) {
	var n int64
	if st := stateOf(lib.Xsqlite3_user_data(tls, ctx)); st != nil {
		n = st.changes
	}
	lib.Xsqlite3_result_int64(tls, ctx, n)
}

func fnTotalChanges(tls *libc.TLS, ctx uintptr, argc int32, argv uintptr) {
	var n int64
	if st := stateOf(lib.Xsqlite3_user_data(tls, ctx)); st != nil {
		n = st.total
	}
	lib.Xsqlite3_result_int64(tls, ctx, n)
}

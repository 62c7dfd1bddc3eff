package sqlite

import (
	"database/sql/driver"
	"fmt"
	"reflect"
	"unsafe"

	"modernc.org/libc"
	lib "modernc.org/sqlite/lib"
)

// This file is the only place that talks to SQLite's C API (modernc's
// transpiled C, which takes a *libc.TLS and raw pointers). User SQL needs
// it: statements are prepared one at a time from a multi-statement string
// (the tail pointer), a statement's parameter count, read-only flag and
// column names are read before it runs, the connection's change counters
// and last insert rowid are read and reset, and limits are set.
// database/sql/driver exposes none of that.
//
// The driver keeps the sqlite3* handle and the connection's *libc.TLS in
// unexported fields of its connection; rawConnOf reads them by reflection
// and fails (Open fails) if a modernc.org/sqlite upgrade renames them. All
// calls use the connection's own TLS from the object's goroutine, as the
// driver does.
//
// Memory passed to SQLite is C memory (libc.Xmalloc / sqlite3_malloc), never
// Go memory: with -race, checkptr rejects Go pointers that reach the
// transpiled C as integers.

// rawConn is the raw SQLite connection behind a driver connection.
type rawConn struct {
	tls *libc.TLS
	db  uintptr // sqlite3*
}

// rawConnOf returns the raw connection of a modernc.org/sqlite connection.
func rawConnOf(c driver.Conn) (rawConn, error) {
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return rawConn{}, fmt.Errorf("driver connection %T is not a modernc.org/sqlite connection", c)
	}
	s := v.Elem()
	db, tls := s.FieldByName("db"), s.FieldByName("tls")
	if !db.IsValid() || db.Kind() != reflect.Uintptr || !tls.IsValid() || tls.Type() != reflect.TypeFor[*libc.TLS]() {
		return rawConn{}, fmt.Errorf("driver connection %T has no db/tls fields: unsupported modernc.org/sqlite version", c)
	}
	h := rawConn{tls: (*libc.TLS)(tls.UnsafePointer()), db: uintptr(db.Uint())}
	if h.tls == nil || h.db == 0 {
		return rawConn{}, fmt.Errorf("driver connection %T is not open", c)
	}
	return h, nil
}

// cptr turns an address of C memory into a pointer. Reading it through a
// *uintptr keeps go vet's unsafeptr check quiet: the memory is not Go's.
func cptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// cfunc returns the C function pointer of a Go function declared at top
// level, in the representation the transpiled C calls through (as modernc
// does for its own callbacks).
func cfunc[T any](f T) uintptr { return *(*uintptr)(unsafe.Pointer(&struct{ f T }{f})) }

// cbytes returns n bytes of C memory at p as a Go slice (no copy).
func cbytes(p uintptr, n int) []byte {
	if p == 0 || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(cptr(p)), n)
}

func (h rawConn) errmsg() string { return libc.GoString(lib.Xsqlite3_errmsg(h.tls, h.db)) }

func (h rawConn) limit(id, v int32) int32 { return lib.Xsqlite3_limit(h.tls, h.db, id, v) }

func (h rawConn) lastInsertRowid() int64 { return lib.Xsqlite3_last_insert_rowid(h.tls, h.db) }

func (h rawConn) setLastInsertRowid(v int64) { lib.Xsqlite3_set_last_insert_rowid(h.tls, h.db, v) }

func (h rawConn) changes() int64 { return lib.Xsqlite3_changes64(h.tls, h.db) }

func (h rawConn) totalChanges() int64 { return lib.Xsqlite3_total_changes64(h.tls, h.db) }

// autocommit reports that no transaction is open.
func (h rawConn) autocommit() bool { return lib.Xsqlite3_get_autocommit(h.tls, h.db) != 0 }

// cstring copies s into C memory; the caller frees it with h.free.
func (h rawConn) cstring(s string) (uintptr, error) {
	p := libc.Xmalloc(h.tls, lib.Tsize_t(len(s)+1))
	if p == 0 {
		return 0, fmt.Errorf("sqlite: out of memory copying %d bytes of SQL", len(s))
	}
	b := cbytes(p, len(s)+1)
	copy(b, s)
	b[len(s)] = 0
	return p, nil
}

func (h rawConn) free(p uintptr) { libc.Xfree(h.tls, p) }

// cstmt is a prepared statement.
type cstmt struct {
	h rawConn
	p uintptr // sqlite3_stmt*; 0 for an empty statement
}

// prepare compiles the first statement of the NUL-terminated SQL at sql and
// returns it with the address just past it. An empty statement (only
// comments, white space or ";") gives a cstmt with p == 0.
func (h rawConn) prepare(sql uintptr) (cstmt, uintptr, int32) {
	out := libc.Xmalloc(h.tls, 2*lib.Tsize_t(unsafe.Sizeof(uintptr(0))))
	if out == 0 {
		return cstmt{}, sql, lib.SQLITE_NOMEM
	}
	defer h.free(out)
	pp := (*[2]uintptr)(cptr(out))
	pp[0], pp[1] = 0, 0
	rc := lib.Xsqlite3_prepare_v3(h.tls, h.db, sql, -1, 0, out, out+unsafe.Sizeof(uintptr(0)))
	if rc != lib.SQLITE_OK {
		return cstmt{}, sql, rc
	}
	return cstmt{h: h, p: pp[0]}, pp[1], rc
}

func (s cstmt) finalize() {
	if s.p != 0 {
		lib.Xsqlite3_finalize(s.h.tls, s.p)
	}
}

func (s cstmt) paramCount() int { return int(lib.Xsqlite3_bind_parameter_count(s.h.tls, s.p)) }

func (s cstmt) readonly() bool { return lib.Xsqlite3_stmt_readonly(s.h.tls, s.p) != 0 }

func (s cstmt) status(op int32) int64 {
	return int64(lib.Xsqlite3_stmt_status(s.h.tls, s.p, op, 0))
}

// columns returns the result column names.
func (s cstmt) columns() []string {
	n := int(lib.Xsqlite3_column_count(s.h.tls, s.p))
	cols := make([]string, n)
	for i := range cols {
		cols[i] = libc.GoString(lib.Xsqlite3_column_name(s.h.tls, s.p, int32(i)))
	}
	return cols
}

// bind binds one normalized argument (nil, int64, float64, string or
// []byte) to parameter i (1-based).
func (s cstmt) bind(i int, v any) int32 {
	tls, p, idx := s.h.tls, s.p, int32(i)
	switch x := v.(type) {
	case nil:
		return lib.Xsqlite3_bind_null(tls, p, idx)
	case int64:
		return lib.Xsqlite3_bind_int64(tls, p, idx, x)
	case float64:
		return lib.Xsqlite3_bind_double(tls, p, idx, x)
	case string:
		return s.bindBytes(idx, x, true)
	case []byte:
		if len(x) == 0 {
			return lib.Xsqlite3_bind_zeroblob(tls, p, idx, 0)
		}
		return s.bindBytes(idx, string(x), false)
	}
	return lib.SQLITE_MISMATCH
}

// bindBytes binds text or a non-empty blob through a C copy that SQLite
// copies again (SQLITE_TRANSIENT), so it can be freed at once.
func (s cstmt) bindBytes(idx int32, v string, text bool) int32 {
	c, err := s.h.cstring(v)
	if err != nil {
		return lib.SQLITE_NOMEM
	}
	defer s.h.free(c)
	if text {
		return lib.Xsqlite3_bind_text64(s.h.tls, s.p, idx, c, uint64(len(v)), lib.SQLITE_TRANSIENT, lib.SQLITE_UTF8)
	}
	return lib.Xsqlite3_bind_blob64(s.h.tls, s.p, idx, c, uint64(len(v)), lib.SQLITE_TRANSIENT)
}

// step runs the statement to its next row (SQLITE_ROW) or its end.
func (s cstmt) step() int32 { return lib.Xsqlite3_step(s.h.tls, s.p) }

// row reads the current row into a new slice of nil, int64, float64,
// string and []byte (an empty BLOB is a non-nil empty slice).
func (s cstmt) row(n int) []any {
	tls, p := s.h.tls, s.p
	out := make([]any, n)
	for i := range out {
		c := int32(i)
		switch lib.Xsqlite3_column_type(tls, p, c) {
		case lib.SQLITE_INTEGER:
			out[i] = lib.Xsqlite3_column_int64(tls, p, c)
		case lib.SQLITE_FLOAT:
			out[i] = lib.Xsqlite3_column_double(tls, p, c)
		case lib.SQLITE_TEXT:
			t := lib.Xsqlite3_column_text(tls, p, c)
			out[i] = string(cbytes(t, int(lib.Xsqlite3_column_bytes(tls, p, c))))
		case lib.SQLITE_BLOB:
			b := lib.Xsqlite3_column_blob(tls, p, c)
			out[i] = append([]byte{}, cbytes(b, int(lib.Xsqlite3_column_bytes(tls, p, c)))...)
		default:
			out[i] = nil
		}
	}
	return out
}

// codeNames names SQLite's primary result codes for error messages.
var codeNames = map[int32]string{
	lib.SQLITE_ERROR: "SQLITE_ERROR", lib.SQLITE_INTERNAL: "SQLITE_INTERNAL", lib.SQLITE_PERM: "SQLITE_PERM",
	lib.SQLITE_ABORT: "SQLITE_ABORT", lib.SQLITE_BUSY: "SQLITE_BUSY", lib.SQLITE_LOCKED: "SQLITE_LOCKED",
	lib.SQLITE_NOMEM: "SQLITE_NOMEM", lib.SQLITE_READONLY: "SQLITE_READONLY", lib.SQLITE_INTERRUPT: "SQLITE_INTERRUPT",
	lib.SQLITE_IOERR: "SQLITE_IOERR", lib.SQLITE_CORRUPT: "SQLITE_CORRUPT", lib.SQLITE_NOTFOUND: "SQLITE_NOTFOUND",
	lib.SQLITE_FULL: "SQLITE_FULL", lib.SQLITE_CANTOPEN: "SQLITE_CANTOPEN", lib.SQLITE_PROTOCOL: "SQLITE_PROTOCOL",
	lib.SQLITE_SCHEMA: "SQLITE_SCHEMA", lib.SQLITE_TOOBIG: "SQLITE_TOOBIG", lib.SQLITE_CONSTRAINT: "SQLITE_CONSTRAINT",
	lib.SQLITE_MISMATCH: "SQLITE_MISMATCH", lib.SQLITE_MISUSE: "SQLITE_MISUSE", lib.SQLITE_AUTH: "SQLITE_AUTH",
	lib.SQLITE_RANGE: "SQLITE_RANGE", lib.SQLITE_NOTADB: "SQLITE_NOTADB",
}

func codeName(rc int32) string {
	if n, ok := codeNames[rc&0xff]; ok {
		return n
	}
	return fmt.Sprintf("SQLITE error %d", rc)
}

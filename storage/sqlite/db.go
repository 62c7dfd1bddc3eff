package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
	lib "modernc.org/sqlite/lib"

	"github.com/opendo/opendo/storage"
)

// Options configure Open. The zero value is ready to use.
type Options struct {
	// CacheKiB is SQLite's page cache in KiB (default 256). modernc's real
	// memory cost is about twice that.
	CacheKiB int
}

const (
	defaultCacheKiB  = 256
	busyTimeoutMS    = 5000
	journalSizeLimit = 1 << 20 // bytes kept of the WAL file after a checkpoint
	schemaVersion    = 1
)

// Names of the rows of _cf_META.
const (
	metaSchema = "schema" // schemaVersion of the file
	metaSeq    = "seq"    // journal sequence the file is known to reflect
	metaSeqTx  = "seqtx"  // Seed of the last transaction of the entry at seq
	metaLastTx = "lasttx" // Seed of the last transaction committed to the file
	metaAlarm  = "alarm"  // the alarm, Unix ms; no row when none is set
)

// schema creates the reserved tables. Open runs it on a file that lacks
// them; the template (create.go) is a file it made.
const schema = `
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS _cf_KV (
	key   BLOB PRIMARY KEY CHECK (typeof(key) = 'blob'),
	value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _cf_META (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO _cf_META (name, value) VALUES ('schema', 1), ('seq', 0), ('seqtx', 0), ('lasttx', 0);
COMMIT;
`

// DB is one object's SQLite database file with its single connection.
// It is not safe for concurrent use: one goroutine owns it.
type DB struct {
	path     string
	conn     driver.Conn
	prep     driver.ConnPrepareContext
	prepared []*stmt // every statement, closed by Close
	st       statements
	list     [listVariants]*stmt // prepared on first use, see listStmt

	argv [3]driver.NamedValue // argument scratch space, see args1
	dest [2]driver.Value      // row scratch space
	buf  []byte               // scratch space for multi-key arguments

	seq    uint64 // journal sequence the file is known to reflect
	seqTx  uint64 // Seed of the last transaction at seq
	lastTx uint64 // Seed of the last transaction committed to the file
	closed bool

	// State of the open request transaction (Begin .. Commit/Rollback).
	inTx      bool
	tc        storage.TxContext
	inAlarm   bool
	firing    int64 // the alarm that was due when an alarm request began
	hasFiring bool
	depth     int                // nesting of Transaction calls
	log       []storage.Mutation // mutations recorded so far
	broken    error              // a SQLite failure that dooms the request

	handle *store

	// User SQL (sql.go): the connection's C API, the VFS whose clock is the
	// transaction's, the deterministic inputs of SQL functions and what the
	// authorizer saw.
	raw  rawConn
	vfs  *vfs
	sql  *sqlState
	auth authState
}

// statements are the runtime's own statements, prepared on first use.
type statements struct {
	begin, commit, rollback        *stmt
	savepoint, rollbackTo, release *stmt

	get, getMulti, put, del, delMulti, delAll *stmt

	metaGet, metaSet, metaDel *stmt
	size                      *stmt
}

// Open opens the database file at path, creating it (and its reserved
// tables) if needed, and reads the journal state it records (see Seq).
//
// Its error matches ErrCorrupt when, and only when, the file's content is
// damaged (see ErrCorrupt). Open never deletes a file, and writes to an
// existing one only to set it up when it lacks the reserved tables (an
// empty file). A new file it creates stays when a later step fails.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch {
	case opts.CacheKiB < 0:
		return nil, fmt.Errorf("sqlite: open %s: %w: CacheKiB %d", path, storage.ErrInvalidArgument, opts.CacheKiB)
	case opts.CacheKiB == 0:
		opts.CacheKiB = defaultCacheKiB
	}
	if err := create(path); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// The file is opened through a VFS of its own, whose clock is the
	// request's (see determinism.go).
	st := &sqlState{}
	v, err := newVFS(st)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	name, err := dsn(path, v.name)
	if err != nil {
		v.close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	conn, err := (&sqlite.Driver{}).Open(name)
	if err != nil {
		v.close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, markCorrupt(err))
	}
	db := &DB{path: path, conn: conn, vfs: v, sql: st}
	db.handle = &store{db: db}
	db.handle.sql = sqlAPI{db: db}
	if err := db.init(opts); err != nil {
		for _, s := range db.prepared {
			s.ds.Close()
		}
		if conn.Close() == nil {
			v.close()
		}
		return nil, fmt.Errorf("sqlite: open %s: %w", path, markCorrupt(err))
	}
	return db, nil
}

// initSQL prepares the connection for user SQL: the authorizer, the
// deterministic functions, the progress handler and Cloudflare's limits.
// It runs before any statement is prepared.
func (db *DB) initSQL() error {
	raw, err := rawConnOf(db.conn)
	if err != nil {
		return err
	}
	db.raw = raw
	a, ok := db.conn.(sqlite.AuthorizerRegisterer)
	if !ok {
		return fmt.Errorf("driver connection %T has no authorizer", db.conn)
	}
	if err := a.RegisterAuthorizer(db.auth.authorize); err != nil {
		return err
	}
	if err := raw.installFunctions(db.vfs.p); err != nil {
		return err
	}
	for _, l := range []struct{ id, v int32 }{
		{lib.SQLITE_LIMIT_VARIABLE_NUMBER, maxSQLParams},
		{lib.SQLITE_LIMIT_SQL_LENGTH, maxSQLLength},
		{lib.SQLITE_LIMIT_COLUMN, maxSQLColumns},
		{lib.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, maxLikePattern},
		{lib.SQLITE_LIMIT_LENGTH, maxValueLength},
		{lib.SQLITE_LIMIT_FUNCTION_ARG, maxFuncArgs},
	} {
		raw.limit(l.id, l.v)
		if got := raw.limit(l.id, -1); got != l.v {
			return fmt.Errorf("SQLite limit %d is %d, want %d", l.id, got, l.v)
		}
	}
	db.sql.maxLen = maxValueLength
	return nil
}

// dsn turns a file path into a SQLite URI for modernc, with the driver's
// own options: the VFS, and defensive mode (no writable_schema, no writes
// to raw pages or shadow tables).
func dsn(path, vfs string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	u := url.URL{Path: filepath.ToSlash(abs)}
	q := url.Values{"_time_format": {"sqlite"}, "vfs": {vfs}, "_defensive": {"1"}}
	return "file:" + u.EscapedPath() + "?" + q.Encode(), nil
}

func (db *DB) init(opts Options) error {
	prep, ok := db.conn.(driver.ConnPrepareContext)
	if !ok {
		return fmt.Errorf("driver connection %T cannot prepare with a context", db.conn)
	}
	db.prep = prep
	db.initStatements()
	if err := db.initSQL(); err != nil {
		return err
	}
	execer, ok := db.conn.(driver.ExecerContext)
	if !ok {
		return fmt.Errorf("driver connection %T cannot exec with a context", db.conn)
	}
	exec := func(q string) error {
		if _, err := execer.ExecContext(context.Background(), q, nil); err != nil {
			return fmt.Errorf("%s: %w", strings.TrimSpace(q), err)
		}
		return nil
	}
	if err := exec(fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeoutMS)); err != nil {
		return err
	}
	// The first read of the file. A file that does not open or read fails
	// here (see ErrCorrupt for what that error means).
	st, err := db.readState()
	if err != nil {
		return fmt.Errorf("read the file's state: %w", err)
	}
	if !st.ready() {
		// Not an object database yet: an empty file (Open writes new files
		// from the template, see create.go, but a crash can leave an empty
		// one), or one a different tool made. Set it up without fsyncs:
		// the file is a cache of the journal, and a file torn by a crash
		// fails to open (ErrCorrupt) and is rebuilt from the journal.
		for _, q := range []string{"PRAGMA synchronous = OFF", "PRAGMA journal_mode = WAL", schema} {
			if err := exec(q); err != nil {
				return err
			}
		}
		if st, err = db.readState(); err != nil {
			return fmt.Errorf("read the file's state: %w", err)
		}
		if !strings.EqualFold(st.journalMode, "wal") {
			return fmt.Errorf("journal_mode is %q, want wal", st.journalMode)
		}
		if !st.ready() {
			return errors.New("the reserved tables are missing after they were created")
		}
	}
	// Settings of the connection. synchronous=NORMAL: commits are never
	// fsync'd in WAL mode, only checkpoints.
	for _, q := range []string{
		"PRAGMA synchronous = NORMAL",
		fmt.Sprintf("PRAGMA cache_size = -%d", opts.CacheKiB),
		"PRAGMA mmap_size = 0",
		fmt.Sprintf("PRAGMA journal_size_limit = %d", journalSizeLimit),
		"PRAGMA foreign_keys = ON",
	} {
		if err := exec(q); err != nil {
			return err
		}
	}
	if st.schema != schemaVersion {
		return fmt.Errorf("%w: _cf_META records schema version %d, this build reads %d", ErrCorrupt, st.schema, schemaVersion)
	}
	db.seq, db.seqTx, db.lastTx = st.seq, st.seqTx, st.lastTx
	return nil
}

// fileState is what Open reads from a file.
type fileState struct {
	tables      bool   // _cf_KV and _cf_META exist
	journalMode string // "wal" once set up
	rows        uint8  // which of the rows below exist, a bit per row
	schema      int64
	seq         uint64
	seqTx       uint64
	lastTx      uint64
}

// ready reports a file that Open has set up before.
func (st *fileState) ready() bool {
	return st.tables && st.rows == 1<<4-1 && strings.EqualFold(st.journalMode, "wal")
}

// stateQuery reads, in one statement, the journal mode, the rows of
// _cf_META and the first row of _cf_KV: every page a file made from the
// template has, so that a template torn by a crash fails here (see
// create.go) rather than in a later request. The first column tells the
// parts apart.
const stateQuery = `SELECT 'mode', NULL, journal_mode FROM pragma_journal_mode
UNION ALL SELECT 'meta', name, value FROM _cf_META
UNION ALL SELECT 'kv', NULL, count(*) FROM (SELECT 1 FROM _cf_KV LIMIT 1)`

// readState reads the file's state. A file without the reserved tables
// gives a zero fileState, not an error.
func (db *DB) readState() (fileState, error) {
	var st fileState
	ds, err := db.prep.PrepareContext(context.Background(), stateQuery)
	if err != nil {
		var se *sqlite.Error
		if errors.As(err, &se) && se.Code() == lib.SQLITE_ERROR {
			// No such table: not set up yet. (A damaged schema gives
			// SQLITE_CORRUPT instead.)
			return st, nil
		}
		return st, err
	}
	defer ds.Close()
	q, ok := ds.(driver.StmtQueryContext)
	if !ok {
		return st, fmt.Errorf("driver statement %T lacks context methods", ds)
	}
	rows, err := q.QueryContext(context.Background(), nil)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	st.tables = true
	var dest [3]driver.Value
	for {
		switch err := rows.Next(dest[:]); err {
		case nil:
		case io.EOF:
			return st, nil
		default:
			return st, err
		}
		switch dest[0] {
		case "mode":
			st.journalMode, _ = dest[2].(string)
			continue
		case "kv":
			continue
		}
		// A row of _cf_META. Its name is its primary key, never NULL in a
		// sound file; its value is NOT NULL and an integer for every row
		// Open reads.
		name, ok := dest[1].(string)
		if !ok {
			return st, fmt.Errorf("%w: _cf_META holds a row named %v", ErrCorrupt, dest[1])
		}
		var p *uint64
		var bit uint8
		switch name {
		case metaSchema:
			bit = 1
		case metaSeq:
			p, bit = &st.seq, 2
		case metaSeqTx:
			p, bit = &st.seqTx, 4
		case metaLastTx:
			p, bit = &st.lastTx, 8
		default:
			continue // the alarm
		}
		v, ok := dest[2].(int64)
		switch {
		case !ok:
			return st, fmt.Errorf("%w: _cf_META row %q holds %T, want an integer", ErrCorrupt, name, dest[2])
		case p == nil:
			st.schema = v
		case v < 0 && name == metaSeq:
			return st, fmt.Errorf("%w: file records a negative journal sequence %d", ErrCorrupt, v)
		default:
			*p = uint64(v)
		}
		st.rows |= bit
	}
}

func (db *DB) journalMode() (string, error) {
	s, err := db.prepare("PRAGMA journal_mode")
	if err != nil {
		return "", err
	}
	rows, err := db.query(s, nil)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	dest := db.dest[:1]
	if _, err := next(s, rows, dest); err != nil {
		return "", err
	}
	mode, _ := dest[0].(string)
	dest[0] = nil
	return mode, nil
}

// initStatements sets up the runtime's statements; each is prepared on
// first use.
func (db *DB) initStatements() {
	texts := [...]struct {
		dst  **stmt
		text string
	}{
		{&db.st.begin, "BEGIN DEFERRED"},
		{&db.st.commit, "COMMIT"},
		{&db.st.rollback, "ROLLBACK"},
		{&db.st.savepoint, "SAVEPOINT tx"},
		{&db.st.rollbackTo, "ROLLBACK TO tx"},
		{&db.st.release, "RELEASE tx"},
		{&db.st.get, "SELECT value FROM _cf_KV WHERE key = ?"},
		// Multi-key calls pass their keys as one JSON array of hex strings.
		{&db.st.getMulti, "SELECT key, value FROM _cf_KV WHERE key IN (SELECT unhex(value) FROM json_each(?)) ORDER BY key"},
		{&db.st.put, "INSERT INTO _cf_KV (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"},
		{&db.st.del, "DELETE FROM _cf_KV WHERE key = ?"},
		{&db.st.delMulti, "DELETE FROM _cf_KV WHERE key IN (SELECT unhex(value) FROM json_each(?)) RETURNING key"},
		{&db.st.delAll, "DELETE FROM _cf_KV"},
		{&db.st.metaGet, "SELECT value FROM _cf_META WHERE name = ?"},
		{&db.st.metaSet, "INSERT INTO _cf_META (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"},
		{&db.st.metaDel, "DELETE FROM _cf_META WHERE name = ?"},
		{&db.st.size, "SELECT (p.page_count - f.freelist_count) * s.page_size FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s"},
	}
	all := make([]stmt, len(texts))
	for i, t := range texts {
		all[i].text = t.text
		*t.dst = &all[i]
	}
}

// Close rolls back an open request transaction and closes the file. Closing
// a closed DB does nothing.
func (db *DB) Close() error {
	if db.closed {
		return nil
	}
	var errs []error
	if db.inTx {
		errs = append(errs, db.Rollback(context.Background()))
	}
	for _, s := range db.prepared {
		errs = append(errs, s.ds.Close())
	}
	db.prepared = nil
	cerr := db.conn.Close()
	if cerr == nil {
		db.vfs.close() // after the connection: it uses the VFS until then
	}
	errs = append(errs, cerr)
	db.closed = true
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close %s: %w", db.path, err)
	}
	return nil
}

// Path returns the path the DB was opened with.
func (db *DB) Path() string { return db.path }

// Seq returns the journal sequence the file reflects, and dirty=true when
// the file may hold locally committed transactions beyond it. It is read at
// Open and kept current by Commit, MarkDurable and Apply.
func (db *DB) Seq() (seq uint64, dirty bool) { return db.seq, db.lastTx != db.seqTx }

// LastTx returns the Seed (storage.TxContext.Seed) of the last transaction
// committed to the file, 0 if none. When the file is dirty, the journal
// entry whose last transaction has this seed is the state the file holds,
// if that entry exists: the runtime looks for it before rebuilding.
func (db *DB) LastTx() uint64 { return db.lastTx }

// Begin starts a request transaction (BEGIN DEFERRED: a read-only request
// takes no write lock, and the object is its file's only writer, so the
// upgrade never waits). tc holds the transaction's "now" (tc.Time, which must be set: past alarms are clamped
// to it) and seed. With inAlarm, the request handles the alarm that is due:
// Alarm hides that alarm (as Cloudflare's getAlarm returns null inside
// alarm()) but shows one the handler sets.
func (db *DB) Begin(ctx context.Context, tc storage.TxContext, inAlarm bool) error {
	switch {
	case db.closed:
		return errClosed
	case db.inTx:
		return errInRequest
	case tc.Time.IsZero():
		return fmt.Errorf("%w: TxContext.Time is not set", storage.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := db.exec(db.st.begin, nil); err != nil {
		return err
	}
	db.inTx, db.tc, db.inAlarm = true, tc, inAlarm
	db.beginSQL(tc)
	if inAlarm {
		ms, ok, err := db.queryInt64(db.st.metaGet, db.args1(metaAlarm))
		if err != nil {
			db.Rollback(ctx)
			return err
		}
		db.firing, db.hasFiring = ms, ok
	}
	return nil
}

// Storage returns the handle given to handlers; it is the same value every
// time. Outside Begin .. Commit/Rollback its methods return
// storage.ErrInvalidState.
func (db *DB) Storage() storage.Storage { return db.handle }

// Commit commits the request transaction and returns its mutations in
// order; the caller owns the slice. When there are mutations, the same
// SQLite transaction marks the file dirty. Whatever Commit returns, the
// request transaction is over: on error it has been rolled back.
func (db *DB) Commit(ctx context.Context) ([]storage.Mutation, error) {
	if db.closed {
		return nil, errClosed
	}
	if !db.inTx {
		return nil, errNoRequest
	}
	err := ctx.Err()
	switch {
	case db.depth > 0:
		err = fmt.Errorf("%w: commit inside Transaction", storage.ErrInvalidState)
	case db.broken != nil:
		err = fmt.Errorf("sqlite: request failed earlier: %w", db.broken)
	}
	if err == nil && len(db.log) > 0 {
		// One row in the same transaction: the file now holds this
		// transaction, which may not be in the journal yet.
		_, err = db.exec(db.st.metaSet, db.args2(metaLastTx, int64(db.tc.Seed)))
	}
	if err == nil {
		_, err = db.exec(db.st.commit, nil)
	}
	if err != nil {
		return nil, errors.Join(err, db.Rollback(ctx))
	}
	log, seed := db.log, db.tc.Seed
	db.log = nil
	db.endTx()
	if len(log) > 0 {
		db.lastTx = seed
	}
	return log, nil
}

// Rollback abandons the request transaction. Without one it returns
// storage.ErrInvalidState.
func (db *DB) Rollback(ctx context.Context) error {
	if db.closed {
		return errClosed
	}
	if !db.inTx {
		return errNoRequest
	}
	_, err := db.exec(db.st.rollback, nil)
	clear(db.log)
	db.log = db.log[:0]
	db.endTx()
	return err
}

func (db *DB) endTx() {
	db.inTx, db.inAlarm, db.hasFiring, db.firing = false, false, false, 0
	db.tc = storage.TxContext{}
	db.depth = 0
	db.broken = nil
	db.sql.beginTxn(storage.TxContext{})
}

// MarkDurable records that the journal entry at sequence seq, whose last
// transaction has Seed seqTx, is durable and contained in the file. The
// file is clean again when that transaction is the last one committed to
// it. It costs a write transaction: the runtime calls it now and then (on
// eviction, at shutdown, every so many appends), not after every append;
// in between, LastTx lets activation find where the file stands.
func (db *DB) MarkDurable(ctx context.Context, seq, seqTx uint64) error {
	if err := db.checkSeq(ctx, seq); err != nil {
		return err
	}
	err := db.writeTx(func() error {
		if _, err := db.exec(db.st.metaSet, db.args2(metaSeq, int64(seq))); err != nil {
			return err
		}
		_, err := db.exec(db.st.metaSet, db.args2(metaSeqTx, int64(seqTx)))
		return err
	})
	if err != nil {
		return err
	}
	db.seq, db.seqTx = seq, seqTx
	return nil
}

// Apply replays journaled transactions in one SQLite transaction and
// records seq as applied, clean. It is used at activation (catch-up) and to
// rebuild a file, and must be called between requests. A dirty file cannot
// take a journal tail (its local commits may already be part of it):
// Apply returns storage.ErrInvalidState, and the file must be rebuilt.
func (db *DB) Apply(ctx context.Context, seq uint64, txns []storage.Txn) error {
	if err := db.checkSeq(ctx, seq); err != nil {
		return err
	}
	if db.lastTx != db.seqTx {
		return fmt.Errorf("%w: %s has local commits beyond journal sequence %d; rebuild it", storage.ErrInvalidState, db.path, db.seq)
	}
	last := db.lastTx
	if n := len(txns); n > 0 {
		last = txns[n-1].Context.Seed
	}
	err := db.writeTx(func() error {
		defer db.sql.beginTxn(storage.TxContext{})
		for i := range txns {
			t := &txns[i]
			db.beginSQL(t.Context)
			for j := range t.Mutations {
				if err := db.replay(j, &t.Mutations[j]); err != nil {
					return fmt.Errorf("sqlite: apply txn %d (request %q) mutation %d (%s): %w", i, t.RequestID, j, t.Mutations[j].Op, err)
				}
			}
		}
		if _, err := db.exec(db.st.metaSet, db.args2(metaSeq, int64(seq))); err != nil {
			return err
		}
		if _, err := db.exec(db.st.metaSet, db.args2(metaSeqTx, int64(last))); err != nil {
			return err
		}
		_, err := db.exec(db.st.metaSet, db.args2(metaLastTx, int64(last)))
		return err
	})
	if err != nil {
		return err
	}
	db.seq, db.seqTx, db.lastTx = seq, last, last
	return nil
}

// replay applies one journaled mutation, the index-th of its transaction,
// without recording it.
func (db *DB) replay(index int, m *storage.Mutation) error {
	switch m.Op {
	case storage.OpPut:
		return db.putRow(m.Key, m.Value)
	case storage.OpDelete:
		_, err := db.deleteRow(m.Key)
		return err
	case storage.OpDeleteAll:
		return db.deleteAllRows()
	case storage.OpSetAlarm:
		_, err := db.exec(db.st.metaSet, db.args2(metaAlarm, m.Alarm))
		return err
	case storage.OpDeleteAlarm:
		_, err := db.exec(db.st.metaDel, db.args1(metaAlarm))
		return err
	case storage.OpSQL:
		return db.replaySQL(index, m)
	case storage.OpRestore:
		// The journal reader resolves restores (it builds the target state);
		// Apply only ever sees the transactions around them.
		return fmt.Errorf("%w: a restore mutation cannot be applied to a file; rebuild the state it names", storage.ErrInvalidArgument)
	}
	return fmt.Errorf("%w: unknown mutation op %d", storage.ErrInvalidArgument, m.Op)
}

func (db *DB) checkSeq(ctx context.Context, seq uint64) error {
	switch {
	case db.closed:
		return errClosed
	case db.inTx:
		return errInRequest
	case seq > math.MaxInt64:
		return fmt.Errorf("%w: journal sequence %d is beyond 2^63-1", storage.ErrInvalidArgument, seq)
	case seq < db.seq:
		return fmt.Errorf("%w: journal sequence %d is before the file's %d", storage.ErrInvalidArgument, seq, db.seq)
	}
	return ctx.Err()
}

// writeTx runs f in its own write transaction (outside requests).
func (db *DB) writeTx(f func() error) error {
	if _, err := db.exec(db.st.begin, nil); err != nil {
		return err
	}
	err := f()
	if err == nil {
		_, err = db.exec(db.st.commit, nil)
	}
	if err != nil {
		if _, rerr := db.exec(db.st.rollback, nil); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// AlarmTime returns the alarm (Unix ms) for the runtime's scheduler.
// Between requests it is the committed alarm; inside a request it is the
// alarm as the request sees it (never hidden, unlike storage's Alarm).
func (db *DB) AlarmTime(ctx context.Context) (ms int64, ok bool, err error) {
	if db.closed {
		return 0, false, errClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	return db.queryInt64(db.st.metaGet, db.args1(metaAlarm))
}

package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/opendo/opendo/internal/rebuild"
	"github.com/opendo/opendo/journal"
	"github.com/opendo/opendo/storage/sqlite"
)

// Outcomes of verify, as printed.
const (
	verifyOK       = "OK"
	verifyDiverged = "DIVERGED"
	verifyNoFile   = "no file"
	verifySkipped  = "skipped"
	verifyError    = "ERROR"
)

// verifyResult is the outcome for one object.
type verifyResult struct {
	status string
	detail string
}

func runJournalVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("journal verify", stderr, "journal verify [flags] [NS [NAME]]")
	var f journalFlags
	f.register(fs, true)
	objectsDir := fs.String("objects", "", "`DIR` of the live object files, DIR/<ns>/<id>.db (default: DATA/objects, DATA from -data)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	sel, err := parseObjSelection(pos, f.id, "verify")
	if err != nil {
		return err
	}
	dir := *objectsDir
	if dir == "" {
		dir = filepath.Join(f.data, "objects")
	}
	c, err := f.connect(ctx, "opendo-journal-verify", stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	objs, err := c.listObjects(ctx, sel, false)
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		if sel.obj != nil {
			fmt.Fprintf(stdout, "%-8s  %s: no journal\n", verifyNoFile, sel.obj)
		} else {
			fmt.Fprintln(stderr, "no journaled objects")
		}
		return nil
	}
	tmp, err := os.MkdirTemp("", "opendo-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var (
		mu      sync.Mutex
		current string
		done    atomic.Int64
		entries atomic.Int64
	)
	prog := startJournalProgress(stderr, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("verifying %d/%d: %s (%d entries replayed)", done.Load()+1, len(objs), current, entries.Load())
	})
	defer prog.Stop()
	counts := map[string]int{}
	for i := range objs {
		o := &objs[i]
		label := o.NS + "/" + o.ID
		if sel.obj != nil && sel.obj.name != "" {
			label = sel.obj.String()
		}
		mu.Lock()
		current = label
		mu.Unlock()
		entries.Store(0)
		r := c.verifyObject(ctx, o, dir, tmp, &entries)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		counts[r.status]++
		done.Add(1)
		prog.Do(func() { fmt.Fprintf(stdout, "%-8s  %s  %s\n", r.status, label, r.detail) })
	}
	prog.Stop()
	fmt.Fprintf(stdout, "%s: %d OK, %d diverged, %d without a file, %d skipped, %d failed\n",
		journalCount(len(objs), "object", "objects"), counts[verifyOK], counts[verifyDiverged], counts[verifyNoFile], counts[verifySkipped], counts[verifyError])
	switch {
	case counts[verifyDiverged] > 0 && counts[verifyError] > 0:
		return fmt.Errorf("%s diverged from the journal, %d could not be verified", journalCount(counts[verifyDiverged], "object", "objects"), counts[verifyError])
	case counts[verifyDiverged] > 0:
		return fmt.Errorf("%s diverged from the journal", journalCount(counts[verifyDiverged], "object", "objects"))
	case counts[verifyError] > 0:
		return fmt.Errorf("%s could not be verified", journalCount(counts[verifyError], "object", "objects"))
	}
	return nil
}

// verifyObject compares o's live file in dir with a rebuild from its
// journal up to the sequence the file records. It works on a snapshot of
// the live file (an online backup into tmp): a running runtime may be
// writing to it, and the snapshot's sequence and content are consistent
// with each other, which two reads of the live file would not be.
func (c *journalConn) verifyObject(ctx context.Context, o *objInfo, dir, tmp string, entries *atomic.Int64) verifyResult {
	fail := func(err error) verifyResult { return verifyResult{status: verifyError, detail: err.Error()} }
	live := filepath.Join(dir, o.NS, o.ID+".db")
	if _, err := os.Stat(live); errors.Is(err, os.ErrNotExist) {
		return verifyResult{status: verifyNoFile, detail: fmt.Sprintf("(no %s; %s in the journal)", live, journalCount(o.Entries, "entry", "entries"))}
	} else if err != nil {
		return fail(err)
	}
	snap, rebuilt := filepath.Join(tmp, "live.db"), filepath.Join(tmp, "rebuilt.db")
	defer removeSQLiteFiles(snap)
	defer removeSQLiteFiles(rebuilt)
	if err := snapshotSQLite(ctx, live, snap); err != nil {
		return fail(err)
	}
	ldb, err := sqlite.Open(ctx, snap, sqlite.Options{})
	if err != nil {
		return fail(fmt.Errorf("%s: %w", live, err))
	}
	seq, dirty := ldb.Seq()
	if dirty {
		// The file records its sequence now and then; its last transaction
		// tells which entry it is at, as on activation.
		at, found, err := findLastTx(ctx, c.jr, o.Subject, seq, ldb.LastTx())
		if err != nil {
			ldb.Close()
			return fail(err)
		}
		if !found {
			ldb.Close()
			return verifyResult{status: verifySkipped, detail: fmt.Sprintf("live file holds commits beyond seq %d that are not journaled (a write in flight, or a crash: the runtime rebuilds it on activation)", seq)}
		}
		seq = at
	}
	liveHash, err := ldb.ContentHash(ctx)
	if cerr := ldb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(fmt.Errorf("%s: %w", live, err))
	}
	last, err := c.jr.LastSeq(ctx, o.Subject)
	if err != nil {
		return fail(err)
	}
	if seq > last {
		return verifyResult{status: verifyDiverged, detail: fmt.Sprintf("live file is at seq %d, beyond the journal's last entry (seq %d)", seq, last)}
	}
	var (
		rdb *sqlite.DB
		m   materialized
	)
	if seq > 0 {
		rdb, m, err = c.materialize(ctx, o.Subject, seq, rebuilt, func(uint64) { entries.Add(1) })
		var perr *rebuild.PurgedError
		if errors.As(err, &perr) {
			return verifyResult{status: verifySkipped, detail: fmt.Sprintf("live file is at seq %d: %v (the runtime restores a snapshot on activation)", seq, err)}
		}
		if err != nil {
			return fail(err)
		}
		if m.Seq != seq {
			rdb.Close()
			return verifyResult{status: verifyDiverged, detail: fmt.Sprintf("live file is at seq %d, which is not an entry of this object's journal (the entry before it is seq %d)", seq, m.Seq)}
		}
	} else if rdb, err = sqlite.Open(ctx, rebuilt, sqlite.Options{}); err != nil {
		return fail(err)
	}
	var rebuiltHash string
	if err == nil {
		rebuiltHash, err = rdb.ContentHash(ctx)
	}
	if cerr := rdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if liveHash == rebuiltHash {
		detail := fmt.Sprintf("seq %d, %s", seq, m.describe())
		if len(m.Skips) > 0 {
			detail += fmt.Sprintf(" (%s could not be used, the newest: %v)", journalCount(len(m.Skips), "snapshot", "snapshots"), m.Skips[0])
		}
		if last > seq {
			detail += fmt.Sprintf(" (the journal goes on to seq %d: applied on activation)", last)
		}
		return verifyResult{status: verifyOK, detail: detail}
	}
	detail := fmt.Sprintf("seq %d: the live file differs from the journal's state", seq)
	diffs, err := diffSQLiteFiles(ctx, snap, rebuilt)
	switch {
	case err != nil:
		detail += fmt.Sprintf(" (comparing them failed: %v)", err)
	case len(diffs) == 0:
		detail += " (same KV pairs, alarm, schema and row counts: compare the files with sqlite3)"
	default:
		for _, d := range diffs {
			detail += "\n          " + d
		}
	}
	return verifyResult{status: verifyDiverged, detail: detail}
}

// snapshotSQLite copies a consistent snapshot of the SQLite file src,
// WAL included, into the new file dst with SQLite's online backup, which
// copies pages as they are (VACUUM INTO could renumber rowids). src is
// opened read-only.
func snapshotSQLite(ctx context.Context, src, dst string) error {
	db, err := sql.Open("sqlite", sqliteFileDSN(src, "mode=ro"))
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", src, err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		b, ok := dc.(interface {
			NewBackup(dstURI string) (*msqlite.Backup, error)
		})
		if !ok {
			return fmt.Errorf("driver connection %T cannot back up", dc)
		}
		bk, err := b.NewBackup(sqliteFileDSN(dst, ""))
		if err != nil {
			return err
		}
		if _, err := bk.Step(-1); err != nil {
			return errors.Join(err, bk.Finish())
		}
		return bk.Finish()
	})
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", src, err)
	}
	return nil
}

// maxDiffs is how many differences verify shows per object.
const maxDiffs = 5

// diffSQLiteFiles lists differences between a live file and its rebuild:
// KV pairs, the alarm, the user's schema and the row counts of its tables.
func diffSQLiteFiles(ctx context.Context, livePath, rebuiltPath string) ([]string, error) {
	live, err := sql.Open("sqlite", sqliteFileDSN(livePath, "mode=ro"))
	if err != nil {
		return nil, err
	}
	defer live.Close()
	rebuilt, err := sql.Open("sqlite", sqliteFileDSN(rebuiltPath, "mode=ro"))
	if err != nil {
		return nil, err
	}
	defer rebuilt.Close()
	p := &entryPrinter{}
	var diffs []string
	add := func(format string, args ...any) bool {
		diffs = append(diffs, fmt.Sprintf(format, args...))
		return len(diffs) < maxDiffs
	}

	lkv, err := readKV(ctx, live)
	if err != nil {
		return nil, err
	}
	rkv, err := readKV(ctx, rebuilt)
	if err != nil {
		return nil, err
	}
	i, j := 0, 0
	for (i < len(lkv) || j < len(rkv)) && len(diffs) < maxDiffs {
		switch {
		case j >= len(rkv) || (i < len(lkv) && bytes.Compare(lkv[i].k, rkv[j].k) < 0):
			add("key %s = %s only in the live file", p.text(string(lkv[i].k)), p.value(lkv[i].v))
			i++
		case i >= len(lkv) || bytes.Compare(lkv[i].k, rkv[j].k) > 0:
			add("key %s = %s missing from the live file", p.text(string(rkv[j].k)), p.value(rkv[j].v))
			j++
		default:
			if !bytes.Equal(lkv[i].v, rkv[j].v) {
				add("key %s: live file %s, journal %s", p.text(string(lkv[i].k)), p.value(lkv[i].v), p.value(rkv[j].v))
			}
			i++
			j++
		}
	}
	la, err := readAlarm(ctx, live)
	if err != nil {
		return nil, err
	}
	ra, err := readAlarm(ctx, rebuilt)
	if err != nil {
		return nil, err
	}
	if la != ra && len(diffs) < maxDiffs {
		add("alarm: live file %s, journal %s", la, ra)
	}
	ls, err := readSchema(ctx, live)
	if err != nil {
		return nil, err
	}
	rs, err := readSchema(ctx, rebuilt)
	if err != nil {
		return nil, err
	}
	for name, def := range ls {
		if len(diffs) >= maxDiffs {
			break
		}
		switch rdef, ok := rs[name]; {
		case !ok:
			add("%s only in the live file", name)
		case rdef != def:
			add("%s defined differently", name)
		default:
			if def[0] != "table" {
				continue
			}
			ln, err := countRows(ctx, live, name)
			if err != nil {
				return nil, err
			}
			rn, err := countRows(ctx, rebuilt, name)
			if err != nil {
				return nil, err
			}
			if ln != rn {
				add("table %s: %d rows in the live file, %d from the journal", strconv.Quote(name), ln, rn)
			}
		}
	}
	for name := range rs {
		if _, ok := ls[name]; !ok && len(diffs) < maxDiffs {
			add("%s missing from the live file", name)
		}
	}
	return diffs, nil
}

type kvRow struct{ k, v []byte }

func readKV(ctx context.Context, db *sql.DB) ([]kvRow, error) {
	rows, err := db.QueryContext(ctx, "SELECT key, value FROM _cf_KV ORDER BY key")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var kv []kvRow
	for rows.Next() {
		var r kvRow
		if err := rows.Scan(&r.k, &r.v); err != nil {
			return nil, err
		}
		kv = append(kv, r)
	}
	return kv, rows.Err()
}

func readAlarm(ctx context.Context, db *sql.DB) (string, error) {
	var ms int64
	err := db.QueryRowContext(ctx, "SELECT value FROM _cf_META WHERE name = 'alarm'").Scan(&ms)
	if errors.Is(err, sql.ErrNoRows) {
		return "none", nil
	}
	if err != nil {
		return "", err
	}
	return fmtEntryTime(time.UnixMilli(ms)), nil
}

// readSchema returns the user's schema objects: name -> [type, sql].
func readSchema(ctx context.Context, db *sql.DB) (map[string][2]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT type, name, coalesce(sql, '') FROM sqlite_schema
		WHERE name NOT LIKE '\_cf\_%' ESCAPE '\' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string][2]string{}
	for rows.Next() {
		var typ, name, def string
		if err := rows.Scan(&typ, &name, &def); err != nil {
			return nil, err
		}
		m[name] = [2]string{typ, def}
	}
	return m, rows.Err()
}

func countRows(ctx context.Context, db *sql.DB, table string) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+escapeIdent(table)+`"`).Scan(&n)
	return n, err
}

func escapeIdent(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte(`"`), []byte(`""`)))
}

// findLastTx returns the sequence of the entry after seq on subject whose
// last transaction has Seed tx.
func findLastTx(ctx context.Context, jr *journal.Journal, subject string, seq, tx uint64) (uint64, bool, error) {
	var at uint64
	err := jr.Read(ctx, subject, seq, 0, func(s uint64, e *journal.Entry) error {
		if n := len(e.Txns); n > 0 && e.Txns[n-1].Context.Seed == tx {
			at = s
		}
		return nil
	})
	return at, at != 0, err
}

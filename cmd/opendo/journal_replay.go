package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", for the kv view
)

func runJournalReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("journal replay", stderr, "journal replay [flags] NS (NAME | -id ID) -out FILE.db")
	var f journalFlags
	f.register(fs, true)
	to, at := journalPointFlags(fs)
	out := fs.String("out", "", "SQLite `FILE` to write (required)")
	force := fs.Bool("force", false, "overwrite -out if it exists")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return usageError{"replay needs NS NAME or NS -id ID"}
	}
	if *out == "" {
		return usageError{"replay needs -out FILE.db"}
	}
	ref, err := objRefArgs(pos, f.id)
	if err != nil {
		return err
	}
	pt, err := parseJournalPoint(to, *at)
	if err != nil {
		return err
	}
	if !*force {
		if _, err := os.Stat(*out); err == nil {
			return fmt.Errorf("%s exists: pass -force to overwrite it", *out)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	c, err := f.connect(ctx, "opendo-journal-replay", stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	subject, _, err := c.readableSubject(ctx, ref)
	if err != nil {
		return err
	}
	upto, err := pt.resolve(ctx, c, subject)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*.tmp")
	if err != nil {
		return err
	}
	tmp.Close()
	defer removeSQLiteFiles(tmp.Name())
	var applied atomic.Uint64
	prog := startJournalProgress(stderr, func() string {
		return "replaying " + ref.String() + ": " + strconv.FormatUint(applied.Load(), 10) + " entries"
	})
	db, m, err := c.materialize(ctx, subject, upto, tmp.Name(), func(uint64) { applied.Add(1) })
	prog.Stop()
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	if m.Snapshot == nil && m.Entries == 0 && m.Restores == 0 {
		err = fmt.Errorf("%s has no entries up to seq %d", ref, upto)
	}
	var alarm int64
	var hasAlarm bool
	if err == nil {
		alarm, hasAlarm, err = db.AlarmTime(ctx)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	view, err := finishReplayFile(ctx, tmp.Name())
	if err != nil {
		return err
	}
	if *force {
		for _, suffix := range []string{"-wal", "-shm", "-journal"} {
			if err := os.Remove(*out + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	for _, err := range m.Skips {
		fmt.Fprintf(stderr, "opendo: warning: skipped a snapshot: %v\n", err)
	}
	switch {
	case m.Entries > 0:
		fmt.Fprintf(stdout, "replayed %s %s into %s: %s up to seq %d, written %s\n",
			ref, pt, *out, m.describe(), m.Seq, fmtEntryTime(m.LastTime))
	case m.Snapshot != nil:
		fmt.Fprintf(stdout, "replayed %s %s into %s: the snapshot at seq %d (stored %s), no entries after it\n",
			ref, pt, *out, m.Seq, fmtEntryTime(m.Snapshot.Time))
	default: // the state a restore entry names, the history before it purged
		fmt.Fprintf(stdout, "replayed %s %s into %s: %s, as of seq %d\n", ref, pt, *out, m.describe(), m.Seq)
	}
	if hasAlarm {
		fmt.Fprintf(stdout, "alarm set for %s\n", fmtEntryTime(time.UnixMilli(alarm)))
	}
	fmt.Fprintf(stdout, "KV pairs are in the view %s: sqlite3 %s 'select * from %s'\n", view, *out, view)
	return nil
}

// finishReplayFile adds a view of the KV pairs as text to a replayed file
// and turns WAL off so that the file stands alone. The view is named kv
// unless the object's own SQL has that name; it returns the name.
func finishReplayFile(ctx context.Context, path string) (string, error) {
	db, err := sql.Open("sqlite", sqliteFileDSN(path, ""))
	if err != nil {
		return "", err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	view := ""
	for _, name := range []string{"kv", "opendo_kv", "opendo_kv_view"} {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE lower(name) = ?", name).Scan(&n); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		if n == 0 {
			view = name
			break
		}
	}
	if view == "" {
		return "", fmt.Errorf("%s: no free name for the kv view", path)
	}
	for _, q := range []string{
		"CREATE VIEW " + view + " (key, value) AS SELECT CAST(key AS TEXT), CAST(value AS TEXT) FROM _cf_KV",
		"PRAGMA journal_mode = DELETE",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return "", fmt.Errorf("%s: %s: %w", path, q, err)
		}
	}
	return view, db.Close()
}

// sqliteFileDSN is a modernc SQLite URI for path, with query (e.g. "mode=ro").
func sqliteFileDSN(path, query string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	u := url.URL{Path: filepath.ToSlash(abs)}
	dsn := "file:" + u.EscapedPath() + "?_pragma=busy_timeout(5000)"
	if query != "" {
		dsn += "&" + query
	}
	return dsn
}

// removeSQLiteFiles removes a SQLite file and its WAL files, if they exist.
func removeSQLiteFiles(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		_ = os.Remove(path + suffix)
	}
}

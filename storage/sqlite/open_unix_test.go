//go:build unix

package sqlite

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"modernc.org/sqlite"
	lib "modernc.org/sqlite/lib"
)

// TestOpenTooManyOpenFiles runs Open while the process has no file
// descriptor left (EMFILE), or only one or two (enough for the database
// file but not its WAL or shared memory). Open fails, its error does not
// match ErrCorrupt, and the files stay as they were; once descriptors are
// free again the file opens with its state.
//
// It lowers RLIMIT_NOFILE and fills the table with /dev/null, so it must
// not run in parallel with other tests.
func TestOpenTooManyOpenFiles(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.db")
	db := openPath(t, existing)
	if err := begin(t, db).Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	commit(t, db)
	if err := db.MarkDurable(t.Context(), 3, db.LastTx()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(existing)
	if err != nil {
		t.Fatal(err)
	}

	for free := range 3 {
		newPath := filepath.Join(dir, fmt.Sprintf("new%d.db", free))
		errExisting, errNew := openWithFreeFDs(t, free, existing, newPath)
		for _, o := range []struct {
			what string
			err  error
		}{{"existing file", errExisting}, {"new file", errNew}} {
			t.Logf("%d free descriptors, %s: %v", free, o.what, o.err)
			switch {
			case o.err == nil:
				t.Errorf("%d free descriptors, %s: Open succeeded", free, o.what)
			case errors.Is(o.err, ErrCorrupt):
				t.Errorf("%d free descriptors, %s: Open = %v, must not match ErrCorrupt", free, o.what, o.err)
			case !isTooManyFiles(o.err):
				t.Errorf("%d free descriptors, %s: Open = %v, want EMFILE or SQLITE_CANTOPEN", free, o.what, o.err)
			}
		}
		if free == 0 {
			if _, err := os.Lstat(newPath); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("without descriptors, Open left a file at the new path (%v)", err)
			}
		}
		if after, err := os.ReadFile(existing); err != nil || !bytes.Equal(before, after) {
			t.Errorf("%d free descriptors: the existing file changed (%v)", free, err)
		}
	}

	db = openPath(t, existing)
	if seq, dirty := db.Seq(); seq != 3 || dirty {
		t.Errorf("Seq = %d, %v; want 3, false", seq, dirty)
	}
	if got, want := dump(t, db), "\"k\"=\"v\"\nalarm=0,false\n"; got != want {
		t.Errorf("file holds %q, want %q", got, want)
	}
}

// openWithFreeFDs opens both paths (and closes what opens) while only free
// file descriptors are available, and returns Open's errors.
func openWithFreeFDs(t *testing.T, free int, existing, newPath string) (errExisting, errNew error) {
	t.Helper()
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	low := limit
	low.Cur = min(limit.Cur, 1024) // fewer descriptors to fill
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var fill []*os.File
	defer func() {
		for _, f := range fill {
			f.Close()
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
			t.Fatal(err)
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fill = append(fill, f)
	}
	if len(fill) < free {
		t.Fatalf("only %d descriptors were free", len(fill))
	}
	for _, f := range fill[len(fill)-free:] {
		f.Close()
	}
	fill = fill[:len(fill)-free]

	open := func(path string) error {
		db, err := Open(t.Context(), path, Options{})
		if err == nil {
			db.Close()
		}
		return err
	}
	return open(existing), open(newPath)
}

// isTooManyFiles reports the errors of opening files without descriptors:
// EMFILE from the operating system, SQLITE_CANTOPEN from SQLite.
func isTooManyFiles(err error) bool {
	var se *sqlite.Error
	return errors.Is(err, syscall.EMFILE) || errors.As(err, &se) && se.Code()&0xff == lib.SQLITE_CANTOPEN
}

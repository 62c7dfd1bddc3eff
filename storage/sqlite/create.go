package sqlite

import (
	_ "embed"
	"errors"
	"io/fs"
	"os"
)

// templateDB is an empty object database: the file that Open's setup (the
// reserved tables and their rows, WAL mode; see init) makes of an empty
// file, as it is after Close. Open writes it to create a new file, which
// costs one file creation and one write instead of SQLite's setup (a
// rollback journal, WAL frames and, at Close, a checkpoint with three
// fsyncs). TestTemplate checks that it is, byte for byte, what the setup
// makes with this build's SQLite; `go test ./storage/sqlite -run
// TestTemplate -update` rewrites it.
//
//go:embed template.db
var templateDB string

// create writes templateDB to a new file at path; it does nothing when a
// file (or anything else) exists there. It never touches an existing file.
//
// The file is written in place, without fsync: it is a cache of the
// journal, holding no data yet. A crash can leave it empty (Open then sets
// it up like any empty file) or torn (Open reads every page of the
// template and fails with ErrCorrupt, and the runtime rebuilds it). A
// temporary file renamed into place would not do better without an fsync
// before the rename, which is what this avoids, and could be left behind
// by a crash; O_EXCL also guarantees that no file appearing meanwhile is
// overwritten.
func create(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Side files left by an earlier file at this path would be read as this
	// one's: SQLite would replay a stale WAL or rollback journal into the
	// new file. (Next to an empty database file SQLite discards them itself,
	// so a crash before this point is harmless.)
	for _, suffix := range [...]string{"-wal", "-shm", "-journal"} {
		if err = os.Remove(path + suffix); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		_, err = f.WriteString(templateDB)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Join(err, os.Remove(path))
	}
	return nil
}

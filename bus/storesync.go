package bus

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// storeSyncer fsyncs the message blocks of every stream of a JetStream
// store that were written since the previous sync. Message blocks are what
// the server recovers from; its index files are rebuilt from them.
type storeSyncer struct {
	dir string

	mu    sync.Mutex // one sync at a time
	files map[string]*os.File
	dirs  map[string]*dirListing // the store's directories, as last read
	last  time.Time              // start of the previous sync
}

// mtimeSlack covers coarse file-system timestamps: a change may be stamped
// up to a clock tick (4–10 ms) before it happened.
const mtimeSlack = 10 * time.Millisecond

// dirListing is a directory's entries as read at a time.
type dirListing struct {
	names []string
	mtime time.Time // the directory's mtime before the read
	read  time.Time // when the read started
}

func newStoreSyncer(storeDir string) *storeSyncer {
	return &storeSyncer{dir: filepath.Join(storeDir, "jetstream"), files: map[string]*os.File{}, dirs: map[string]*dirListing{}}
}

// list returns the names of dir's entries. It reads the directory again
// only if it may have changed since the last read: its mtime moved, or the
// mtime seen then was too close to the read for a later change to be told
// apart. Reading every directory of the store at each sync (a glob) cost
// more than the fsyncs.
func (s *storeSyncer) list(dir string) ([]string, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		delete(s.dirs, dir)
		return nil, err
	}
	if l := s.dirs[dir]; l != nil && fi.ModTime().Equal(l.mtime) && l.mtime.Before(l.read.Add(-mtimeSlack)) {
		return l.names, nil
	}
	read := time.Now()
	entries, err := os.ReadDir(dir)
	if err != nil {
		delete(s.dirs, dir)
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	s.dirs[dir] = &dirListing{names: names, mtime: fi.ModTime(), read: read}
	return names, nil
}

// blocks returns the paths of the store's message blocks:
// <dir>/<account>/streams/<stream>/msgs/*.blk.
func (s *storeSyncer) blocks() []string {
	var blocks []string
	accounts, _ := s.list(s.dir)
	for _, a := range accounts {
		sdir := filepath.Join(s.dir, a, "streams")
		streams, _ := s.list(sdir) // not an account directory: no streams
		for _, st := range streams {
			mdir := filepath.Join(sdir, st, "msgs")
			names, _ := s.list(mdir)
			for _, n := range names {
				if filepath.Ext(n) == ".blk" {
					blocks = append(blocks, filepath.Join(mdir, n))
				}
			}
		}
	}
	return blocks
}

func (s *storeSyncer) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	// Blocks written since the previous sync started have a newer mtime
	// (a write racing with it is caught by this one). The margin covers
	// coarse file-system timestamps.
	since := s.last.Add(-mtimeSlack)
	blocks := s.blocks()
	seen := make(map[string]bool, len(blocks))
	for _, path := range blocks {
		seen[path] = true
		fi, err := os.Stat(path)
		if err != nil {
			continue // removed (compacted, purged) meanwhile
		}
		if fi.ModTime().Before(since) {
			continue
		}
		f := s.files[path]
		if f == nil {
			if f, err = os.OpenFile(path, os.O_RDONLY, 0); err != nil {
				continue
			}
			s.files[path] = f
		}
		if err := fsync(f); err != nil {
			return fmt.Errorf("fsync %s: %w", path, err)
		}
	}
	for path, f := range s.files {
		if !seen[path] {
			f.Close()
			delete(s.files, path)
		}
	}
	s.last = start
	return nil
}

func (s *storeSyncer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for path, f := range s.files {
		f.Close()
		delete(s.files, path)
	}
}

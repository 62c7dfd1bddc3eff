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
	last  time.Time // start of the previous sync
}

func newStoreSyncer(storeDir string) *storeSyncer {
	return &storeSyncer{dir: filepath.Join(storeDir, "jetstream"), files: map[string]*os.File{}}
}

func (s *storeSyncer) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	// Blocks written since the previous sync started have a newer mtime
	// (a write racing with it is caught by this one). The margin covers
	// coarse file-system timestamps.
	since := s.last.Add(-10 * time.Millisecond)
	blocks, err := filepath.Glob(filepath.Join(s.dir, "*", "streams", "*", "msgs", "*.blk"))
	if err != nil {
		return err
	}
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

//go:build !linux

package bus

import "os"

// fsync flushes one file to stable storage.
func fsync(f *os.File) error { return f.Sync() }

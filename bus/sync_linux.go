//go:build linux

package bus

import (
	"os"

	"golang.org/x/sys/unix"
)

// fsync flushes one file's data to stable storage (fdatasync(2)).
func fsync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

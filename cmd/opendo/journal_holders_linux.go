package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// storeHolder is another process that has files of a store open.
type storeHolder struct {
	pid  int
	addr string // its -addr flag, "" if none was given
}

// storeHolders lists the other processes that hold a file or directory
// under dir open, reading /proc (processes of other users are invisible).
// A running opendo dev holds its JetStream store open this way.
func storeHolders(dir string) []storeHolder {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var holders []storeHolder
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err == nil && (target == abs || strings.HasPrefix(target, abs+"/")) {
				holders = append(holders, storeHolder{pid: pid, addr: addrFlag(pid)})
				break
			}
		}
	}
	return holders
}

// addrFlag returns the value of the -addr flag process pid was started
// with, if any.
func addrFlag(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	for i, a := range args {
		s := strings.TrimLeft(string(a), "-")
		if len(s) == len(a) || len(a)-len(s) > 2 {
			continue // not a flag
		}
		if v, ok := strings.CutPrefix(s, "addr="); ok {
			return v
		}
		if s == "addr" && i+1 < len(args) {
			return string(args[i+1])
		}
	}
	return ""
}

//go:build !linux

package main

// storeHolder is another process that has files of a store open.
type storeHolder struct {
	pid  int
	addr string
}

// storeHolders cannot tell without /proc: the lock file and the probe of
// opendo dev's default address still apply.
func storeHolders(dir string) []storeHolder { return nil }

package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// journalProgressInterval is how often the progress line is redrawn.
const journalProgressInterval = 200 * time.Millisecond

// progress redraws one status line on a terminal until Stop. On anything
// but a terminal it does nothing; a nil *journalProgress is valid and does
// nothing either.
type journalProgress struct {
	w     io.Writer
	line  func() string // called from the progress goroutine: must be safe for that
	mu    sync.Mutex
	drawn bool
	stop  chan struct{}
	done  chan struct{}
}

// startJournalProgress shows line() on w every journalProgressInterval if w is a
// terminal, and returns nil otherwise.
func startJournalProgress(w io.Writer, line func() string) *journalProgress {
	if !isTerminalWriter(w) {
		return nil
	}
	p := &journalProgress{w: w, line: line, stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *journalProgress) loop() {
	defer close(p.done)
	t := time.NewTicker(journalProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.mu.Lock()
			fmt.Fprintf(p.w, "\r\x1b[K%s", p.line())
			p.drawn = true
			p.mu.Unlock()
		case <-p.stop:
			p.mu.Lock()
			p.clearLocked()
			p.mu.Unlock()
			return
		}
	}
}

func (p *journalProgress) clearLocked() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// Do runs f (which prints) with the progress line out of the way; it is
// redrawn at the next tick.
func (p *journalProgress) Do(f func()) {
	if p == nil {
		f()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	f()
}

// Stop erases the line and stops redrawing it.
func (p *journalProgress) Stop() {
	if p == nil {
		return
	}
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// isTerminalWriter reports whether w is a terminal (a character device).
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

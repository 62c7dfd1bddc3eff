package actor

import "sync"

// syncer runs Config.Sync for many objects at once: every object whose
// append was acknowledged asks for a sync; one call of Sync that started
// after the request serves every request made before it started (group
// commit of fsyncs).
type syncer struct {
	fn   func() error
	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	pending map[*object]uint64 // the highest acknowledged group per object
}

func newSyncer(fn func() error) *syncer {
	s := &syncer{fn: fn, kick: make(chan struct{}, 1), stop: make(chan struct{}), pending: map[*object]uint64{}}
	s.wg.Add(1)
	go s.loop()
	return s
}

// request asks for a sync covering group g of o; o is told through
// o.synced when it is done.
func (s *syncer) request(o *object, g uint64) {
	s.mu.Lock()
	if g > s.pending[o] {
		s.pending[o] = g
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *syncer) loop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.kick:
		case <-s.stop:
			return
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = make(map[*object]uint64, len(batch))
		s.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		err := s.fn()
		for o, g := range batch {
			o.synced(g, err)
		}
	}
}

// close stops the loop; requests still pending are never answered (their
// objects have stopped).
func (s *syncer) close() {
	close(s.stop)
	s.wg.Wait()
}

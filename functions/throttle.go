package functions

import (
	"sync"
	"time"
)

// throttle runs updates for a key in the background, at most one at a time
// and one per interval, dropping the others: progress reports must never
// block the data stream they come from.
type throttle struct {
	every time.Duration
	mu    sync.Mutex
	keys  map[string]*throttleKey
}

type throttleKey struct {
	last         time.Time
	busy, closed bool
	running      sync.WaitGroup
}

func newThrottle(every time.Duration) *throttle {
	return &throttle{every: every, keys: map[string]*throttleKey{}}
}

func (t *throttle) key(k string) *throttleKey {
	if t.keys[k] == nil {
		t.keys[k] = &throttleKey{}
	}
	return t.keys[k]
}

// try starts update in a goroutine unless key's previous update is still
// running or started less than the interval ago, or key is closed.
func (t *throttle) try(k string, update func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.key(k)
	if s.busy || s.closed || time.Since(s.last) < t.every {
		return
	}
	s.busy, s.last = true, time.Now()
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		update()
		t.mu.Lock()
		s.busy = false
		t.mu.Unlock()
	}()
}

// close drops key's later updates and waits for its running one, so that
// it cannot land after the final result.
func (t *throttle) close(k string) {
	t.mu.Lock()
	s := t.key(k)
	s.closed = true
	t.mu.Unlock()
	s.running.Wait()
}

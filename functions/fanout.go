package functions

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// fanout copies one stream into several pipes, one per repository, with
// back-pressure: Write returns only when every live pipe's reader has
// taken the bytes, so the slowest restic paces the driver and nothing is
// buffered. A pipe whose reader fails is dropped and the others go on;
// when none is left, Write fails, which stops the driver.
type fanout struct {
	sinks []*sink
}

type sink struct {
	r *io.PipeReader
	w *io.PipeWriter
	// err is the write error that dropped this sink; only Write touches it.
	err error
}

func newFanout(n int) *fanout {
	f := &fanout{}
	for range n {
		r, w := io.Pipe()
		f.sinks = append(f.sinks, &sink{r: r, w: w})
	}
	return f
}

// reader returns the read end of pipe i.
func (f *fanout) reader(i int) *io.PipeReader { return f.sinks[i].r }

// errNoSinks is Write's error once every reader has failed.
var errNoSinks = errors.New("every repository stopped reading the dump")

// Write implements io.Writer.
func (f *fanout) Write(p []byte) (int, error) {
	live := f.live()
	switch len(live) {
	case 0:
		return 0, errNoSinks
	case 1:
		live[0].write(p)
	default:
		var wg sync.WaitGroup
		for _, s := range live {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.write(p)
			}()
		}
		wg.Wait()
	}
	if len(f.live()) == 0 {
		return 0, fmt.Errorf("%w: %w", errNoSinks, live[0].err)
	}
	return len(p), nil
}

func (s *sink) write(p []byte) {
	if _, err := s.w.Write(p); err != nil {
		s.err = err
	}
}

func (f *fanout) live() []*sink {
	var out []*sink
	for _, s := range f.sinks {
		if s.err == nil {
			out = append(out, s)
		}
	}
	return out
}

// finish ends every pipe: with EOF when err is nil (the dump is complete),
// else with err, which the readers must treat as a failed input.
func (f *fanout) finish(err error) {
	for _, s := range f.sinks {
		if err == nil {
			_ = s.w.Close()
		} else {
			_ = s.w.CloseWithError(err)
		}
	}
}

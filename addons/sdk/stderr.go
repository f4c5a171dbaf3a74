package sdk

import (
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// stderrTail keeps the last plain-text lines of a driver's stderr, to
// explain a crash: a Go panic or fatal error is printed there, not logged.
type stderrTail struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial strings.Builder
}

func newStderrTail(max int) *stderrTail {
	return &stderrTail{max: max}
}

// Write implements io.Writer; go-plugin writes stderr line by line.
func (t *stderrTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range p {
		if b != '\n' {
			t.partial.WriteByte(b)
			continue
		}
		line := t.partial.String()
		t.partial.Reset()
		if strings.HasPrefix(line, "{") {
			continue // a JSON log line: go-plugin logs it through the host logger
		}
		t.lines = append(t.lines, line)
		if len(t.lines) > t.max {
			t.lines = t.lines[len(t.lines)-t.max:]
		}
	}
	return len(p), nil
}

// crashLines returns the Go runtime's crash message if there is one (the
// "panic: ..." or "fatal error: ..." line and the next), else the last few
// lines.
func (t *stderrTail) crashLines() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, l := range t.lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			end := min(i+2, len(t.lines))
			return strings.TrimSpace(strings.Join(t.lines[i:end], " "))
		}
	}
	start := max(0, len(t.lines)-3)
	return strings.TrimSpace(strings.Join(t.lines[start:], " | "))
}

// exitSink remembers how the driver process ended, which go-plugin only
// logs ("plugin process exited" with an error such as "exit status 2").
type exitSink struct {
	mu   sync.Mutex
	exit string
}

// Accept implements hclog.SinkAdapter.
func (s *exitSink) Accept(_ string, _ hclog.Level, msg string, args ...interface{}) {
	if msg != "plugin process exited" {
		return
	}
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == "error" {
			s.mu.Lock()
			s.exit = fmtArg(args[i+1])
			s.mu.Unlock()
		}
	}
}

func (s *exitSink) status() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exit
}

func fmtArg(v interface{}) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

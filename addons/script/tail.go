package script

import (
	"strings"
	"sync"
)

// How much of a command's standard error a failure reports: enough for
// the tool's own message, little enough for a status field.
const (
	tailLines = 10
	tailBytes = 2048
)

// tail keeps the last lines of a command's standard error.
type tail struct {
	mu       sync.Mutex
	maxLines int
	maxBytes int
	lines    []string
	partial  strings.Builder
}

func newTail(maxLines, maxBytes int) *tail {
	return &tail{maxLines: maxLines, maxBytes: maxBytes}
}

// Write implements io.Writer.
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range p {
		if b != '\n' {
			if t.partial.Len() < t.maxBytes {
				t.partial.WriteByte(b)
			}
			continue
		}
		t.push(t.partial.String())
		t.partial.Reset()
	}
	return len(p), nil
}

func (t *tail) push(line string) {
	if line = strings.TrimSpace(line); line == "" {
		return
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.maxLines {
		t.lines = t.lines[1:]
	}
}

// String returns the kept lines joined by " | ", the last maxBytes of them.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if rest := strings.TrimSpace(t.partial.String()); rest != "" {
		lines = append(lines[:len(lines):len(lines)], rest)
	}
	s := strings.Join(lines, " | ")
	if len(s) > t.maxBytes {
		s = "..." + s[len(s)-t.maxBytes:]
	}
	return s
}

// suffix is ": <tail>", or "" when the command printed nothing.
func (t *tail) suffix() string {
	if s := t.String(); s != "" {
		return ": " + s
	}
	return ": (no output on standard error)"
}

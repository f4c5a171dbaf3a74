package postgres

import (
	"strings"
	"sync"
)

// How much of a tool's standard error a failure reports: enough for
// the tool's own message, little enough for a status field.
const (
	tailLines = 10
	tailBytes = 2048
)

// tail keeps the last lines of a tool's standard error, or, once a line
// reports an error (psql's "ERROR:", libpq's "FATAL:", pg_dump's
// "error:"), that line and the ones after it: psql's --echo-errors prints
// the failed statement there, whose beginning says the most.
type tail struct {
	mu       sync.Mutex
	maxLines int
	maxBytes int
	lines    []string
	errLines []string // from the first error line on
	partial  strings.Builder
}

// errorMarks are what a line reporting an error holds.
var errorMarks = []string{"ERROR:", "FATAL:", "PANIC:", "error:"}

func isErrorLine(line string) bool {
	for _, m := range errorMarks {
		if strings.Contains(line, m) {
			return true
		}
	}
	return false
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
	if len(t.errLines) > 0 || isErrorLine(line) {
		if len(t.errLines) < t.maxLines {
			t.errLines = append(t.errLines, line)
		}
		return
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.maxLines {
		t.lines = t.lines[1:]
	}
}

// String returns the kept lines joined by " | ": the first maxBytes from
// the first error line on, or else the last maxBytes.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.errLines) > 0 {
		lines := t.errLines
		if rest := strings.TrimSpace(t.partial.String()); rest != "" && len(lines) < t.maxLines {
			lines = append(lines[:len(lines):len(lines)], rest)
		}
		s := strings.Join(lines, " | ")
		if len(s) > t.maxBytes {
			s = s[:t.maxBytes] + "..."
		}
		return s
	}
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

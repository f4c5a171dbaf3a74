package tool

import (
	"strings"
	"sync"
)

// How much of a program's standard error a failure reports by default:
// enough for the program's own message, little enough for a status field.
const (
	DefaultLines = 10
	DefaultBytes = 2048
)

// Tail keeps the last lines of a program's standard error; or, once a
// line holds one of its error marks, that line and the ones after it,
// since a program's first error (and, for psql --echo-errors, the
// statement printed after it) says the most.
type Tail struct {
	mu       sync.Mutex
	maxLines int
	maxBytes int
	marks    []string
	lines    []string
	errLines []string // from the first error line on
	partial  strings.Builder
}

// NewTail keeps the last maxLines lines, of at most maxBytes in all.
func NewTail(maxLines, maxBytes int) *Tail {
	return &Tail{maxLines: maxLines, maxBytes: maxBytes}
}

// FromFirst makes t keep the lines from the first one holding one of
// marks (e.g. "ERROR:"), when one does; it returns t.
func (t *Tail) FromFirst(marks ...string) *Tail {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.marks = marks
	return t
}

// Write implements io.Writer.
func (t *Tail) Write(p []byte) (int, error) {
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

func (t *Tail) push(line string) {
	if line = strings.TrimSpace(line); line == "" {
		return
	}
	if len(t.errLines) > 0 || t.isError(line) {
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

func (t *Tail) isError(line string) bool {
	for _, m := range t.marks {
		if strings.Contains(line, m) {
			return true
		}
	}
	return false
}

// String returns the kept lines joined by " | ": the first maxBytes from
// the first error line on, or else the last maxBytes.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	rest := strings.TrimSpace(t.partial.String())
	if len(t.errLines) > 0 {
		lines := t.errLines
		if rest != "" && len(lines) < t.maxLines {
			lines = append(lines[:len(lines):len(lines)], rest)
		}
		s := strings.Join(lines, " | ")
		if len(s) > t.maxBytes {
			s = s[:t.maxBytes] + "..."
		}
		return s
	}
	lines := t.lines
	if rest != "" {
		lines = append(lines[:len(lines):len(lines)], rest)
		lines = lines[max(0, len(lines)-t.maxLines):]
	}
	s := strings.Join(lines, " | ")
	if len(s) > t.maxBytes {
		s = "..." + s[len(s)-t.maxBytes:]
	}
	return s
}

// suffix is ": <tail>", or says the program printed nothing.
func (t *Tail) suffix() string {
	if s := t.String(); s != "" {
		return ": " + s
	}
	return ": (no output on standard error)"
}

package postgres

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The dump is one stream of plain SQL: the sections pg_dumpall and pg_dump
// wrote, each after a frame line, a SQL comment starting with framePrefix:
//
//	--keepsake:postgres-dump 1
//	--keepsake:globals
//	<pg_dumpall --globals-only>
//	--keepsake:database {"name":"shop","owner":"alice",...}
//	<pg_dump of shop>
//	--keepsake:end
//
// A line of a tool's output that starts with "--keepsake" (no tool writes
// one unless a value holds it) is written as lineFrame + the line, so a
// frame line never comes from the data.
const (
	framePrefix   = "--keepsake:"
	escapedPrefix = "--keepsake"
	headerFrame   = framePrefix + "postgres-dump 1"
	globalsFrame  = framePrefix + "globals"
	databaseFrame = framePrefix + "database "
	lineFrame     = framePrefix + "line "
	endFrame      = framePrefix + "end"
)

// maxLine bounds the lines the decoder reads whole: frame lines and the
// lines it rewrites.
const maxLine = 1 << 20

// database describes a dumped database: what re-creating it needs.
type database struct {
	Name      string `json:"name"`
	Owner     string `json:"owner"`
	Encoding  string `json:"encoding"`
	Collate   string `json:"collate"`
	Ctype     string `json:"ctype"`
	Provider  string `json:"provider,omitempty"`  // "i" for ICU, "c" or empty for libc
	ICULocale string `json:"iculocale,omitempty"` // with Provider "i"
}

// writeFrame writes one frame line.
func writeFrame(w io.Writer, frame string) error {
	_, err := io.WriteString(w, frame+"\n")
	return err
}

func writeDatabaseFrame(w io.Writer, db database) error {
	meta, err := json.Marshal(db)
	if err != nil {
		return err
	}
	return writeFrame(w, databaseFrame+string(meta))
}

// copySection copies a tool's output r into w, escaping lines that start
// like a frame line, and ends it with a newline if it lacks one. Lines are
// not read whole: a COPY row may be larger than any buffer.
func copySection(w io.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	atStart := true
	for {
		if atStart {
			if p, _ := br.Peek(len(escapedPrefix)); string(p) == escapedPrefix {
				if _, err := io.WriteString(w, lineFrame); err != nil {
					return err
				}
			}
		}
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if _, werr := w.Write(chunk); werr != nil {
				return werr
			}
			atStart = chunk[len(chunk)-1] == '\n'
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			if !atStart {
				_, err = io.WriteString(w, "\n")
				return err
			}
			return nil
		case err != nil:
			return err
		}
	}
}

// frameKind is what a frame line starts.
type frameKind int

const (
	frameGlobals frameKind = iota
	frameDatabase
	frameEnd
)

// frame is a decoded frame line.
type frame struct {
	kind frameKind
	db   database // of frameDatabase
}

// decoder reads a dump: frame lines, and the sections between them.
type decoder struct {
	r *bufio.Reader
	// next is a frame line the last section's copy stopped at.
	next []byte
}

func newDecoder(r io.Reader) *decoder {
	return &decoder{r: bufio.NewReaderSize(r, 256<<10)}
}

// header reads the dump's first line. It peeks rather than reads a line:
// a stream of another kind may have no newline for a long way.
func (d *decoder) header() error {
	want := headerFrame + "\n"
	p, err := d.r.Peek(len(want))
	if len(p) == 0 {
		return fmt.Errorf("read the dump's header: %w", err)
	}
	if string(p) != want {
		return fmt.Errorf("not a Keepsake PostgreSQL dump: it starts %q, want %q", truncate(string(p), 40), headerFrame)
	}
	_, err = d.r.Discard(len(want))
	return err
}

// frame reads the frame line that starts the next section, or the end.
func (d *decoder) frame() (frame, error) {
	line := d.next
	d.next = nil
	if line == nil {
		var err error
		if line, err = d.line(); err != nil {
			return frame{}, unexpectedEOF(err)
		}
	}
	s := strings.TrimSuffix(string(line), "\n")
	switch {
	case s == globalsFrame:
		return frame{kind: frameGlobals}, nil
	case s == endFrame:
		return frame{kind: frameEnd}, nil
	case strings.HasPrefix(s, databaseFrame):
		f := frame{kind: frameDatabase}
		if err := json.Unmarshal([]byte(s[len(databaseFrame):]), &f.db); err != nil || f.db.Name == "" {
			return f, fmt.Errorf("dump has a bad database frame %q", truncate(s, 80))
		}
		return f, nil
	}
	return frame{}, fmt.Errorf("dump has %q where a frame line belongs", truncate(s, 80))
}

// copySection copies the section after the last frame into w, up to the
// next frame line, unescaping escaped lines. A line starting with one of
// rewrite's prefixes is read whole (up to maxLine) and replaced with what
// rewrite returns.
func (d *decoder) copySection(w io.Writer, rewrite map[string]func(line []byte) []byte) error {
	for {
		p, _ := d.r.Peek(len(framePrefix))
		if bytes.HasPrefix(p, []byte(framePrefix)) {
			line, err := d.line()
			if err != nil {
				return unexpectedEOF(err)
			}
			if !bytes.HasPrefix(line, []byte(lineFrame)) {
				d.next = line
				return nil
			}
			if _, err := w.Write(line[len(lineFrame):]); err != nil {
				return err
			}
			continue
		}
		if err := d.copyLine(w, rewrite); err != nil {
			return err
		}
	}
}

// copyLine copies one content line into w, rewritten if it starts with a
// prefix of rewrite, else in pieces of the reader's buffer.
func (d *decoder) copyLine(w io.Writer, rewrite map[string]func(line []byte) []byte) error {
	if fn := d.rewriter(rewrite); fn != nil {
		line, err := d.line()
		if err != nil {
			return unexpectedEOF(err)
		}
		_, err = w.Write(fn(line))
		return err
	}
	for {
		chunk, err := d.r.ReadSlice('\n')
		if _, werr := w.Write(chunk); werr != nil {
			return werr
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
		case err != nil:
			return unexpectedEOF(err)
		default:
			return nil
		}
	}
}

// rewriter returns the rewrite of the line at the reader, if any.
func (d *decoder) rewriter(rewrite map[string]func(line []byte) []byte) func(line []byte) []byte {
	for prefix, fn := range rewrite {
		if p, _ := d.r.Peek(len(prefix)); string(p) == prefix {
			return fn
		}
	}
	return nil
}

// line reads one whole line, newline included, of at most maxLine bytes.
func (d *decoder) line() ([]byte, error) {
	var line []byte
	for {
		chunk, err := d.r.ReadSlice('\n')
		line = append(line, chunk...)
		switch {
		case len(line) > maxLine:
			return nil, fmt.Errorf("dump has a line longer than %d bytes where a frame line or a short statement belongs", maxLine)
		case errors.Is(err, bufio.ErrBufferFull):
		case err != nil:
			return nil, err
		default:
			return line, nil
		}
	}
}

// rest checks that nothing follows the end frame.
func (d *decoder) rest() error {
	n, err := io.Copy(io.Discard, d.r)
	if err != nil {
		return fmt.Errorf("read the dump: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("dump has %d bytes after its end frame", n)
	}
	return nil
}

// unexpectedEOF turns the end of the stream inside a dump into an error
// that says so; other errors are the stream's own.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("dump ends before its end frame: it is truncated")
	}
	return fmt.Errorf("read the dump: %w", err)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

package influx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// scanner reads the JSON documents of a /query answer into a reused
// response, as encoding/json would, at a fraction of its cost: a dump
// spends most of its CPU time decoding answers, and reflection decoding
// [][]json.RawMessage row by row costs more than all the rest. It knows the
// answer's shape (results, series, name, tags, columns, values, partial,
// error) and skips any other member. Row values are kept raw (strings with
// their quotes and escapes), in one arena per document.
type scanner struct {
	r     io.Reader
	buf   []byte
	pos   int
	err   error // of the reader, once buf is drained
	arena []byte
	spans [][2]int // arena offsets of the current document's row values
	rows  []int    // values per row, in order, for the current document
}

// scanBuffer is the read size: a chunk of 10000 rows is about 1 MiB.
const scanBuffer = 256 << 10

func newScanner(r io.Reader) *scanner {
	return &scanner{r: r, buf: make([]byte, 0, scanBuffer)}
}

var errSyntax = errors.New("invalid JSON in answer")

// fill makes at least one more byte available; false at end of input.
func (s *scanner) fill() bool {
	if s.err != nil {
		return false
	}
	if s.pos > 0 {
		n := copy(s.buf[:cap(s.buf)], s.buf[s.pos:])
		s.buf, s.pos = s.buf[:n], 0
	}
	if len(s.buf) == cap(s.buf) {
		s.buf = append(s.buf, 0)[:len(s.buf)] // grow for one long token
	}
	for {
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if err != nil {
			s.err = err
		}
		if n > 0 {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// peek skips whitespace and returns the next byte; 0 at end of input.
func (s *scanner) peek() byte {
	for {
		for s.pos < len(s.buf) {
			switch c := s.buf[s.pos]; c {
			case ' ', '\t', '\n', '\r':
				s.pos++
			default:
				return c
			}
		}
		if !s.fill() {
			return 0
		}
	}
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.syntax()
	}
	s.pos++
	return nil
}

// syntax is the error of unexpected input: a cut answer reads as
// io.ErrUnexpectedEOF, as with encoding/json.
func (s *scanner) syntax() error {
	if s.peek() == 0 {
		if s.err != nil && !errors.Is(s.err, io.EOF) {
			return s.err
		}
		return io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w near %q", errSyntax, s.buf[s.pos:min(len(s.buf), s.pos+20)])
}

// token returns the raw bytes of the next scalar (string with quotes,
// number or literal), valid until the next read.
func (s *scanner) token() ([]byte, error) {
	c := s.peek()
	start := s.pos
	end := 0
	for {
		var ok bool
		if c == '"' {
			end, ok = stringEnd(s.buf[start:])
		} else {
			end, ok = literalEnd(s.buf[start:])
		}
		if ok {
			break
		}
		// The token runs past the buffer: read more, keeping it.
		s.pos = start
		if !s.fill() {
			if c != '"' && len(s.buf) > s.pos { // a literal ends at EOF
				end = len(s.buf) - s.pos
				break
			}
			return nil, s.syntax()
		}
		start = s.pos
	}
	if end == 0 {
		return nil, s.syntax()
	}
	s.pos = start + end
	return s.buf[start : start+end], nil
}

// stringEnd returns the length of the JSON string b starts with.
func stringEnd(b []byte) (int, bool) {
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// literalEnd returns the length of the number or literal b starts with.
func literalEnd(b []byte) (int, bool) {
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c == '-', c == '+', c == '.', c == 'E':
		default:
			return i, true
		}
	}
	return 0, false
}

// str reads a JSON string.
func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", s.syntax()
	}
	raw, err := s.token()
	if err != nil {
		return "", err
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	var out string
	err = json.Unmarshal(raw, &out)
	return out, err
}

// boolean reads true or false.
func (s *scanner) boolean() (bool, error) {
	raw, err := s.token()
	switch {
	case err != nil:
		return false, err
	case string(raw) == "true":
		return true, nil
	case string(raw) == "false":
		return false, nil
	}
	return false, fmt.Errorf("%w: %q is no boolean", errSyntax, raw)
}

// members reads an object, calling fn with each key.
func (s *scanner) members(fn func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := fn(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.syntax()
		}
	}
}

// elements reads an array, calling fn for each element; a null array is
// empty.
func (s *scanner) elements(fn func() error) error {
	if s.peek() == 'n' {
		return s.null()
	}
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.syntax()
		}
	}
}

func (s *scanner) null() error {
	raw, err := s.token()
	if err == nil && string(raw) != "null" {
		err = fmt.Errorf("%w: %q", errSyntax, raw)
	}
	return err
}

// skip reads any value.
func (s *scanner) skip() error {
	switch s.peek() {
	case '{':
		return s.members(func(string) error { return s.skip() })
	case '[':
		return s.elements(s.skip)
	}
	_, err := s.token()
	return err
}

// document reads the next document into doc (reset first); io.EOF when
// the answer has no more.
func (s *scanner) document(doc *response) error {
	if s.peek() == 0 {
		if s.err != nil && !errors.Is(s.err, io.EOF) {
			return s.err
		}
		return io.EOF
	}
	s.arena, s.spans, s.rows = s.arena[:0], s.spans[:0], s.rows[:0]
	doc.Error = ""
	n := 0
	err := s.members(func(key string) error {
		switch key {
		case "results":
			return s.elements(func() error {
				if n == len(doc.Results) {
					doc.Results = append(doc.Results, result{})
				}
				n++
				return s.result(&doc.Results[n-1])
			})
		case "error":
			var err error
			doc.Error, err = s.str()
			return err
		}
		return s.skip()
	})
	doc.Results = doc.Results[:n]
	if err != nil {
		return err
	}
	s.materialize(doc)
	return nil
}

func (s *scanner) result(r *result) error {
	n := 0
	r.Error, r.Partial = "", false
	r.Series = r.Series[:cap(r.Series)]
	err := s.members(func(key string) error {
		var err error
		switch key {
		case "series":
			return s.elements(func() error {
				if n == len(r.Series) {
					r.Series = append(r.Series, Series{})
				}
				n++
				return s.series(&r.Series[n-1])
			})
		case "error":
			r.Error, err = s.str()
		case "partial":
			r.Partial, err = s.boolean()
		default:
			err = s.skip()
		}
		return err
	})
	r.Series = r.Series[:n]
	return err
}

// series reads one series; its rows are recorded as arena spans, turned
// into Values by materialize once the document is read (the arena may
// move while it grows).
func (s *scanner) series(ser *Series) error {
	ser.Name, ser.Partial = "", false
	clear(ser.Tags)
	ser.Columns, ser.Values = ser.Columns[:0], ser.Values[:0]
	return s.members(func(key string) error {
		var err error
		switch key {
		case "name":
			ser.Name, err = s.str()
		case "tags":
			if ser.Tags == nil {
				ser.Tags = map[string]string{}
			}
			err = s.members(func(k string) error {
				v, err := s.str()
				ser.Tags[k] = v
				return err
			})
		case "columns":
			err = s.elements(func() error {
				c, err := s.str()
				ser.Columns = append(ser.Columns, c)
				return err
			})
		case "values":
			err = s.elements(func() error {
				count := 0
				err := s.elements(func() error {
					if c := s.peek(); c == '{' || c == '[' {
						return fmt.Errorf("%w: nested value in a row", errSyntax)
					}
					raw, err := s.token()
					if err != nil {
						return err
					}
					s.spans = append(s.spans, [2]int{len(s.arena), len(s.arena) + len(raw)})
					s.arena = append(s.arena, raw...)
					count++
					return nil
				})
				s.rows = append(s.rows, count)
				// A placeholder per row (its old memory kept), which
				// materialize fills.
				if len(ser.Values) < cap(ser.Values) {
					ser.Values = ser.Values[:len(ser.Values)+1]
				} else {
					ser.Values = append(ser.Values, nil)
				}
				return err
			})
		case "partial":
			ser.Partial, err = s.boolean()
		default:
			err = s.skip()
		}
		return err
	})
}

// materialize points every row of doc at its values in the arena,
// reusing the rows' memory.
func (s *scanner) materialize(doc *response) {
	row, span := 0, 0
	for i := range doc.Results {
		for j := range doc.Results[i].Series {
			values := doc.Results[i].Series[j].Values
			// Values was truncated and re-extended: its elements' old
			// slices are reused where long enough.
			for k := range values {
				n := s.rows[row]
				row++
				v := values[k][:0]
				if cap(v) < n {
					v = make([]json.RawMessage, 0, n)
				}
				for _, sp := range s.spans[span : span+n] {
					v = append(v, s.arena[sp[0]:sp[1]:sp[1]])
				}
				span += n
				values[k] = v
			}
		}
	}
}

package influx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDecodeChunks(t *testing.T) {
	tests := map[string]struct {
		body string // the /query answer, documents separated by newlines
		want string // what the callback saw, one line per series chunk
		err  string // expected error substring
	}{
		"chunks reuse memory without leaking fields": {
			body: `{"results":[{"statement_id":0,"series":[{"name":"m","tags":{"a":"x","b":"y"},"columns":["time","f"],"values":[[1,"p"],[2,"q"]],"partial":true}],"partial":true}]}
{"results":[{"statement_id":0,"series":[{"name":"m","tags":{"a":"z"},"columns":["time","f"],"values":[[3,null]]}]}]}`,
			want: "m map[a:x b:y] [time f] [[1 \"p\"] [2 \"q\"]] partial\nm map[a:z] [time f] [[3 null]] \n",
		},
		"empty answer":        {body: `{"results":[{"statement_id":0}]}`, want: ""},
		"answer cut short":    {body: `{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time"],"values":[[1]]}],"partial":true}]}`, err: "answer ended before its last chunk"},
		"broken document":     {body: `{"results":[{"statement_id":0,"series":[{"name":"m"`, err: "read answer: unexpected EOF"},
		"statement error":     {body: `{"results":[{"statement_id":0,"error":"database not found: x"}]}`, err: "database not found: x"},
		"whole-request error": {body: `{"error":"error parsing query"}`, err: "error parsing query"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got strings.Builder
			err := decodeChunks(strings.NewReader(tc.body), func(s *Series) error {
				partial := ""
				if s.Partial {
					partial = "partial"
				}
				fmt.Fprintf(&got, "%s %v %v %s %s\n", s.Name, s.Tags, s.Columns, rows(s), partial)
				return nil
			})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("got %q (%v), want %q", got.String(), err, tc.want)
			}
		})
	}
}

func rows(s *Series) string {
	var out []string
	for _, row := range s.Values {
		var vals []string
		for _, v := range row {
			vals = append(vals, string(v))
		}
		out = append(out, "["+strings.Join(vals, " ")+"]")
	}
	return "[" + strings.Join(out, " ") + "]"
}

// The scanner reads what encoding/json reads, whatever the read sizes:
// escapes, unicode, numbers, nulls, members it does not know (skipped),
// and several documents whose memory it reuses.
func TestScannerMatchesEncodingJSON(t *testing.T) {
	docs := []string{
		`{"results":[{"statement_id":0,"series":[{"name":"m \"q\" \u00e9","tags":{"a\\b":"x,y=z","":"é📈"},"columns":["time","f","g"],"values":[[1600000000000000000,-1.5e-7,"s \"quoted\" \\ \n"],[2,null,true],[3,12345678901234567890,false]],"partial":true}],"partial":true,"messages":[{"level":"warning","text":"deprecated {x}"}]}]}`,
		`{"results":[{"statement_id":0,"series":[{"name":"n","columns":["time"],"values":[[4]]},{"name":"o","tags":{"a":"1"},"columns":["time","v"],"values":[]}]},{"statement_id":1,"error":"boom"}]}`,
		` { "results" : [ { "statement_id" : 0 , "series" : [ { "name" : "m" , "columns" : [ "time" , "f" ] , "values" : [ [ 5 , "x" ] ] } ] } ] } `,
		`{"results":[{"statement_id":0,"series":null}],"error":"whole"}`,
	}
	body := strings.Join(docs, "\n")
	for name, r := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(body) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(body)) },
	} {
		t.Run(name, func(t *testing.T) {
			sc := newScanner(r())
			var got response
			for i, d := range docs {
				if err := sc.document(&got); err != nil {
					t.Fatalf("document %d: %v", i, err)
				}
				var want response
				if err := json.Unmarshal([]byte(d), &want); err != nil {
					t.Fatal(err)
				}
				if g, w := render(&got), render(&want); g != w {
					t.Fatalf("document %d:\n got %s\nwant %s", i, g, w)
				}
			}
			if err := sc.document(&got); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last document: %v, want io.EOF", err)
			}
		})
	}
}

// render prints a response with row values raw, nil and empty alike.
func render(r *response) string {
	var b strings.Builder
	fmt.Fprintf(&b, "error=%q", r.Error)
	for _, res := range r.Results {
		fmt.Fprintf(&b, " result(error=%q partial=%t", res.Error, res.Partial)
		for _, s := range res.Series {
			tags := fmt.Sprint(s.Tags)
			if len(s.Tags) == 0 {
				tags = "map[]"
			}
			fmt.Fprintf(&b, " series(%q %s %q %s %t)", s.Name, tags, s.Columns, rows(&s), s.Partial)
		}
		b.WriteString(")")
	}
	return b.String()
}

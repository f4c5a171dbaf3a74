package influx

import (
	"fmt"
	"strings"
	"testing"
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

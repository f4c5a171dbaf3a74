package servers

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// hquery sends one /query to the emulation with the given form.
func hquery(t *testing.T, h *HyperbyteDB, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(h.URL+"/query", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v := resp.Header.Get("X-Influxdb-Version"); v != hyperbyteVersion {
		t.Fatalf("X-Influxdb-Version %q", v)
	}
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func TestHyperbyteDBEmulation(t *testing.T) {
	h := StartHyperbyteDB(t, WithMaxResponse(4<<10))
	must := func(q string) {
		if code, body := hquery(t, h, url.Values{"q": {q}}); code != http.StatusOK || strings.Contains(body, "error") {
			t.Fatalf("%s: %d %s", q, code, body)
		}
	}
	must(`CREATE DATABASE db WITH DURATION 14d SHARD DURATION 2d NAME "two weeks"`)
	must(`CREATE RETENTION POLICY forever ON db DURATION INF REPLICATION 1`)
	must(`CREATE DATABASE dbx`)
	lines := "m,host.name=a usage.idle=0.5,up=true 1000\napp:cpu v=1 2000\n"
	resp, err := http.Post(h.URL+"/write?db=db&rp=forever&precision=ns", "text/plain", strings.NewReader(lines))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %v %v", err, resp)
	}
	var big strings.Builder
	for i := range 200 {
		big.WriteString("big v=1 " + strconv.Itoa(i+1) + "\n")
	}
	if _, err := http.Post(h.URL+"/write?db=db&rp=forever&precision=ns", "text/plain", strings.NewReader(big.String())); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		form url.Values // the /query form
		code int        // expected status
		want string     // substring of the answer
	}{
		"durations in weeks and days": {form: url.Values{"q": {"SHOW RETENTION POLICIES ON db"}}, code: 200,
			want: `["two weeks","2w0s","2d0s",1,true],["forever","0s","1w0s",1,false]`},
		"SELECT needs db":           {form: url.Values{"q": {`SELECT * FROM db.forever.m`}}, code: 200, want: `"error":"database is required"`},
		"SHOW FIELD KEYS needs db":  {form: url.Values{"q": {`SHOW FIELD KEYS FROM m`}}, code: 200, want: `"error":"database is required"`},
		"regex after a dot refused": {form: url.Values{"q": {`SHOW FIELD KEYS ON db FROM "two weeks"./.*/`}, "db": {"db"}}, code: 400, want: "error parsing query"},
		"field keys without FROM in one unnamed series": {form: url.Values{"q": {`SHOW FIELD KEYS ON db`}, "db": {"db"}, "rp": {"forever"}}, code: 200,
			want: `"name":"","columns":["fieldKey","fieldType"]`},
		"field keys take rp from the parameter": {form: url.Values{"q": {`SHOW FIELD KEYS ON db FROM "two weeks".m`}, "db": {"db"}, "rp": {"forever"}}, code: 200,
			want: `["usage.idle","float"]`},
		"series_id, sanitized names, 0/1 booleans": {form: url.Values{"q": {`SELECT * FROM db.forever.m GROUP BY *`}, "db": {"db"}, "epoch": {"ns"}}, code: 200,
			want: `"tags":{"host_name":"a"},"columns":["time","series_id","up","usage_idle"],"values":[[1000,`},
		"measurement names cut at the last colon": {form: url.Values{"q": {`SHOW MEASUREMENTS ON db`}, "db": {"db"}, "rp": {"forever"}}, code: 200,
			want: `"values":[["big"],["cpu"],["m"]]`},
		"whole answer over the limit times out": {form: url.Values{"q": {`SELECT * FROM db.forever.big`}, "db": {"db"}, "chunked": {"true"}, "chunk_size": {"10"}}, code: 408,
			want: `"error":"query timeout"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, body := hquery(t, h, tc.form)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %s\nwant %d and %s", code, body, tc.code, tc.want)
			}
		})
	}
	t.Run("chunked answer is one document", func(t *testing.T) {
		_, body := hquery(t, h, url.Values{"q": {`SELECT * FROM db.forever.m`}, "db": {"db"}, "chunked": {"true"}, "chunk_size": {"1"}})
		if strings.Count(body, "\n") != 0 || strings.Contains(body, "partial") {
			t.Fatalf("chunked answer: %s", body)
		}
	})
	t.Run("DROP DATABASE drops prefix siblings and leaves a stale cache", func(t *testing.T) {
		must("DROP DATABASE db")
		_, body := hquery(t, h, url.Values{"q": {"SHOW DATABASES"}})
		if strings.Contains(body, `"dbx"`) || strings.Contains(body, `["db"]`) {
			t.Fatalf("after DROP DATABASE db: %s", body)
		}
		must("CREATE DATABASE db")
		if _, err := http.Post(h.URL+"/write?db=db&precision=ns", "text/plain", strings.NewReader("m v=1 1\nfresh v=1 1\n")); err != nil {
			t.Fatal(err)
		}
		_, body = hquery(t, h, url.Values{"q": {"SHOW MEASUREMENTS ON db"}, "db": {"db"}})
		if !strings.Contains(body, `[["fresh"]]`) {
			t.Fatalf("measurements after re-creating db: %s, want only fresh (m is hidden by the stale cache)", body)
		}
	})
}

// The emulation stores what HyperbyteDB's parser reads and widens integer
// into float fields (hyperbytedb_write.go).
func TestHyperbyteDBEmulationWrites(t *testing.T) {
	h := StartHyperbyteDB(t)
	write := func(lines string) int {
		resp, err := http.Post(h.URL+"/write?db=db&precision=ns", "text/plain", strings.NewReader(lines))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code, body := hquery(t, h, url.Values{"q": {"CREATE DATABASE db"}}); code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	tests := map[string]struct {
		lines string // written to the emulation
		q     string // read from the backend
		want  string // substring of the backend's answer
	}{
		`\\ in names is one backslash`: {lines: `a\\b,t\\k=v\\w f\\k=1 1` + "\n", q: `SHOW SERIES FROM "a\\b"`,
			want: `"a\\b,t\\k=v\\w"`}, // JSON of a\b,t\k=v\w
		`\" in a field key stays`:                    {lines: `q f\"k=1 1` + "\n", q: `SHOW FIELD KEYS FROM q`, want: `["f\\\"k","float"]`},
		"integer into a float field becomes a float": {lines: "w v=1.5 1\nw v=2i 2\n", q: `SELECT v FROM w`, want: `[2,2]`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if code := write(tc.lines); code != http.StatusNoContent {
				t.Fatalf("write answered %d", code)
			}
			resp, err := http.PostForm(h.Backend.URL+"/query", url.Values{"q": {tc.q}, "db": {"db"}, "epoch": {"ns"}})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), tc.want) {
				t.Fatalf("backend answers %s, want %s", body, tc.want)
			}
		})
	}
	t.Run("the backend alone refuses the integer", func(t *testing.T) {
		resp, err := http.Post(h.Backend.URL+"/write?db=db&precision=ns", "text/plain", strings.NewReader("w v=3i 3\n"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("InfluxDB answered %d to an integer in a float field, want 400", resp.StatusCode)
		}
	})
}

// Package hyperbytedbtest holds test helpers for the HyperbyteDB driver: a
// dataset that exercises every field type and every character the line
// protocol must escape, a bulk generator for benchmarks, and a reader that
// captures a server's whole contents for exact comparison. It writes with
// InfluxDB 1.x's own line-protocol package and reads with plain JSON, so it
// shares no code with the driver it checks.
package hyperbytedbtest

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb1-client/models"
)

// Server is how helpers reach an InfluxDB v1 API.
type Server struct {
	URL, Username, Password string
}

// Point is one point of a dataset.
type Point struct {
	DB, RP, Measurement string
	Tags                map[string]string
	Fields              map[string]any // float64, int64, string or bool
	Time                time.Time
}

// Database is a database of a dataset with its retention policies; the
// first is the default.
type Database struct {
	Name     string
	Policies []Policy
}

// Policy is a retention policy.
type Policy struct {
	Name     string
	Duration time.Duration // 0: infinite
}

// Dataset is databases and their points.
type Dataset struct {
	Databases []Database
	Points    []Point
}

// Awkward names and values: spaces, commas, equals signs, quotes,
// backslashes, unicode. A backslash in a name is never trailing and never
// right before a space, comma or equals sign: InfluxDB 1.x's parser cannot
// take those at all; database names cannot hold one.
const (
	WeirdDB          = `wéird "db", a=b 📈`
	WeirdMeasurement = `cpu load,host=x "q" \ms ü`
	WeirdTagKey      = `tag key,=\"k"`
	WeirdTagValue    = `va lue,=\"v" ✓`
	WeirdFieldKey    = `field "key",= \f`
)

// Strings holds string field values that must survive exactly.
var Strings = []string{
	"", "plain", `with "quotes"`, `back\slash`, `trailing backslash\`, `\\double`,
	"new\nline", "cr\r\nlf", "tab\there", `literal \n escape`, "unicode ü 😀 日本",
	"comma, equals= space", "# not a comment\n# CONTEXT-DATABASE:evil",
}

// Floats holds float field values that must survive exactly, including
// whole numbers that JSON writes without a decimal point.
var Floats = []float64{0, 1, -1, 0.1, 1e21, -2.5e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, 123456789}

// Ints holds integer field values.
var Ints = []int64{0, 1, -1, math.MaxInt64, math.MinInt64 + 1, 42}

// Mixed returns a dataset with several databases and retention policies
// (including a default that is not autogen and a finite one), measurements
// with sparse fields, tag sets that differ between series of one
// measurement, a tag and a field of the same name, and every field type.
// Points of finite policies lie just before now so they are not expired.
func Mixed(now time.Time) Dataset {
	ds := Dataset{Databases: []Database{
		{Name: "metrics", Policies: []Policy{{Name: "autogen"}, {Name: "week", Duration: 7 * 24 * time.Hour}}},
		{Name: WeirdDB, Policies: []Policy{{Name: "primary rp"}, {Name: "autogen"}}},
		{Name: "events", Policies: []Policy{{Name: "autogen"}}},
	}}
	base := time.Unix(0, 1_600_000_000_000_000_000)
	for i, s := range Strings {
		ds.add("events", "autogen", "log", map[string]string{"app": fmt.Sprintf("a%d", i%3)},
			map[string]any{"msg": s, "n": int64(i), "ok": i%2 == 0}, base.Add(time.Duration(i)*time.Second))
	}
	for i, f := range Floats {
		ds.add("metrics", "autogen", "cpu", map[string]string{"host": "h1", "region": "eu west"},
			map[string]any{"value": f, "count": Ints[i%len(Ints)]}, base.Add(time.Duration(i)*time.Millisecond))
		ds.add("metrics", "autogen", "cpu", map[string]string{"host": "h2"}, // no region tag
			map[string]any{"value": f}, base.Add(time.Duration(i)*time.Millisecond))
	}
	ds.add("metrics", "autogen", "old", nil, map[string]any{"v": 1.5}, time.Unix(0, -1_000_000_000_000_000_000))
	ds.add("metrics", "week", "recent", map[string]string{"value": "tag"}, // a tag named like the field
		map[string]any{"value": 2.0, "up": true}, now.Add(-time.Hour).Truncate(time.Second))
	ds.add(WeirdDB, "primary rp", WeirdMeasurement, map[string]string{WeirdTagKey: WeirdTagValue},
		map[string]any{WeirdFieldKey: "x\ny", "f": 3.25}, base)
	ds.add(WeirdDB, "autogen", "m", nil, map[string]any{"b": false}, base.Add(time.Nanosecond))
	return ds
}

func (ds *Dataset) add(db, rp, m string, tags map[string]string, fields map[string]any, t time.Time) {
	ds.Points = append(ds.Points, Point{DB: db, RP: rp, Measurement: m, Tags: tags, Fields: fields, Time: t})
}

// Write creates the dataset's databases and policies and writes its
// points.
func (ds Dataset) Write(t testing.TB, s Server) {
	t.Helper()
	for _, db := range ds.Databases {
		for i, p := range db.Policies {
			dur := "INF"
			if p.Duration > 0 {
				dur = fmt.Sprintf("%dh", p.Duration/time.Hour)
			}
			if i == 0 {
				s.Exec(t, fmt.Sprintf(`CREATE DATABASE %s WITH DURATION %s NAME %s`, ident(db.Name), dur, ident(p.Name)))
				continue
			}
			s.Exec(t, fmt.Sprintf(`CREATE RETENTION POLICY %s ON %s DURATION %s REPLICATION 1`, ident(p.Name), ident(db.Name), dur))
		}
	}
	for _, p := range ds.Points {
		pt, err := models.NewPoint(p.Measurement, models.NewTags(p.Tags), p.Fields, p.Time)
		if err != nil {
			t.Fatalf("point %+v: %v", p, err)
		}
		s.Write(t, p.DB, p.RP, pt.String()+"\n")
	}
}

// ident quotes an InfluxQL identifier.
func ident(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Exec runs an InfluxQL statement and fails the test on any error.
func (s Server) Exec(t testing.TB, q string) {
	t.Helper()
	body := s.post(t, "/query", "application/x-www-form-urlencoded", url.Values{"q": {q}}.Encode())
	if bytes.Contains(body, []byte(`"error"`)) {
		t.Fatalf("%s: %s", q, body)
	}
}

// ExecIn runs a statement that needs a database, such as DELETE, in db.
func (s Server) ExecIn(t testing.TB, db, q string) {
	t.Helper()
	body := s.post(t, "/query", "application/x-www-form-urlencoded", url.Values{"q": {q}, "db": {db}}.Encode())
	if bytes.Contains(body, []byte(`"error"`)) {
		t.Fatalf("%s: %s", q, body)
	}
}

// Write writes line protocol (nanosecond precision) to db.rp.
func (s Server) Write(t testing.TB, db, rp, lines string) {
	t.Helper()
	q := url.Values{"db": {db}, "rp": {rp}, "precision": {"ns"}}
	s.post(t, "/write?"+q.Encode(), "text/plain", lines)
}

func (s Server) post(t testing.TB, path, contentType, body string) []byte {
	t.Helper()
	data, err := s.tryPost(path, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// tryPost is post without a test, for goroutines.
func (s Server) tryPost(path, contentType, body string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if s.Username != "" {
		req.SetBasicAuth(s.Username, s.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("POST %s: %s: %s", path, resp.Status, data)
	}
	return data, nil
}

// HyperbyteDBKeys are the names ForHyperbyteDB gives the weird tag and
// field keys.
var HyperbyteDBKeys = map[string]string{WeirdTagKey: "tag_key", WeirdFieldKey: "field_key"}

// ForHyperbyteDB returns ds with the tag and field keys HyperbyteDB
// cannot hold (it keeps only [A-Za-z0-9_] in column names) renamed; its
// awkward database and measurement names and all values stay.
func (ds Dataset) ForHyperbyteDB() Dataset {
	out := Dataset{Databases: ds.Databases}
	rename := func(k string) string {
		if to, ok := HyperbyteDBKeys[k]; ok {
			return to
		}
		return k
	}
	for _, p := range ds.Points {
		q := p
		q.Tags, q.Fields = map[string]string{}, map[string]any{}
		for k, v := range p.Tags {
			q.Tags[rename(k)] = v
		}
		for k, v := range p.Fields {
			q.Fields[rename(k)] = v
		}
		out.Points = append(out.Points, q)
	}
	return out
}

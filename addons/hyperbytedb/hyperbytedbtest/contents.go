package hyperbytedbtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Contents is everything a server holds, in a form where equality means
// every point, tag, field type and value is exactly the same.
type Contents struct {
	// Schema maps a database to its retention policies, "name|duration|default".
	Schema map[string][]string
	// Points maps db, rp, measurement, tags and time to the point's fields,
	// each "key=type:value".
	Points map[string]string
}

func pointKey(db, rp, m string, tags map[string]string, ns int64) string {
	var kv []string
	for k, v := range tags {
		if v != "" { // an empty tag value is no tag
			kv = append(kv, k+"="+v)
		}
	}
	sort.Strings(kv)
	return strings.Join([]string{db, rp, m, strings.Join(kv, "\x1e"), strconv.FormatInt(ns, 10)}, "\x1f")
}

func fieldsValue(fields map[string]string) string {
	var kv []string
	for k, v := range fields {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, "\x1e")
}

// Contents returns what a server holding exactly ds would hold.
func (ds Dataset) Contents() Contents {
	c := Contents{Schema: map[string][]string{}, Points: map[string]string{}}
	for _, db := range ds.Databases {
		for i, p := range db.Policies {
			c.Schema[db.Name] = append(c.Schema[db.Name], fmt.Sprintf("%s|%s|%t", p.Name, p.Duration, i == 0))
		}
		sort.Strings(c.Schema[db.Name])
	}
	for _, p := range ds.Points {
		fields := map[string]string{}
		for k, v := range p.Fields {
			fields[k] = goValue(v)
		}
		c.Points[pointKey(p.DB, p.RP, p.Measurement, p.Tags, p.Time.UnixNano())] = fieldsValue(fields)
	}
	return c
}

func goValue(v any) string {
	switch v := v.(type) {
	case float64:
		return "float:" + strconv.FormatFloat(v, 'g', -1, 64)
	case int64:
		return "integer:" + strconv.FormatInt(v, 10)
	case string:
		return "string:" + strconv.Quote(v)
	case bool:
		return "boolean:" + strconv.FormatBool(v)
	}
	panic(fmt.Sprintf("unsupported field value %T", v))
}

// ReadContents reads every database but _internal from the server.
func ReadContents(t testing.TB, s Server) Contents {
	t.Helper()
	c := Contents{Schema: map[string][]string{}, Points: map[string]string{}}
	for _, row := range s.rows(t, "SHOW DATABASES", "") {
		db := row.str(t, "name")
		if db == "_internal" {
			continue
		}
		c.Schema[db] = []string{}
		for _, rp := range s.rows(t, "SHOW RETENTION POLICIES ON "+ident(db), "") {
			d, err := time.ParseDuration(rp.str(t, "duration"))
			if err != nil {
				t.Fatal(err)
			}
			c.Schema[db] = append(c.Schema[db], fmt.Sprintf("%s|%s|%t", rp.str(t, "name"), d, rp.values["default"] == "true"))
			s.readPolicy(t, &c, db, rp.str(t, "name"))
		}
		sort.Strings(c.Schema[db])
	}
	return c
}

func (s Server) readPolicy(t testing.TB, c *Contents, db, rp string) {
	t.Helper()
	types := map[string]map[string]string{}
	for _, row := range s.rows(t, fmt.Sprintf("SHOW FIELD KEYS ON %s FROM %s./.*/", ident(db), ident(rp)), "") {
		if types[row.series] == nil {
			types[row.series] = map[string]string{}
		}
		types[row.series][row.str(t, "fieldKey")] = row.str(t, "fieldType")
	}
	for m, mtypes := range types {
		q := fmt.Sprintf("SELECT * FROM %s.%s.%s GROUP BY *", ident(db), ident(rp), ident(m))
		for _, row := range s.rows(t, q, db) {
			fields := map[string]string{}
			for k, raw := range row.values {
				if k != "time" && raw != "null" {
					fields[k] = jsonValue(t, mtypes[k], raw)
				}
			}
			ns, err := strconv.ParseInt(row.values["time"], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			c.Points[pointKey(db, rp, m, row.tags, ns)] = fieldsValue(fields)
		}
	}
}

func jsonValue(t testing.TB, typ, raw string) string {
	t.Helper()
	switch typ {
	case "float":
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			t.Fatal(err)
		}
		return goValue(f)
	case "integer":
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return goValue(n)
	case "string":
		var s string
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			t.Fatal(err)
		}
		return goValue(s)
	case "boolean":
		return "boolean:" + raw
	}
	t.Fatalf("field type %q", typ)
	return ""
}

// row is one row of an answer, values as raw JSON.
type row struct {
	series string
	tags   map[string]string
	values map[string]string
}

func (r row) str(t testing.TB, col string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal([]byte(r.values[col]), &s); err != nil {
		t.Fatalf("column %s: %v", col, err)
	}
	return s
}

func (s Server) rows(t testing.TB, q, db string) []row {
	t.Helper()
	form := url.Values{"q": {q}, "epoch": {"ns"}}
	if db != "" {
		form.Set("db", db)
	}
	body := s.post(t, "/query", "application/x-www-form-urlencoded", form.Encode())
	var doc struct {
		Results []struct {
			Error  string
			Series []struct {
				Name    string
				Tags    map[string]string
				Columns []string
				Values  [][]json.RawMessage
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || len(doc.Results) != 1 || doc.Results[0].Error != "" {
		t.Fatalf("%s: %v %s", q, err, body)
	}
	var out []row
	for _, ser := range doc.Results[0].Series {
		for _, vals := range ser.Values {
			r := row{series: ser.Name, tags: ser.Tags, values: map[string]string{}}
			for i, col := range ser.Columns {
				r.values[col] = string(vals[i])
			}
			out = append(out, r)
		}
	}
	return out
}

// Diff describes how got differs from want, at most max differences, or
// returns "" when they are equal.
func Diff(want, got Contents, max int) string {
	var out []string
	add := func(format string, args ...any) {
		if len(out) < max {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	for db, w := range want.Schema {
		if g := got.Schema[db]; strings.Join(g, ",") != strings.Join(w, ",") {
			add("database %q: policies %v, want %v", db, g, w)
		}
	}
	for db := range got.Schema {
		if _, ok := want.Schema[db]; !ok {
			add("unexpected database %q", db)
		}
	}
	for k, w := range want.Points {
		if g, ok := got.Points[k]; !ok {
			add("missing point %q", k)
		} else if g != w {
			add("point %q: fields %q, want %q", k, g, w)
		}
	}
	for k := range got.Points {
		if _, ok := want.Points[k]; !ok {
			add("unexpected point %q", k)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return fmt.Sprintf("%d+ differences (points: got %d, want %d):\n%s", len(out), len(got.Points), len(want.Points), strings.Join(out, "\n"))
}

package servers

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/influxdata/influxql"
)

// How the emulation answers each InfluxQL statement. Source references
// are to hyperbytedb/src/ at commit 312a0fb.

// statements answers every statement of a query.
func (h *HyperbyteDB) statements(req request) ([]*result, int, error) {
	parsed, err := influxql.ParseQuery(req.q)
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("error parsing query: %w", err)
	}
	var out []*result
	for i, stmt := range parsed.Statements {
		if err := regexAfterDot(stmt); err != nil {
			return nil, http.StatusBadRequest, err // QueryParse is 400, adapters/http/error.rs:32
		}
		res, err := h.statement(req, stmt)
		if se, ok := err.(*statusError); ok {
			return nil, se.code, se
		}
		if err != nil {
			res = &result{Error: err.Error()}
		}
		res.StatementID = i
		out = append(out, res)
	}
	return out, http.StatusOK, nil
}

// regexAfterDot refuses FROM rp./regex/: HyperbyteDB's parser takes a
// regex only as a whole source and splits any other source at every dot
// outside quotes, the dots of the regex included
// (timeseriesql/parser.rs:926-960).
func regexAfterDot(stmt influxql.Statement) error {
	var sources influxql.Sources
	switch s := stmt.(type) {
	case *influxql.SelectStatement:
		sources = s.Sources
	case *influxql.ShowFieldKeysStatement:
		sources = s.Sources
	case *influxql.ShowTagKeysStatement:
		sources = s.Sources
	}
	for _, src := range sources {
		if m, ok := src.(*influxql.Measurement); ok && m.Regex != nil && (m.RetentionPolicy != "" || m.Database != "") {
			return fmt.Errorf("error parsing query: cannot parse source %s", m)
		}
	}
	return nil
}

// errDatabaseRequired is HyperbyteDB's answer to a database-scoped
// statement without a db parameter (application/query_service.rs:549,
// :703, :768, :851).
var errDatabaseRequired = fmt.Errorf("database is required")

func (h *HyperbyteDB) statement(req request, stmt influxql.Statement) (*result, error) {
	switch s := stmt.(type) {
	case *influxql.SelectStatement:
		if req.db == "" { // query_service.rs:763-769: the db parameter, whatever FROM says
			return nil, errDatabaseRequired
		}
		return h.selectRows(req, s)
	case *influxql.ShowFieldKeysStatement:
		return h.showFieldKeys(req, s)
	case *influxql.ShowTagKeysStatement:
		if s.Database == "" && req.db == "" {
			return nil, errDatabaseRequired
		}
		return h.backend(req, s.String())
	case *influxql.ShowMeasurementsStatement:
		db := firstNonEmpty(s.Database, req.db)
		if db == "" {
			return nil, errDatabaseRequired
		}
		return h.showMeasurements(req, db)
	case *influxql.ShowRetentionPoliciesStatement:
		return h.showRetentionPolicies(req, s)
	case *influxql.DropDatabaseStatement:
		return h.dropDatabase(req, s.Name)
	}
	return h.backend(req, stmt.String())
}

// selectRows runs a SELECT and answers in HyperbyteDB's form: SELECT *
// adds the series_id column of the fact table (timeseriesql/to_clickhouse.rs:1014,
// :1175; adapters/chdb/native_adapter.rs:2035); booleans are UInt8
// columns, answered 1 and 0 (native_adapter.rs:91); column and tag names
// are the sanitized physical names (domain/chdb_naming.rs:86-103,
// :190-199).
func (h *HyperbyteDB) selectRows(req request, s *influxql.SelectStatement) (*result, error) {
	res, err := h.backend(req, s.String())
	if err != nil || res.Error != "" {
		return res, err
	}
	star := s.HasFieldWildcard()
	for _, ser := range res.Series {
		dialectSeries(ser, star)
	}
	return res, nil
}

func dialectSeries(ser *series, star bool) {
	tags := map[string]string{}
	for k, v := range ser.Tags {
		tags[sanitizeIdent(k)] = v
	}
	if ser.Tags != nil {
		ser.Tags = tags
	}
	cols := []string{}
	for i, c := range ser.Columns {
		if i == 0 && c == "time" {
			cols = append(cols, c)
			if star {
				cols = append(cols, "series_id")
			}
			continue
		}
		cols = append(cols, sanitizeIdent(c))
	}
	id := seriesID(ser.Name, ser.Tags)
	for r, row := range ser.Values {
		out := make([]any, 0, len(row)+1)
		for i, v := range row {
			if b, ok := v.(bool); ok {
				v = boolInt(b)
			}
			out = append(out, v)
			if i == 0 && star && ser.Columns[0] == "time" {
				out = append(out, id)
			}
		}
		ser.Values[r] = out
	}
	ser.Columns = cols
}

// seriesID stands for HyperbyteDB's SipHash of the series key
// (domain/series.rs:72); only its presence matters to clients.
func seriesID(name string, tags map[string]string) uint64 {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	f := fnv.New64a()
	f.Write([]byte(name))
	for _, k := range keys {
		fmt.Fprintf(f, ",%s=%s", k, tags[k])
	}
	return f.Sum64() >> 1
}

// sanitizeIdent is HyperbyteDB's sanitise_ident
// (domain/chdb_naming.rs:86-103): every character outside [A-Za-z0-9_]
// becomes _, a leading digit gets a _ in front, empty becomes _.
func sanitizeIdent(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out[0] >= '0' && out[0] <= '9' {
		out = "_" + out
	}
	return out
}

// showFieldKeys answers as query_service.rs:696-735 does: the retention
// policy is the rp parameter or the default, whatever FROM says; without
// FROM, the fields of all measurements come back in one series named "".
func (h *HyperbyteDB) showFieldKeys(req request, s *influxql.ShowFieldKeysStatement) (*result, error) {
	db := firstNonEmpty(s.Database, req.db)
	if db == "" {
		return nil, errDatabaseRequired
	}
	rp, err := h.queryRP(req, db)
	if err != nil {
		return nil, err
	}
	var names []string
	if len(s.Sources) > 0 {
		names = []string{s.Sources[0].(*influxql.Measurement).Name}
	} else if names, err = h.measurementsOf(req, db, rp); err != nil {
		return nil, err
	}
	all := &series{Name: "", Columns: []string{"fieldKey", "fieldType"}, Values: [][]any{}}
	if len(s.Sources) > 0 {
		all.Name = names[0]
	}
	for _, m := range names {
		res, err := h.backend(req, fmt.Sprintf("SHOW FIELD KEYS ON %s FROM %s", influxql.QuoteIdent(db), influxql.QuoteIdent(rp, m)))
		if err != nil {
			return nil, err
		}
		for _, ser := range res.Series {
			all.Values = append(all.Values, ser.Values...)
		}
	}
	return &result{Series: []*series{all}}, nil
}

// queryRP is the retention policy a statement without one runs in: the rp
// parameter or the database's default (query_service.rs:2002-2015).
func (h *HyperbyteDB) queryRP(req request, db string) (string, error) {
	if req.rp != "" {
		return req.rp, nil
	}
	res, err := h.backend(request{auth: req.auth}, "SHOW RETENTION POLICIES ON "+influxql.QuoteIdent(db))
	if err != nil {
		return "", err
	}
	if res.Error != "" {
		return "", fmt.Errorf("%s", res.Error)
	}
	for _, ser := range res.Series {
		for _, row := range ser.Values {
			if def, _ := row[4].(bool); def {
				return fmt.Sprint(row[0]), nil
			}
		}
	}
	return "autogen", nil
}

// measurementsOf lists the measurements with data in db.rp: HyperbyteDB
// lists those whose table exists in rp (query_service.rs:2026-2045).
func (h *HyperbyteDB) measurementsOf(req request, db, rp string) ([]string, error) {
	res, err := h.backend(req, fmt.Sprintf("SHOW FIELD KEYS ON %s FROM %s./.*/", influxql.QuoteIdent(db), influxql.QuoteIdent(rp)))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, ser := range res.Series {
		names = append(names, ser.Name)
	}
	return names, nil
}

// showMeasurements lists db.rp's measurements as HyperbyteDB does: each
// name cut at its last ':' (adapters/metadata/rocksdb_meta.rs:843), sorted
// and deduplicated (:847-848), without those its stale schema cache hides
// after a DROP DATABASE.
func (h *HyperbyteDB) showMeasurements(req request, db string) (*result, error) {
	rp, err := h.queryRP(req, db)
	if err != nil {
		return nil, err
	}
	names, err := h.measurementsOf(req, db, rp)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	stale := h.stale[db]
	h.mu.Unlock()
	seen := map[string]bool{}
	var values [][]any
	for _, n := range names {
		n = n[strings.LastIndex(n, ":")+1:]
		if !seen[n] && !stale[n] {
			seen[n] = true
			values = append(values, []any{n})
		}
	}
	sort.Slice(values, func(i, j int) bool { return values[i][0].(string) < values[j][0].(string) })
	if len(values) == 0 {
		return &result{}, nil
	}
	return &result{Series: []*series{{Name: "measurements", Columns: []string{"name"}, Values: values}}}, nil
}

// showRetentionPolicies reformats durations as format_influx_duration does
// (domain/database.rs:138-171): weeks and days, always a seconds part
// ("1w0s", "2d0s"), "0s" for infinite.
func (h *HyperbyteDB) showRetentionPolicies(req request, s *influxql.ShowRetentionPoliciesStatement) (*result, error) {
	res, err := h.backend(req, s.String())
	if err != nil || res.Error != "" {
		return res, err
	}
	for _, ser := range res.Series {
		for _, row := range ser.Values {
			for _, i := range []int{1, 2} {
				if d, err := time.ParseDuration(fmt.Sprint(row[i])); err == nil {
					row[i] = influxDuration(d)
				}
			}
		}
	}
	return res, nil
}

func influxDuration(d time.Duration) string {
	secs := int64(d / time.Second)
	var b strings.Builder
	for _, u := range []struct {
		n    int64
		unit string
	}{{7 * 86400, "w"}, {86400, "d"}, {3600, "h"}, {60, "m"}} {
		if secs >= u.n {
			fmt.Fprintf(&b, "%d%s", secs/u.n, u.unit)
			secs %= u.n
		}
	}
	fmt.Fprintf(&b, "%ds", secs)
	return b.String()
}

// dropDatabase drops every database whose name starts with name:
// HyperbyteDB deletes the metadata keys starting with "db:<name>", no
// separator after the name (adapters/metadata/rocksdb_meta.rs:501, :511).
// It also leaves the ingest schema cache (application/ingest_metadata.rs:48)
// as it was: the drop clears only the metadata store's own caches
// (rocksdb_meta.rs:528-547), and a write that hits the ingest cache skips
// registering its measurement (ingest_metadata.rs:317-325), so
// measurements written again are missing from SHOW MEASUREMENTS.
func (h *HyperbyteDB) dropDatabase(req request, name string) (*result, error) {
	res, err := h.backend(request{auth: req.auth}, "SHOW DATABASES")
	if err != nil {
		return nil, err
	}
	var victims []string
	for _, ser := range res.Series {
		for _, row := range ser.Values {
			if db := fmt.Sprint(row[0]); strings.HasPrefix(db, name) {
				victims = append(victims, db)
			}
		}
	}
	if len(victims) == 0 {
		return nil, fmt.Errorf("database not found: %s", name)
	}
	for _, db := range victims {
		if err := h.rememberStale(req, db); err != nil {
			return nil, err
		}
		if _, err := h.backend(request{auth: req.auth}, "DROP DATABASE "+influxql.QuoteIdent(db)); err != nil {
			return nil, err
		}
	}
	return &result{}, nil
}

func (h *HyperbyteDB) rememberStale(req request, db string) error {
	res, err := h.backend(request{auth: req.auth}, "SHOW MEASUREMENTS ON "+influxql.QuoteIdent(db))
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stale[db] == nil {
		h.stale[db] = map[string]bool{}
	}
	for _, ser := range res.Series {
		for _, row := range ser.Values {
			h.stale[db][fmt.Sprint(row[0])] = true
		}
	}
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

package export

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/influxdata/influxql"
	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/influx"
)

// Schema queries: which databases, retention policies, measurements and
// field types a server has.

// listDatabases returns the server's databases, sorted.
func listDatabases(ctx context.Context, c *influx.Client) ([]string, error) {
	series, err := c.Query(ctx, influx.Scope{}, "SHOW DATABASES")
	if err != nil {
		return nil, err
	}
	names, err := stringColumn(series, "name")
	sort.Strings(names)
	return names, err
}

// selectDatabases returns the databases to dump: the wanted ones, which
// must all exist, or else every database but _internal.
func selectDatabases(ctx context.Context, c *influx.Client, wanted []string) ([]string, error) {
	all, err := listDatabases(ctx, c)
	if err != nil {
		return nil, err
	}
	if len(wanted) == 0 {
		return slices.DeleteFunc(all, func(db string) bool { return db == internalDBName }), nil
	}
	var missing []string
	for _, db := range wanted {
		if !slices.Contains(all, db) {
			missing = append(missing, db)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("databases not found on the server: %s", strings.Join(missing, ", "))
	}
	out := slices.Clone(wanted)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// retentionPolicies returns db's retention policies.
func retentionPolicies(ctx context.Context, c *influx.Client, db string) ([]RetentionPolicy, error) {
	series, err := c.Query(ctx, influx.Scope{DB: db}, "SHOW RETENTION POLICIES ON "+influxql.QuoteIdent(db))
	if err != nil {
		return nil, err
	}
	var out []RetentionPolicy
	cols := []string{"name", "duration", "shardGroupDuration", "replicaN", "default"}
	err = eachRow(series, cols, func(_ *influx.Series, v []json.RawMessage) error {
		var rp RetentionPolicy
		var dur, shard string
		for i, dst := range []any{&rp.Name, &dur, &shard, &rp.Replication, &rp.Default} {
			if err := json.Unmarshal(v[i], dst); err != nil {
				return fmt.Errorf("column %s: %w", cols[i], err)
			}
		}
		var err1, err2 error
		rp.Duration, err1 = parseDuration(dur)
		rp.ShardDuration, err2 = parseDuration(shard)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("retention policy %s: bad durations %q, %q", rp.Name, dur, shard)
		}
		out = append(out, rp)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retention policies of %s: %w", db, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// parseDuration parses a duration as SHOW RETENTION POLICIES reports it:
// InfluxDB 1.x writes Go durations ("168h0m0s"), HyperbyteDB writes
// weeks and days ("1w0s", "2d0s";
// hyperbytedb/src/domain/database.rs:138, format_influx_duration), which
// time.ParseDuration rejects; InfluxQL's parser takes both. "0s" and
// "INF" mean infinite.
func parseDuration(s string) (time.Duration, error) {
	if strings.EqualFold(s, "INF") {
		return 0, nil
	}
	return influxql.ParseDuration(s)
}

// listMeasurements returns the measurements SHOW MEASUREMENTS lists for
// db with rp as the query's retention policy: all of db's on InfluxDB
// 1.x, those of rp on HyperbyteDB (query_service.rs:552).
func listMeasurements(ctx context.Context, c *influx.Client, db, rp string) ([]string, error) {
	series, err := c.Query(ctx, influx.Scope{DB: db, RP: rp}, "SHOW MEASUREMENTS ON "+influxql.QuoteIdent(db))
	if err != nil {
		return nil, fmt.Errorf("measurements of %s: %w", influxql.QuoteIdent(db, rp), err)
	}
	names, err := stringColumn(series, "name")
	sort.Strings(names)
	return slices.Compact(names), err
}

// fieldTypes returns, for every measurement with data in db.rp, the
// line-protocol kind of each field. It asks per measurement, naming the
// retention policy both in FROM and as the rp parameter: HyperbyteDB
// cannot parse the regex of FROM rp./.*/ and, without FROM, answers all
// measurements' fields in one unnamed series (query_service.rs:696-735);
// it takes the retention policy from rp only (:706).
func fieldTypes(ctx context.Context, c *influx.Client, db, rp string) (map[string]map[string]lineprotocol.ValueKind, error) {
	measurements, err := listMeasurements(ctx, c, db, rp)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]lineprotocol.ValueKind{}
	for _, m := range measurements {
		kinds, err := measurementFields(ctx, c, db, rp, m)
		if err != nil {
			return nil, err
		}
		if len(kinds) > 0 {
			out[m] = kinds
		}
	}
	return out, nil
}

// measurementFields returns the kind of each field of db.rp.m; none when
// the measurement has no data in rp. A field stored with different types
// in different shards is an error: one SELECT cannot return both exactly.
func measurementFields(ctx context.Context, c *influx.Client, db, rp, m string) (map[string]lineprotocol.ValueKind, error) {
	q := fmt.Sprintf("SHOW FIELD KEYS ON %s FROM %s", influxql.QuoteIdent(db), influxql.QuoteIdent(rp, m))
	series, err := c.Query(ctx, influx.Scope{DB: db, RP: rp}, q)
	if err != nil {
		return nil, err
	}
	out := map[string]lineprotocol.ValueKind{}
	err = eachRow(series, []string{"fieldKey", "fieldType"}, func(s *influx.Series, v []json.RawMessage) error {
		var key, typ string
		if err := json.Unmarshal(v[0], &key); err != nil {
			return err
		}
		if err := json.Unmarshal(v[1], &typ); err != nil {
			return err
		}
		kind, ok := fieldKinds[typ]
		if !ok {
			return fmt.Errorf("field %q of %q has unknown type %q", key, m, typ)
		}
		if prev, seen := out[key]; seen && prev != kind {
			return fmt.Errorf("field %q of measurement %q in %s.%s has types %s and %s in different shards; "+
				"a logical dump cannot keep both", key, m, db, rp, prev, kind)
		}
		out[key] = kind
		return nil
	})
	return out, err
}

// tagKeys returns the tag keys of db.rp.m.
func tagKeys(ctx context.Context, c *influx.Client, db, rp, m string) ([]string, error) {
	q := fmt.Sprintf("SHOW TAG KEYS ON %s FROM %s", influxql.QuoteIdent(db), influxql.QuoteIdent(rp, m))
	series, err := c.Query(ctx, influx.Scope{DB: db, RP: rp}, q)
	if err != nil {
		return nil, err
	}
	keys, err := stringColumn(series, "tagKey")
	return keys, err
}

// stringColumn returns the string values of column name of every row.
func stringColumn(series []influx.Series, name string) ([]string, error) {
	var out []string
	err := eachRow(series, []string{name}, func(_ *influx.Series, v []json.RawMessage) error {
		var s string
		if err := json.Unmarshal(v[0], &s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// eachRow calls fn with the values of the named columns of every row.
func eachRow(series []influx.Series, cols []string, fn func(*influx.Series, []json.RawMessage) error) error {
	for i := range series {
		s := &series[i]
		idx := make([]int, len(cols))
		for j, col := range cols {
			idx[j] = slices.Index(s.Columns, col)
			if idx[j] < 0 {
				return fmt.Errorf("answer has no column %q (columns %v)", col, s.Columns)
			}
		}
		picked := make([]json.RawMessage, len(cols))
		for _, row := range s.Values {
			for j, k := range idx {
				if k >= len(row) {
					return fmt.Errorf("row %v is shorter than columns %v", row, s.Columns)
				}
				picked[j] = row[k]
			}
			if err := fn(s, picked); err != nil {
				return err
			}
		}
	}
	return nil
}

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
	series, err := c.Query(ctx, "SHOW DATABASES")
	if err != nil {
		return nil, err
	}
	var names []string
	err = eachRow(series, []string{"name"}, func(_ *influx.Series, v []json.RawMessage) error {
		var name string
		if err := json.Unmarshal(v[0], &name); err != nil {
			return err
		}
		names = append(names, name)
		return nil
	})
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
	series, err := c.Query(ctx, "SHOW RETENTION POLICIES ON "+influxql.QuoteIdent(db))
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
		rp.Duration, err1 = time.ParseDuration(dur)
		rp.ShardDuration, err2 = time.ParseDuration(shard)
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

// fieldTypes returns, for every measurement with data in db.rp, the
// line-protocol kind of each field. A field stored with different types in
// different shards is an error: one SELECT cannot return both exactly.
func fieldTypes(ctx context.Context, c *influx.Client, db, rp string) (map[string]map[string]lineprotocol.ValueKind, error) {
	q := fmt.Sprintf("SHOW FIELD KEYS ON %s FROM %s./.*/", influxql.QuoteIdent(db), influxql.QuoteIdent(rp))
	series, err := c.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]lineprotocol.ValueKind{}
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
			return fmt.Errorf("field %q of %q has unknown type %q", key, s.Name, typ)
		}
		if out[s.Name] == nil {
			out[s.Name] = map[string]lineprotocol.ValueKind{}
		}
		if prev, seen := out[s.Name][key]; seen && prev != kind {
			return fmt.Errorf("field %q of measurement %q in %s.%s has types %s and %s in different shards; "+
				"a logical dump cannot keep both", key, s.Name, db, rp, prev, kind)
		}
		out[s.Name][key] = kind
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

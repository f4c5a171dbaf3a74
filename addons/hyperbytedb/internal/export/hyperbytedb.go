package export

import (
	"context"
	"fmt"
	"strings"

	"github.com/influxdata/influxql"
	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/influx"
)

// What HyperbyteDB cannot hold exactly (docs/hyperbytedb-compatibility.md).
// It keeps names in its metadata as written, but stores each measurement
// of a database and retention policy as a chDB table named
// <db>_<rp>_<measurement> and each tag and field as a column, every part
// sanitized: each character outside [A-Za-z0-9_] becomes _, and a leading
// digit gets a _ in front (hyperbytedb/src/domain/chdb_naming.rs:86-103,
// :107-116, :190-199). Query answers carry the sanitized column names, so
// "usage.idle" comes back as "usage_idle", and names that sanitize alike
// share one column or table. Measurement names are listed by cutting the
// metadata key at its last ':' (adapters/metadata/rocksdb_meta.rs:843).
// The driver refuses all of these, naming the name, instead of changing
// data silently.

// seriesIDColumn is the column HyperbyteDB's SELECT * adds: the wildcard
// selects every column of the fact table (timeseriesql/to_clickhouse.rs:1014,
// :1175), which holds the series key beside the fields
// (adapters/chdb/native_adapter.rs:2035).
const seriesIDColumn = "series_id"

// sanitize is the name HyperbyteDB gives a column or table part.
func sanitize(name string) string {
	if name == "" {
		return "_"
	}
	var b strings.Builder
	for _, r := range name {
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

// tableName is the chDB table HyperbyteDB keeps db.rp.m in.
func tableName(db, rp, m string) string {
	return sanitize(db) + "_" + sanitize(rp) + "_" + sanitize(m)
}

// columnNameError says why a tag or field key cannot round-trip through
// HyperbyteDB, or is nil.
func columnNameError(kind, key string) error {
	if s := sanitize(key); s != key {
		return fmt.Errorf("%s key %q: HyperbyteDB stores and answers it as %q (it keeps only [A-Za-z0-9_] "+
			"in column names), so it cannot be backed up or restored exactly", kind, key, s)
	}
	return nil
}

// checkDumpNames fails the backup of db.rp from HyperbyteDB when a
// measurement's tag or field keys come back changed, or when a listed
// measurement has no fields, which is how a measurement whose name holds a
// ':' shows up (listed under the part after its last ':').
func checkDumpNames(ctx context.Context, c *influx.Client, db, rp string, fields map[string]map[string]lineprotocol.ValueKind) error {
	listed, err := listMeasurements(ctx, c, db, rp)
	if err != nil {
		return err
	}
	for _, m := range listed {
		where := influxql.QuoteIdent(db, rp, m)
		if len(fields[m]) == 0 {
			return fmt.Errorf("measurement %s is listed but has no fields: HyperbyteDB lists a measurement whose name "+
				"holds ':' under the part after the last ':', so its points cannot be read by name", where)
		}
		for key := range fields[m] {
			if err := columnNameError("field", key); err != nil {
				return fmt.Errorf("measurement %s: %w", where, err)
			}
		}
		tags, err := tagKeys(ctx, c, db, rp, m)
		if err != nil {
			return err
		}
		for _, key := range tags {
			if err := columnNameError("tag", key); err != nil {
				return fmt.Errorf("measurement %s: %w", where, err)
			}
		}
	}
	return nil
}

// measurementNameError says why HyperbyteDB cannot hold a measurement
// name exactly, or is nil.
func measurementNameError(m string) error {
	if strings.Contains(m, ":") {
		return fmt.Errorf("measurement %q holds ':': HyperbyteDB lists it as %q and cannot read it back by name",
			m, m[strings.LastIndex(m, ":")+1:])
	}
	return nil
}

// clearDatabase empties db on HyperbyteDB for a replace-mode restore by
// deleting every measurement's points, retention policy by retention
// policy. DROP DATABASE is no option there: it deletes the metadata of
// every database whose name starts with db's
// (adapters/metadata/rocksdb_meta.rs:501, key prefix "db:<name>" without
// a separator) and leaves the ingest schema cache, so measurements
// written again after the drop can be missing from SHOW MEASUREMENTS.
// DELETE is scoped by the rp parameter (application/query_service.rs:924).
func clearDatabase(ctx context.Context, c *influx.Client, db string) error {
	policies, err := retentionPolicies(ctx, c, db)
	if err != nil {
		return err
	}
	for _, rp := range policies {
		measurements, err := listMeasurements(ctx, c, db, rp.Name)
		if err != nil {
			return err
		}
		for _, m := range measurements {
			if err := c.Exec(ctx, influx.Scope{DB: db, RP: rp.Name}, "DELETE FROM "+influxql.QuoteIdent(m)); err != nil {
				return fmt.Errorf("delete the points of %s: %w", influxql.QuoteIdent(db, rp.Name, m), err)
			}
		}
	}
	return nil
}

// Package export writes and reads HyperbyteDB/InfluxDB logical dumps in the
// InfluxDB export format (what `influx_inspect export` writes and `influx
// -import` reads):
//
//	# INFLUXDB EXPORT: <start> - <end>
//	# DDL
//	CREATE DATABASE "db" WITH DURATION INF REPLICATION 1 SHARD DURATION 1w NAME "autogen"
//	CREATE RETENTION POLICY "short" ON "db" DURATION 1h REPLICATION 1 SHARD DURATION 1h
//	# DML
//	# CONTEXT-DATABASE:db
//	# CONTEXT-RETENTION-POLICY:autogen
//	cpu,host=a usage=0.5,count=3i 1700000000000000000
//
// Points are line protocol as the v2 specification writes it
// (github.com/influxdata/line-protocol/v2): in particular a newline, tab or
// carriage return inside a string field is escaped (\n, \t, \r), so every
// point is exactly one line and a comment line can never be data. InfluxDB
// 1.x does not unescape those three in /write; Load therefore re-encodes
// such points in the 1.x dialect, and `influx -import` of a dump keeps
// them escaped (its only difference from Load).
package export

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/influxql"
)

// Markers of the export format.
const (
	headerPrefix   = "# INFLUXDB EXPORT: "
	ddlMarker      = "# DDL"
	dmlMarker      = "# DML"
	contextDB      = "# CONTEXT-DATABASE:"
	contextRP      = "# CONTEXT-RETENTION-POLICY:"
	internalDBName = "_internal"
)

// RetentionPolicy is a retention policy as SHOW RETENTION POLICIES reports
// it.
type RetentionPolicy struct {
	Name          string
	Duration      time.Duration // 0 is infinite
	ShardDuration time.Duration
	Replication   int
	Default       bool
}

// createDatabase renders the statement creating db with rp as its default
// (and only) retention policy, so no "autogen" appears that the original
// did not have.
func createDatabase(db string, rp RetentionPolicy) string {
	return fmt.Sprintf("CREATE DATABASE %s WITH DURATION %s REPLICATION %d SHARD DURATION %s NAME %s",
		influxql.QuoteIdent(db), duration(rp.Duration), rp.Replication,
		influxql.FormatDuration(rp.ShardDuration), influxql.QuoteIdent(rp.Name))
}

// createRetentionPolicy renders the statement creating rp on db.
func createRetentionPolicy(db string, rp RetentionPolicy) string {
	s := fmt.Sprintf("CREATE RETENTION POLICY %s ON %s DURATION %s REPLICATION %d SHARD DURATION %s",
		influxql.QuoteIdent(rp.Name), influxql.QuoteIdent(db), duration(rp.Duration), rp.Replication,
		influxql.FormatDuration(rp.ShardDuration))
	if rp.Default {
		s += " DEFAULT"
	}
	return s
}

// alterRetentionPolicy renders the statement giving the existing rp on db
// the definition rp has (and making it the default when it is).
func alterRetentionPolicy(db string, rp RetentionPolicy) string {
	return "ALTER" + strings.TrimPrefix(createRetentionPolicy(db, rp), "CREATE")
}

func duration(d time.Duration) string {
	if d == 0 {
		return "INF"
	}
	return influxql.FormatDuration(d)
}

// databaseSchema is what the DDL says about one database.
type databaseSchema struct {
	name     string
	policies []RetentionPolicy // the default first
}

// ddlStatements renders a database's schema: CREATE DATABASE with the
// default policy, then the other policies by name.
func ddlStatements(db string, policies []RetentionPolicy) []string {
	if len(policies) == 0 {
		return []string{"CREATE DATABASE " + influxql.QuoteIdent(db)}
	}
	sorted := append([]RetentionPolicy(nil), policies...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Default != sorted[j].Default {
			return sorted[i].Default
		}
		return sorted[i].Name < sorted[j].Name
	})
	out := []string{createDatabase(db, sorted[0])}
	for _, rp := range sorted[1:] {
		out = append(out, createRetentionPolicy(db, rp))
	}
	return out
}

// parseDDL parses one DDL line of a dump with the InfluxQL parser. It
// returns the database and, unless the line is a bare CREATE DATABASE,
// the retention policy it creates.
func parseDDL(line string) (string, *RetentionPolicy, error) {
	stmt, err := influxql.ParseStatement(line)
	if err != nil {
		return "", nil, err
	}
	switch s := stmt.(type) {
	case *influxql.CreateDatabaseStatement:
		if !s.RetentionPolicyCreate {
			return s.Name, nil, nil
		}
		rp := &RetentionPolicy{Name: s.RetentionPolicyName, ShardDuration: s.RetentionPolicyShardGroupDuration, Replication: 1, Default: true}
		if s.RetentionPolicyDuration != nil {
			rp.Duration = *s.RetentionPolicyDuration
		}
		if s.RetentionPolicyReplication != nil {
			rp.Replication = *s.RetentionPolicyReplication
		}
		return s.Name, rp, nil
	case *influxql.CreateRetentionPolicyStatement:
		return s.Database, &RetentionPolicy{
			Name: s.Name, Duration: s.Duration, ShardDuration: s.ShardGroupDuration,
			Replication: s.Replication, Default: s.Default,
		}, nil
	}
	return "", nil, fmt.Errorf("unsupported DDL statement %q: want CREATE DATABASE or CREATE RETENTION POLICY", line)
}

// exportHeader is the first line of a dump. It states the time window so
// that the same window always gives the same bytes.
func exportHeader(start, end time.Time) string {
	return headerPrefix + windowBound(start, minTime) + " - " + windowBound(end, maxTime)
}

var (
	minTime = time.Unix(0, influxql.MinTime).UTC()
	maxTime = time.Unix(0, influxql.MaxTime).UTC()
)

func windowBound(t, unbounded time.Time) string {
	if t.IsZero() {
		t = unbounded
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// contextName checks a database or retention policy name can stand on a
// context line: the format has no escaping there.
func contextName(kind, name string) error {
	if strings.ContainsAny(name, "\n\r") {
		return fmt.Errorf("%s name %s contains a line break, which the export format cannot carry", kind, strconv.Quote(name))
	}
	return nil
}

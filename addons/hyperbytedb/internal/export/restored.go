package export

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/influxdata/influxql"
	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/influx"
)

// batchSchema is what the points of one batch name: per measurement, its
// tag keys and the kind of each field. It is filled while the batch is
// checked, without allocating for names already seen.
type batchSchema struct {
	fields map[string]map[string]lineprotocol.ValueKind
	tags   map[string]map[string]struct{}
	// hyper: the batch goes to HyperbyteDB, whose parser changes names
	// with backslashes (backslashEscape).
	hyper bool
}

func (s *batchSchema) reset() {
	if s.fields == nil {
		s.fields = map[string]map[string]lineprotocol.ValueKind{}
		s.tags = map[string]map[string]struct{}{}
	}
	clear(s.fields)
	clear(s.tags)
}

// measurement returns the field and tag sets of m, creating them.
func (s *batchSchema) measurement(m []byte) (map[string]lineprotocol.ValueKind, map[string]struct{}) {
	f, ok := s.fields[string(m)]
	if !ok {
		f = map[string]lineprotocol.ValueKind{}
		s.fields[string(m)] = f
		s.tags[string(m)] = map[string]struct{}{}
	}
	return f, s.tags[string(m)]
}

// field records a field of a point; a kind other than an earlier point's
// is an error, which InfluxDB 1.x would reject and HyperbyteDB would
// silently widen (hyperbytedb/src/domain/field_type.rs:11,
// application/ingest_metadata.rs:499).
func (s *batchSchema) field(fields map[string]lineprotocol.ValueKind, key []byte, kind lineprotocol.ValueKind) error {
	prev, ok := fields[string(key)]
	if !ok {
		fields[string(key)] = kind
		return nil
	}
	if prev != kind {
		return fmt.Errorf("field %q is %s here and %s at an earlier point", key, typeName(kind), typeName(prev))
	}
	return nil
}

// measurementKey names a restored measurement by its server names.
type measurementKey struct{ db, rp, m string }

func (k measurementKey) String() string { return influxql.QuoteIdent(k.db, k.rp, k.m) }

// restoredSchema gathers the measurements and field kinds of everything a
// restore writes, checks each new name before its first write (on
// HyperbyteDB, against what it cannot hold), and verifies the server
// after the restore.
type restoredSchema struct {
	client *influx.Client
	hyper  bool

	mu       sync.Mutex
	fields   map[measurementKey]map[string]lineprotocol.ValueKind
	tables   map[string]measurementKey                            // HyperbyteDB table name → measurement
	existing map[measurementKey]map[string]lineprotocol.ValueKind // HyperbyteDB fields before the restore
}

func newRestoredSchema(c *influx.Client) *restoredSchema {
	return &restoredSchema{
		client: c, hyper: c.HyperbyteDB(),
		fields: map[measurementKey]map[string]lineprotocol.ValueKind{}, tables: map[string]measurementKey{},
		existing: map[measurementKey]map[string]lineprotocol.ValueKind{},
	}
}

// add merges the schema of a batch for db.rp (server names) before it is
// written.
func (r *restoredSchema) add(ctx context.Context, db, rp string, b *batchSchema) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for m, fields := range b.fields {
		key := measurementKey{db, rp, m}
		have, known := r.fields[key]
		if !known {
			if err := r.newMeasurement(ctx, key, b.tags[m]); err != nil {
				return err
			}
			have = map[string]lineprotocol.ValueKind{}
			r.fields[key] = have
		}
		for f, kind := range fields {
			if err := r.addField(key, have, f, kind); err != nil {
				return err
			}
		}
		if r.hyper {
			for tag := range b.tags[m] {
				if err := columnNameError("tag", tag); err != nil {
					return fmt.Errorf("measurement %s: %w", key, err)
				}
			}
		}
	}
	return nil
}

func (r *restoredSchema) addField(key measurementKey, have map[string]lineprotocol.ValueKind, f string, kind lineprotocol.ValueKind) error {
	if prev, ok := have[f]; ok && prev != kind {
		return fmt.Errorf("measurement %s: field %q is %s at one point and %s at another", key, f, typeName(prev), typeName(kind))
	}
	if _, ok := have[f]; ok {
		return nil
	}
	have[f] = kind
	if !r.hyper {
		return nil
	}
	if err := columnNameError("field", f); err != nil {
		return fmt.Errorf("measurement %s: %w", key, err)
	}
	if prev, ok := r.existing[key][f]; ok && prev != kind {
		return fmt.Errorf("measurement %s: field %q is %s on the server and %s in the backup; "+
			"HyperbyteDB would convert the values silently (domain/field_type.rs:11)", key, f, typeName(prev), typeName(kind))
	}
	return nil
}

// newMeasurement checks a measurement's name on HyperbyteDB and notes its
// fields on the server.
func (r *restoredSchema) newMeasurement(ctx context.Context, key measurementKey, tags map[string]struct{}) error {
	if !r.hyper {
		return nil
	}
	if err := measurementNameError(key.m); err != nil {
		return fmt.Errorf("database %q, retention policy %q: %w", key.db, key.rp, err)
	}
	table := tableName(key.db, key.rp, key.m)
	if other, clash := r.tables[table]; clash {
		return fmt.Errorf("measurements %s and %s would share HyperbyteDB's table %s (names are sanitized to "+
			"[A-Za-z0-9_]), mixing their points", other, key, table)
	}
	r.tables[table] = key
	existing, err := measurementFields(ctx, r.client, key.db, key.rp, key.m)
	if err != nil {
		return fmt.Errorf("fields of %s on the server: %w", key, err)
	}
	r.existing[key] = existing
	return nil
}

// verify checks that the server lists every restored measurement, in its
// retention policy, with every restored field at its kind.
func (r *restoredSchema) verify(ctx context.Context) error {
	keys := make([]measurementKey, 0, len(r.fields))
	for k := range r.fields {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	listed := map[[2]string][]string{}
	for _, key := range keys {
		names, ok := listed[[2]string{key.db, key.rp}]
		if !ok {
			var err error
			if names, err = listMeasurements(ctx, r.client, key.db, key.rp); err != nil {
				return err
			}
			listed[[2]string{key.db, key.rp}] = names
		}
		if !slices.Contains(names, key.m) {
			return fmt.Errorf("after the restore the server does not list measurement %s", key)
		}
		have, err := measurementFields(ctx, r.client, key.db, key.rp, key.m)
		if err != nil {
			return err
		}
		for f, kind := range r.fields[key] {
			if got, ok := have[f]; !ok || got != kind {
				return fmt.Errorf("after the restore field %q of %s is %s on the server, %s in the backup", f, key, kindName(got, ok), typeName(kind))
			}
		}
	}
	return nil
}

func kindName(k lineprotocol.ValueKind, ok bool) string {
	if !ok {
		return "missing"
	}
	return typeName(k)
}

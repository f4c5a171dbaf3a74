package export

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/influxdata/influxql"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/influx"
)

// Mode says what happens to databases that already exist on restore.
type Mode string

const (
	// ModeMerge writes the dump's points into existing databases; points
	// not in the dump stay.
	ModeMerge Mode = "merge"
	// ModeReplace drops each restored database first, so afterwards it
	// holds exactly the dump's points.
	ModeReplace Mode = "replace"
)

// LoadOptions selects what Load restores and how.
type LoadOptions struct {
	// Mode is ModeMerge or ModeReplace.
	Mode Mode
	// Databases are the dump's databases to restore; empty means all.
	Databases []string
	// Rename maps a database of the dump to the name it gets on the server.
	Rename map[string]string
	// BatchSize is the number of points per write; 0 means
	// DefaultBatchSize.
	BatchSize int
	// Writers is the number of concurrent writes; 0 means DefaultWriters.
	Writers int
}

// Defaults of LoadOptions: the batch of InfluxDB's own importer, two
// writes at a time. (Larger batches measured no better on the shared
// benchmark machine: docs/performance.md.)
const (
	DefaultBatchSize = 5000
	DefaultWriters   = 2
)

// maxBatchBytes ends a batch before its point count does when lines are
// long: InfluxDB 1.x refuses bodies over 25 MB (max-body-size).
const maxBatchBytes = 8 << 20

// LoadStats counts what Load did.
type LoadStats struct {
	// Points written.
	Points int64
	// Skipped points of databases not selected.
	Skipped int64
	// Databases restored, by their names on the server (after renaming).
	Databases []string
}

const (
	sectionNone = iota
	sectionDDL
	sectionDML
)

// Load restores a dump read from r: it creates (or, in replace mode,
// recreates) the selected databases with their retention policies, then
// writes their points in batches. It stops at the first line it cannot
// parse or the first write the server rejects, naming the dump line.
func Load(ctx context.Context, c *influx.Client, opts LoadOptions, r io.Reader) (LoadStats, error) {
	if opts.Mode != ModeMerge && opts.Mode != ModeReplace {
		return LoadStats{}, fmt.Errorf("unknown restore mode %q: want merge or replace", opts.Mode)
	}
	opts.BatchSize = cmpOr(opts.BatchSize, DefaultBatchSize)
	opts.Writers = cmpOr(opts.Writers, DefaultWriters)
	restored := newRestoredSchema(c)
	pool, wctx := newWriterPool(ctx, c, restored, opts.Writers)
	l := &loader{client: c, opts: opts, pool: pool, schemas: map[string]*databaseSchema{}}
	err := l.run(wctx, r)
	if err == nil {
		err = l.pool.submit(wctx, l.batch)
	}
	if cerr := l.pool.close(); cerr != nil {
		err = cerr // the writers' error explains a cancelled read
	}
	if err == nil {
		err = restored.verify(ctx)
	}
	return l.stats, err
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

type loader struct {
	client  *influx.Client
	opts    LoadOptions
	pool    *writerPool
	section int
	schemas map[string]*databaseSchema
	order   []string // databases in DDL order
	lineNo  int
	db, rp  string // context of the current points, dump names
	target  string // server name of db, "" when db is not restored
	batch   *batch
	stats   LoadStats
}

func (l *loader) run(ctx context.Context, r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			continue
		}
		if len(long) > 0 {
			line = append(long, line...)
			long = long[:0]
		}
		if len(line) > 0 {
			l.lineNo++
			if lerr := l.line(ctx, bytes.TrimSuffix(line, []byte{'\n'})); lerr != nil {
				return lerr
			}
		}
		if errors.Is(err, io.EOF) {
			return l.finish(ctx)
		}
		if err != nil {
			return fmt.Errorf("read dump at line %d: %w", l.lineNo, err)
		}
	}
}

func (l *loader) line(ctx context.Context, line []byte) error {
	trimmed, comment, blank := classify(line)
	switch {
	case blank:
		return nil
	case comment:
		return l.directive(ctx, string(trimmed))
	case l.section == sectionDDL:
		return l.ddl(string(line))
	case l.section == sectionDML:
		return l.point(ctx, line)
	}
	return fmt.Errorf("line %d: data before %q or %q", l.lineNo, ddlMarker, dmlMarker)
}

func (l *loader) directive(ctx context.Context, line string) error {
	switch {
	case line == ddlMarker:
		l.section = sectionDDL
	case line == dmlMarker:
		if err := l.applySchema(ctx); err != nil {
			return err
		}
		l.section = sectionDML
	case strings.HasPrefix(line, contextDB):
		l.db, l.rp = strings.TrimPrefix(line, contextDB), ""
		l.target = ""
		if l.selected(l.db) {
			l.target = l.rename(l.db)
		}
		return l.switchBatch(ctx)
	case strings.HasPrefix(line, contextRP):
		l.rp = strings.TrimPrefix(line, contextRP)
		return l.switchBatch(ctx)
	}
	return nil // the header and other comments
}

func (l *loader) ddl(line string) error {
	db, rp, err := parseDDL(line)
	if err != nil {
		return fmt.Errorf("line %d: %w", l.lineNo, err)
	}
	s, ok := l.schemas[db]
	if !ok {
		s = &databaseSchema{name: db}
		l.schemas[db] = s
		l.order = append(l.order, db)
	}
	if rp != nil {
		s.policies = append(s.policies, *rp)
	}
	return nil
}

func (l *loader) point(ctx context.Context, line []byte) error {
	if l.target == "" {
		if l.db == "" {
			return fmt.Errorf("line %d: point before any %q line", l.lineNo, contextDB)
		}
		l.stats.Skipped++
		return nil
	}
	l.batch.add(l.lineNo, line)
	l.stats.Points++
	if len(l.batch.lines) >= l.opts.BatchSize || len(l.batch.buf) >= maxBatchBytes {
		return l.switchBatch(ctx)
	}
	return nil
}

// switchBatch submits the current batch and starts one for the current
// context.
func (l *loader) switchBatch(ctx context.Context) error {
	if l.batch != nil {
		if err := l.pool.submit(ctx, l.batch); err != nil {
			return err
		}
	}
	var err error
	l.batch, err = l.pool.get(ctx, l.target, l.rp)
	return err
}

func (l *loader) finish(ctx context.Context) error {
	if l.section != sectionDML {
		if err := l.applySchema(ctx); err != nil {
			return err
		}
	}
	if l.batch == nil {
		return l.switchBatch(ctx) // an empty batch for Load to submit
	}
	return nil
}

func (l *loader) selected(db string) bool {
	return len(l.opts.Databases) == 0 || slices.Contains(l.opts.Databases, db)
}

func (l *loader) rename(db string) string {
	if to, ok := l.opts.Rename[db]; ok {
		return to
	}
	return db
}

// applySchema checks the selection against the dump, then creates the
// restored databases: emptied first in replace mode (dropped on InfluxDB
// 1.x, see clearDatabase for HyperbyteDB); an existing database keeps its
// policies and gets the missing ones.
func (l *loader) applySchema(ctx context.Context) error {
	targets, err := l.targets()
	if err != nil {
		return err
	}
	existing, err := listDatabases(ctx, l.client)
	if err != nil {
		return err
	}
	for _, db := range l.order {
		target, ok := targets[db]
		if !ok {
			continue
		}
		exists := slices.Contains(existing, target)
		if exists && l.opts.Mode == ModeReplace {
			if exists, err = l.empty(ctx, target); err != nil {
				return fmt.Errorf("replace database %q: %w", target, err)
			}
		}
		if err := l.createSchema(ctx, target, l.schemas[db].policies, exists); err != nil {
			return fmt.Errorf("create database %q: %w", target, err)
		}
		l.stats.Databases = append(l.stats.Databases, target)
	}
	return nil
}

// empty removes target's points for a replace-mode restore and reports
// whether the database still exists.
func (l *loader) empty(ctx context.Context, target string) (bool, error) {
	if l.client.HyperbyteDB() {
		return true, clearDatabase(ctx, l.client, target)
	}
	return false, l.client.Exec(ctx, influx.Scope{}, "DROP DATABASE "+influxql.QuoteIdent(target))
}

func (l *loader) createSchema(ctx context.Context, target string, policies []RetentionPolicy, exists bool) error {
	if !exists {
		for _, stmt := range ddlStatements(target, policies) {
			if err := l.client.Exec(ctx, influx.Scope{}, stmt); err != nil {
				return err
			}
		}
		return nil
	}
	have, err := retentionPolicies(ctx, l.client, target)
	if err != nil {
		return err
	}
	// Merging keeps the server's policies and default as they are. A
	// replace that found the database still there (HyperbyteDB, where it is
	// emptied rather than dropped: clearDatabase) gives the dump's policies
	// their definitions and the dump's default back.
	replace := l.opts.Mode == ModeReplace
	for _, rp := range policies {
		existing := slices.ContainsFunc(have, func(h RetentionPolicy) bool { return h.Name == rp.Name })
		var stmt string
		switch {
		case replace && existing:
			stmt = alterRetentionPolicy(target, rp)
		case existing:
			continue
		case replace:
			stmt = createRetentionPolicy(target, rp)
		default:
			rp.Default = false
			stmt = createRetentionPolicy(target, rp)
		}
		if err := l.client.Exec(ctx, influx.Scope{DB: target}, stmt); err != nil {
			return err
		}
	}
	return nil
}

// targets maps each restored database of the dump to its server name,
// rejecting a selection or rename naming databases the dump lacks and two
// databases restored under one name.
func (l *loader) targets() (map[string]string, error) {
	var missing []string
	for _, db := range l.opts.Databases {
		if l.schemas[db] == nil {
			missing = append(missing, db)
		}
	}
	for db := range l.opts.Rename {
		if l.schemas[db] == nil && !slices.Contains(missing, db) {
			missing = append(missing, db)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("databases not in the backup: %s", strings.Join(missing, ", "))
	}
	out := map[string]string{}
	owner := map[string]string{}
	for _, db := range l.order {
		if !l.selected(db) {
			continue
		}
		target := l.rename(db)
		if other, dup := owner[target]; dup {
			return nil, fmt.Errorf("databases %q and %q would both be restored as %q", other, db, target)
		}
		owner[target], out[db] = db, target
	}
	return out, nil
}

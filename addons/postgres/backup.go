package postgres

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"
)

// restrictKey is the \restrict key pg_dump and pg_dumpall write into the
// dump (since PostgreSQL 15.14 they write a random one by default, which
// would make every dump differ). The restore drops these lines and starts
// each psql with a random key of its own, so a crafted value in the dump
// can never end restricted mode.
const restrictKey = "keepsakepostgresdump"

// listQuery lists the databases that accept connections with what
// re-creating them needs. to_jsonb reads the locale provider columns on
// servers that have them (15 and later) and yields NULL on older ones.
const listQuery = `SELECT d.datname, pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.pg_encoding_to_char(d.encoding),
  d.datcollate, d.datctype, coalesce(to_jsonb(d)->>'datlocprovider', ''), coalesce(to_jsonb(d)->>'daticulocale', '')
FROM pg_catalog.pg_database d WHERE d.datallowconn AND NOT d.datistemplate ORDER BY d.datname;
`

// listDatabases returns the server's databases that accept connections.
func listDatabases(ctx context.Context, c conn) ([]database, error) {
	t := newTool(ctx, c, c.maintenance, "list databases: psql", "psql", "-X", "-q", "--csv", "-t", "-v", "ON_ERROR_STOP=1")
	out, err := t.run(strings.NewReader(listQuery))
	if err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("list databases: psql's CSV: %w", err)
	}
	dbs := make([]database, 0, len(rows))
	for _, r := range rows {
		if len(r) != 7 {
			return nil, fmt.Errorf("list databases: psql returned %d columns, want 7", len(r))
		}
		dbs = append(dbs, database{Name: r[0], Owner: r[1], Encoding: r[2], Collate: r[3], Ctype: r[4], Provider: r[5], ICULocale: r[6]})
	}
	return dbs, nil
}

// selectDatabases returns the databases named, in the server's order, or
// all when none is named.
func selectDatabases(all []database, names []string) ([]database, error) {
	if len(names) == 0 {
		return all, nil
	}
	var missing []string
	for _, n := range names {
		if !slices.ContainsFunc(all, func(db database) bool { return db.Name == n }) {
			missing = append(missing, fmt.Sprintf("%q", n))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: database %s does not exist on the server or does not accept connections",
			ParamDatabases, strings.Join(missing, ", "))
	}
	return slices.DeleteFunc(slices.Clone(all), func(db database) bool { return !slices.Contains(names, db.Name) }), nil
}

// dumpBufferSize is the write buffer in front of the SDK's stream: the
// tools' output arrives line by line.
const dumpBufferSize = 256 << 10

// dump writes the whole dump of dbs to w: the header, the globals, each
// database, the end frame.
func dump(ctx context.Context, c conn, dbs []database, w io.Writer) error {
	bw := bufio.NewWriterSize(w, dumpBufferSize)
	if err := writeFrame(bw, headerFrame); err != nil {
		return err
	}
	if err := writeFrame(bw, globalsFrame); err != nil {
		return err
	}
	globals := newTool(ctx, c, c.maintenance, "pg_dumpall --globals-only", "pg_dumpall",
		"--globals-only", "--restrict-key="+restrictKey, "--database="+c.maintenance)
	if err := dumpSection(globals, bw); err != nil {
		return err
	}
	for _, db := range dbs {
		if err := writeDatabaseFrame(bw, db); err != nil {
			return err
		}
		t := newTool(ctx, c, db.Name, fmt.Sprintf("pg_dump of database %q", db.Name), "pg_dump",
			"--format=plain", "--no-password", "--restrict-key="+restrictKey)
		if err := dumpSection(t, bw); err != nil {
			return err
		}
	}
	if err := writeFrame(bw, endFrame); err != nil {
		return err
	}
	return bw.Flush()
}

// dumpSection runs t and copies its standard output into w. A write that
// fails kills the tool; the tool's own failure wins over the copy's.
func dumpSection(t *tool, w io.Writer) error {
	out, err := t.StdoutPipe()
	if err != nil {
		return err
	}
	if err := t.Start(); err != nil {
		return err
	}
	if err := copySection(w, out); err != nil {
		_ = t.Kill()
		_ = t.Wait()
		if cause := context.Cause(t.ctx); cause != nil {
			return fmt.Errorf("%s stopped: %w", t.what, cause)
		}
		return fmt.Errorf("%s: send the dump: %w", t.what, err)
	}
	return t.Wait()
}

package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// psqlArgs run a dump section: stop at the first error and print the
// failed statement with it, read no ~/.psqlrc, never prompt.
var psqlArgs = []string{"-X", "-q", "-w", "-v", "ON_ERROR_STOP=1", "--echo-errors"}

// restore loads the dump on r as opts say.
func restore(ctx context.Context, c conn, opts restoreOptions, r io.Reader) (restored []string, err error) {
	d := newDecoder(r)
	if err := d.header(); err != nil {
		return nil, err
	}
	var seen []string
	for {
		f, err := d.frame()
		if err != nil {
			return restored, err
		}
		switch f.kind {
		case frameEnd:
			if err := d.rest(); err != nil {
				return restored, err
			}
			return restored, checkSeen(opts, seen)
		case frameGlobals:
			err = restoreGlobals(ctx, c, opts, d)
		case frameDatabase:
			seen = append(seen, f.db.Name)
			err = restoreDatabase(ctx, c, opts, f.db, d)
			if err == nil && opts.selected(f.db.Name) {
				restored = append(restored, opts.target(f.db.Name))
			}
		}
		if err != nil {
			return restored, err
		}
	}
}

// checkSeen fails when a database the parameters name is not in the dump:
// a restore that silently skipped it would look like a success.
func checkSeen(opts restoreOptions, seen []string) error {
	named := slices.Clone(opts.databases)
	for from := range opts.rename {
		named = append(named, from)
	}
	for _, n := range named {
		if !slices.Contains(seen, n) {
			return fmt.Errorf("database %q is not in the backup, which holds %s", n, quoteAll(seen))
		}
	}
	return nil
}

// restoreGlobals runs the roles and tablespaces of the dump on the
// maintenance database. A role that exists already is altered to the
// backed-up attributes and password rather than failing the restore.
func restoreGlobals(ctx context.Context, c conn, opts restoreOptions, d *decoder) error {
	if !opts.globals {
		return d.copySection(io.Discard, nil)
	}
	t := newTool(ctx, c, c.maintenance, "restore roles and tablespaces: psql", "psql", psqlArgs...)
	rewrite := map[string]func([]byte) []byte{
		`\restrict `:   dropRestrict,
		`\unrestrict `: dropRestrict,
		"CREATE ROLE ": createRoleIfMissing,
	}
	return load(t, d, rewrite)
}

// restoreDatabase makes the target database ready and loads the section
// into it in one transaction.
func restoreDatabase(ctx context.Context, c conn, opts restoreOptions, db database, d *decoder) error {
	if !opts.selected(db.Name) {
		return d.copySection(io.Discard, nil)
	}
	target := opts.target(db.Name)
	what := fmt.Sprintf("restore database %q", target)
	if target != db.Name {
		what += fmt.Sprintf(" (backed up as %q)", db.Name)
	}
	if err := prepareDatabase(ctx, c, opts.mode, db, target, what); err != nil {
		return err
	}
	t := newTool(ctx, c, target, what+": psql", "psql", append(slices.Clone(psqlArgs), "--single-transaction")...)
	rewrite := map[string]func([]byte) []byte{`\restrict `: dropRestrict, `\unrestrict `: dropRestrict}
	return load(t, d, rewrite)
}

// load feeds the current section of d into psql t. psql is started
// restricted with a key of the driver's own, so nothing in the dump can run
// a meta-command. When reading the dump fails, psql is killed before its
// input closes: it would take the close for the end of a whole section and
// commit.
func load(t *tool, d *decoder, rewrite map[string]func([]byte) []byte) error {
	in, err := t.StdinPipe()
	if err != nil {
		return err
	}
	t.Stdout = io.Discard // results of lo_open and the like
	if err := t.Start(); err != nil {
		return err
	}
	sink := &errWriter{w: in}
	_, _ = fmt.Fprintf(sink, "\\restrict %s\n", randomKey())
	if err := d.copySection(sink, rewrite); err != nil {
		if sink.err == nil {
			_ = t.Kill()
			_ = t.Wait()
			return fmt.Errorf("%s: %w", t.what, err)
		}
		_ = in.Close()
		if waitErr := t.Wait(); waitErr != nil {
			return waitErr
		}
		return fmt.Errorf("%s: stopped reading the dump: %w", t.what, sink.err)
	}
	if err := in.Close(); err != nil {
		return err
	}
	return t.Wait()
}

// prepareDatabase creates target, drops and re-creates it (replace), or
// checks that the existing one is empty (create). It works from the
// maintenance database, or from template1 when that is the target.
func prepareDatabase(ctx context.Context, c conn, mode string, db database, target, what string) error {
	admin := c.maintenance
	if target == admin {
		admin = "template1" // a database cannot be dropped from a session on it
	}
	n, err := query(ctx, c, admin, what, "SELECT count(*) FROM pg_catalog.pg_database WHERE datname = :'name';", "name", target)
	switch {
	case err != nil:
		return err
	case n == 0:
		return createDatabase(ctx, c, admin, db, target, what)
	case mode == ModeReplace:
		if _, err := query(ctx, c, admin, what, `DROP DATABASE :"name" WITH (FORCE);`, "name", target); err != nil {
			return err
		}
		return createDatabase(ctx, c, admin, db, target, what)
	}
	objects, err := query(ctx, c, target, what, objectsQuery)
	if err != nil {
		return err
	}
	if objects > 0 {
		return fmt.Errorf("%s: the database exists and is not empty (%d relations, functions or large objects): "+
			"set %s=%s to drop and re-create it, or restore under another name with %s",
			what, objects, ParamMode, ModeReplace, ParamDatabaseMapping)
	}
	return nil
}

// objectsQuery counts what a database holds beyond the catalogs.
const objectsQuery = `SELECT (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%')
  + (SELECT count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
  + (SELECT count(*) FROM pg_catalog.pg_largeobject_metadata);
`

// createDatabase creates target as db was: owner, encoding and locale.
func createDatabase(ctx context.Context, c conn, admin string, db database, target, what string) error {
	sql := `CREATE DATABASE :"name" WITH TEMPLATE template0 OWNER :"owner" ENCODING :'encoding' LC_COLLATE :'collate' LC_CTYPE :'ctype'`
	vars := []string{"name", target, "owner", db.Owner, "encoding", db.Encoding, "collate", db.Collate, "ctype", db.Ctype}
	if db.Provider == "i" {
		sql += ` LOCALE_PROVIDER icu ICU_LOCALE :'iculocale'`
		vars = append(vars, "iculocale", db.ICULocale)
	}
	_, err := query(ctx, c, admin, what, sql+";", vars...)
	return err
}

// query runs sql on database with psql variables name, value, ... (which
// psql quotes as :'name' or :"name") and returns the number the last
// statement printed, or 0.
func query(ctx context.Context, c conn, database, what, sql string, vars ...string) (int64, error) {
	args := slices.Clone(psqlArgs)
	args = append(args, "-t", "-A")
	for i := 0; i+1 < len(vars); i += 2 {
		args = append(args, "-v", vars[i]+"="+vars[i+1])
	}
	out, err := newTool(ctx, c, database, what+": psql", "psql", args...).run(strings.NewReader(sql))
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(out))
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s[strings.LastIndexByte(s, '\n')+1:], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: psql printed %q, not a number", what, truncate(s, 40))
	}
	return n, nil
}

// dropRestrict drops the \restrict and \unrestrict lines with the key the
// backup wrote; other lines stay as they are.
func dropRestrict(line []byte) []byte {
	s := strings.TrimSuffix(string(line), "\n")
	if s == `\restrict `+restrictKey || s == `\unrestrict `+restrictKey {
		return nil
	}
	return line
}

// roleTag is the dollar quote createRoleIfMissing wraps a statement in.
const roleTag = "$keepsake_role$"

// createRoleIfMissing turns pg_dumpall's `CREATE ROLE name;` into a block
// that ignores a role that exists: the ALTER ROLE after it sets the
// attributes and password either way, as pg_dumpall's own --clean would.
func createRoleIfMissing(line []byte) []byte {
	s := strings.TrimSuffix(string(line), "\n")
	if !strings.HasSuffix(s, ";") || strings.Contains(s, roleTag) {
		return line
	}
	return fmt.Appendf(nil, "DO %sBEGIN %s EXCEPTION WHEN duplicate_object THEN NULL; END%s;\n", roleTag, s, roleTag)
}

// randomKey is a \restrict key nobody can guess.
func randomKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errWriter keeps the first error of w.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func quoteAll(names []string) string {
	if len(names) == 0 {
		return "no database"
	}
	var b bytes.Buffer
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(n))
	}
	return b.String()
}

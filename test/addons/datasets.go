// Package addons tests addon modules that live beside the root module
// (they depend on the SDK alone) against real servers, run as the runtime
// runs them: through the SDK's test helper, and through `keepsake run`
// with a real restic repository. Its data sets and comparisons (this
// file) are shared with the e2e suite, which backs the same data up on
// the local cluster.
package addons

import (
	"bufio"
	"fmt"
	"strings"
	"testing"

	"github.com/keepsake-dev/keepsake/test/servers"
)

// awkward is text no dump format may mangle: quotes, backslashes, tabs,
// newlines, non-ASCII, and a line that looks like the dump's own framing.
const awkward = `E'it''s a "test"\\ \ttab\r\nnew line ünïcödé 🎉\n--keepsake:end\n--keepsake:line x\n\\.\n'`

// PostgresRolePassword is the password of the data set's login role.
const PostgresRolePassword = "alice-s3cret"

// PostgresData is the PostgreSQL data set: two roles (one with a password
// and a membership) and two databases with tables of many column types,
// large objects, a view, a function, and a comment whose lines look like
// frame lines. Prefix starts the name of every role and database it makes,
// so that it can share a server with other data: the empty Prefix makes
// roles alice and readers and databases shop and "Blog Posts".
type PostgresData struct {
	Prefix string
}

// Role is the login role, owner of the shop database.
func (d PostgresData) Role() string { return d.Prefix + "alice" }

func (d PostgresData) readers() string { return d.Prefix + "readers" }

// Shop is the database with the tables of many column types.
func (d PostgresData) Shop() string { return d.Prefix + "shop" }

// Blog is the database whose schema, table and column names need quoting.
func (d PostgresData) Blog() string { return d.Prefix + "Blog Posts" }

// Databases are the data set's databases in the server's (byte) order.
func (d PostgresData) Databases() []string { return []string{d.Blog(), d.Shop()} }

// Fill makes the roles and databases; rows sizes the main table.
func (d PostgresData) Fill(t testing.TB, pg *servers.Postgres, rows int) {
	t.Helper()
	alice, readers := QuoteIdent(d.Role()), QuoteIdent(d.readers())
	pg.MustSQL(t, "postgres", fmt.Sprintf(`CREATE ROLE %[1]s LOGIN PASSWORD '%[3]s' CONNECTION LIMIT 7;
CREATE ROLE %[2]s NOLOGIN;
GRANT %[2]s TO %[1]s;
CREATE DATABASE %[4]s OWNER %[1]s;
CREATE DATABASE %[5]s;`, alice, readers, PostgresRolePassword, QuoteIdent(d.Shop()), QuoteIdent(d.Blog())))
	pg.MustSQL(t, d.Shop(), fmt.Sprintf(`SET ROLE %[3]s;
CREATE TABLE items (id serial PRIMARY KEY, price numeric(30,10), ratio double precision, name text, data bytea,
  doc json, docb jsonb, tags text[], grid int[][], at timestamptz, day date, span interval, uid uuid, flag boolean,
  blob oid, addr inet, r int4range);
INSERT INTO items (price, ratio, name, data, doc, docb, tags, grid, at, day, span, uid, flag, addr, r)
SELECT g * 1234.5678901234, g / 7.0, %[1]s || g, decode(md5(g::text) || '00ff0a0d5c', 'hex'),
  json_build_object('n', g, 's', 'x"y\z'), jsonb_build_object('n', g, 'list', jsonb_build_array(g, 'a', null)),
  ARRAY['a,b', 'c"d', NULL, E'e\nf'], ARRAY[[g, 2], [3, 4]], timestamptz '2026-01-01 00:00:00+05' + g * interval '17 minutes',
  date '2000-02-29' + g, g * interval '1 day 2 hours', md5(g::text)::uuid, g %% 2 = 0, '10.0.0.1'::inet + g, int4range(g, g + 10)
FROM generate_series(1, %[2]d) g;
UPDATE items SET blob = lo_from_bytea(0, decode(repeat(md5(id::text), 100), 'hex')) WHERE id <= 20;
CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL, created timestamptz DEFAULT now());
INSERT INTO notes VALUES (1, %[1]s, '2026-03-01T12:00:00Z'), (2, '', '1970-01-01T00:00:00Z');
CREATE VIEW cheap AS SELECT id, price FROM items WHERE price < 10000;
GRANT SELECT ON items TO %[4]s;
COMMENT ON TABLE notes IS %[1]s;
CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql AS $$
SELECT x * 2
--keepsake:end
$$;`, awkward, rows, alice, readers))
	pg.MustSQL(t, d.Blog(), `CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Posts" ("Title" text, n numeric, f real[]);
INSERT INTO "Odd Schema"."Posts" SELECT 'post ' || g, g / 3.0, ARRAY[g * 0.5, 'NaN', 'Infinity'] FROM generate_series(1, 500) g;`)
}

// Drop drops the data set's databases and roles, those that exist (a
// shared server may hold them from an earlier run), and checks the roles
// are gone.
func (d PostgresData) Drop(t testing.TB, pg *servers.Postgres) {
	t.Helper()
	pg.MustSQL(t, "postgres", fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE); DROP DATABASE IF EXISTS %s WITH (FORCE);
DROP ROLE IF EXISTS %s; DROP ROLE IF EXISTS %s;`, QuoteIdent(d.Shop()), QuoteIdent(d.Blog()), QuoteIdent(d.Role()), QuoteIdent(d.readers())))
	left := pg.MustSQL(t, "postgres", fmt.Sprintf("SELECT count(*) FROM pg_roles WHERE rolname IN (%s, %s);",
		QuoteLiteral(d.Role()), QuoteLiteral(d.readers())))
	if left != "0\n" {
		t.Fatalf("roles left after dropping them: %s", left)
	}
}

// PostgresState describes everything the tests compare: the roles with
// their attributes, password hashes and memberships, each database's
// owner, and every table's rows and every large object of each database.
func PostgresState(t testing.TB, pg *servers.Postgres, dbs ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(pg.MustSQL(t, "postgres", `SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
  rolreplication, rolconnlimit, rolpassword, rolvaliduntil, rolbypassrls FROM pg_authid ORDER BY rolname;
SELECT r.rolname, m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member ORDER BY 1, 2;`))
	for _, db := range dbs {
		fmt.Fprintf(&b, "database %s owned by %s", db, pg.MustSQL(t, "postgres",
			fmt.Sprintf("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s;", QuoteLiteral(db))))
		tables := pg.MustSQL(t, db, `SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1;`)
		for _, table := range strings.Split(strings.TrimSpace(tables), "\n") {
			fmt.Fprintf(&b, "%s: %s", table, pg.MustSQL(t, db, fmt.Sprintf(
				"SELECT count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM %s x;", table)))
		}
		b.WriteString(pg.MustSQL(t, db, "SELECT oid, pg_get_userbyid(lomowner), md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY oid;"))
		b.WriteString(pg.MustSQL(t, db, `SELECT obj_description(to_regclass('public.notes'), 'pg_class');
SELECT proname, prosrc, pg_get_userbyid(proowner) FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1;`))
	}
	return b.String()
}

// HoldLock keeps an ACCESS EXCLUSIVE lock on table of database in an open
// psql session until the test ends (or the server stops).
func HoldLock(t testing.TB, pg *servers.Postgres, database, table string) {
	t.Helper()
	cmd := pg.Command(database, "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
	if _, err := in.Write([]byte("BEGIN; LOCK TABLE " + table + " IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("lock %s: %q, %v", table, line, err)
	}
}

// QuoteIdent quotes a PostgreSQL identifier.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// QuoteLiteral quotes a PostgreSQL string literal.
func QuoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// FillRedis writes keys of several types into r and returns its DEBUG
// DIGEST.
func FillRedis(t testing.TB, r *servers.Redis) string {
	t.Helper()
	for i := range 500 {
		r.MustDo(t, "SET", fmt.Sprintf("string:%d", i), strings.Repeat("v", i%40)+fmt.Sprint(i))
		r.MustDo(t, "HSET", fmt.Sprintf("hash:%d", i%50), fmt.Sprint("field", i), fmt.Sprint(i*7))
		r.MustDo(t, "RPUSH", fmt.Sprintf("list:%d", i%20), fmt.Sprint(i))
		r.MustDo(t, "ZADD", "zset", fmt.Sprint(i), fmt.Sprint("member", i))
	}
	r.MustDo(t, "SET", "binary", "\x00\xff\r\n")
	return r.MustDo(t, "DEBUG", "DIGEST")
}

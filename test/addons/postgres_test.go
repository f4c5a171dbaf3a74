package addons

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/addons/sdk/sdktest"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// postgresDriver builds the PostgreSQL driver and puts Debian's PostgreSQL
// 15 client tools first on the PATH the driver inherits, as its image does.
func postgresDriver(t *testing.T) string {
	t.Helper()
	t.Setenv("PATH", servers.PostgresBinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return build(t, "addons/postgres", "./cmd/postgres-driver", "postgres-driver")
}

// pgSecret writes the superuser's authSecret as Kubernetes mounts it.
func pgSecret(t *testing.T, pg *servers.Postgres) string {
	t.Helper()
	dir := t.TempDir()
	for key, value := range map[string]string{"username": pg.User, "password": pg.Password} {
		if err := os.WriteFile(filepath.Join(dir, key), []byte(value), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// pgRequest is a request to pg's driver with params name, value, ...
func pgRequest(t *testing.T, pg *servers.Postgres, params ...string) sdk.Request {
	req := sdk.Request{Component: "postgres.sql", Target: sdk.Target{Kind: "Service", Name: "pg", Namespace: "prod"},
		Params:      map[string]string{"host": pg.Host, "port": pg.Port, "sslMode": "disable", "authSecret": "pg-auth"},
		Credentials: map[string]string{"authSecret": pgSecret(t, pg)}}
	for i := 0; i+1 < len(params); i += 2 {
		req.Params[params[i]] = params[i+1]
	}
	return req
}

// awkward is text no dump format may mangle: quotes, backslashes, tabs,
// newlines, non-ASCII, and a line that looks like the dump's own framing.
const awkward = `E'it''s a "test"\\ \ttab\r\nnew line ünïcödé 🎉\n--keepsake:end\n--keepsake:line x\n\\.\n'`

// fillPostgres makes two roles (one with a password and a membership) and
// two databases with tables of many column types, large objects, and a
// comment whose lines look like frame lines. rows sizes the main table.
func fillPostgres(t *testing.T, pg *servers.Postgres, rows int) {
	t.Helper()
	pg.MustSQL(t, "postgres", `CREATE ROLE alice LOGIN PASSWORD 'alice-s3cret' CONNECTION LIMIT 7;
CREATE ROLE readers NOLOGIN;
GRANT readers TO alice;
CREATE DATABASE shop OWNER alice;
CREATE DATABASE "Blog Posts";`)
	pg.MustSQL(t, "shop", fmt.Sprintf(`SET ROLE alice;
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
GRANT SELECT ON items TO readers;
COMMENT ON TABLE notes IS %[1]s;
CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql AS $$
SELECT x * 2
--keepsake:end
$$;`, awkward, rows))
	pg.MustSQL(t, "Blog Posts", `CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Posts" ("Title" text, n numeric, f real[]);
INSERT INTO "Odd Schema"."Posts" SELECT 'post ' || g, g / 3.0, ARRAY[g * 0.5, 'NaN', 'Infinity'] FROM generate_series(1, 500) g;`)
}

// pgState describes everything the tests compare: the roles with their
// attributes, password hashes and memberships, each database's owner, and
// every table's rows and every large object of each database.
func pgState(t *testing.T, pg *servers.Postgres, dbs ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(pg.MustSQL(t, "postgres", `SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
  rolreplication, rolconnlimit, rolpassword, rolvaliduntil, rolbypassrls FROM pg_authid ORDER BY rolname;
SELECT r.rolname, m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member ORDER BY 1, 2;`))
	for _, db := range dbs {
		fmt.Fprintf(&b, "database %s owned by %s", db, pg.MustSQL(t, "postgres",
			fmt.Sprintf("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '%s';", db)))
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

// dropEverything drops the test's databases and roles.
func dropEverything(t *testing.T, pg *servers.Postgres) {
	t.Helper()
	pg.MustSQL(t, "postgres", `DROP DATABASE shop WITH (FORCE); DROP DATABASE "Blog Posts" WITH (FORCE);
DROP ROLE alice; DROP ROLE readers;`)
	if got := pg.MustSQL(t, "postgres", "SELECT count(*) FROM pg_roles WHERE rolname IN ('alice', 'readers');"); got != "0\n" {
		t.Fatalf("roles left after dropping them: %s", got)
	}
}

// frames lists the database frame lines of a dump.
func frames(t *testing.T, dump sdktest.Dump) []string {
	t.Helper()
	data, err := os.ReadFile(dump.Path)
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`(?m)^--keepsake:database \{"name":"([^"]*)"`).FindAllString(string(data), -1)
}

// TestPostgresThroughTheSDK backs up a real PostgreSQL 15 server (roles,
// two databases, many column types, large objects), drops everything,
// restores, and compares every table, large object and role exactly.
func TestPostgresThroughTheSDK(t *testing.T) {
	pg := servers.StartPostgres(t)
	fillPostgres(t, pg, 3000)
	dbs := []string{"Blog Posts", "shop"}
	want := pgState(t, pg, dbs...)
	driver := postgresDriver(t)
	ctx := context.Background()
	dump, err := sdktest.Backup(ctx, t, sdktest.Start(t, driver).Client, &sdk.BackupRequest{Request: pgRequest(t, pg)})
	if err != nil {
		t.Fatal(err)
	}
	if got := frames(t, dump); len(got) != 3 {
		t.Fatalf("dump has database frames %q, want Blog Posts, postgres and shop", got)
	}
	dropEverything(t, pg)
	res, err := sdktest.Restore(ctx, t, sdktest.Start(t, driver).Client, &sdk.RestoreRequest{Request: pgRequest(t, pg)}, dump)
	if err != nil {
		t.Fatal(err)
	}
	// The driver says what it restored: the three databases, as the
	// RestoreSession will show them.
	wantDBs := []string{"Blog Posts", "postgres", "shop"}
	if r := res.Restored; r.ObjectKind != "databases" || !slices.Equal(slices.Sorted(slices.Values(r.Objects)), wantDBs) {
		t.Errorf("restored %+v, want the databases %q", r, wantDBs)
	}
	if got := pgState(t, pg, dbs...); got != want {
		t.Fatalf("restored server differs:\n got: %s\nwant: %s", got, want)
	}
	// The restored role logs in with its password.
	login := pg.Command("shop", "psql", "-X", "-t", "-A", "-c", "SELECT current_user")
	login.Env = append(login.Env, "PGUSER=alice", "PGPASSWORD=alice-s3cret")
	if out, err := login.CombinedOutput(); err != nil || string(out) != "alice\n" {
		t.Fatalf("alice cannot log in after the restore: %v: %s", err, out)
	}

	t.Run("a non-empty target is refused", func(t *testing.T) {
		_, err := sdktest.Restore(ctx, t, sdktest.Start(t, driver).Client, &sdk.RestoreRequest{Request: pgRequest(t, pg, "databases", "shop")}, dump)
		if err == nil || !strings.Contains(err.Error(), `restore database "shop": the database exists and is not empty`) {
			t.Fatalf("error = %v, want a refusal naming shop", err)
		}
	})
	t.Run("replace drops and re-creates", func(t *testing.T) {
		pg.MustSQL(t, "shop", "DELETE FROM items WHERE id > 100; CREATE TABLE extra (x int);")
		req := pgRequest(t, pg, "mode", "replace")
		if _, err := sdktest.Restore(ctx, t, sdktest.Start(t, driver).Client, &sdk.RestoreRequest{Request: req}, dump); err != nil {
			t.Fatal(err)
		}
		if got := pgState(t, pg, dbs...); got != want {
			t.Fatalf("replaced server differs:\n got: %s\nwant: %s", got, want)
		}
	})
	t.Run("into a renamed database", func(t *testing.T) {
		req := pgRequest(t, pg, "databases", "shop", "databaseMapping", "shop:shop_copy", "globals", "false")
		if _, err := sdktest.Restore(ctx, t, sdktest.Start(t, driver).Client, &sdk.RestoreRequest{Request: req}, dump); err != nil {
			t.Fatal(err)
		}
		shop, shopCopy := pgState(t, pg, "shop"), pgState(t, pg, "shop_copy")
		if strings.ReplaceAll(shopCopy, "database shop_copy", "database shop") != shop {
			t.Fatalf("shop_copy differs from shop:\n got: %s\nwant: %s", shopCopy, shop)
		}
	})
	t.Run("a failing statement is named", func(t *testing.T) {
		pg.MustSQL(t, "postgres", "CREATE DATABASE broken;")
		pg.MustSQL(t, "broken", "CREATE DOMAIN items AS int;") // no relation: empty, but the type is in the way
		req := pgRequest(t, pg, "databases", "shop", "databaseMapping", "shop:broken", "globals", "false")
		_, err := sdktest.Restore(ctx, t, sdktest.Start(t, driver).Client, &sdk.RestoreRequest{Request: req}, dump)
		if err == nil || !regexp.MustCompile(`restore database "broken" \(backed up as "shop"\): psql exited with status 3: .*ERROR: .* STATEMENT: `).MatchString(err.Error()) {
			t.Fatalf("error = %v, want psql's error and statement for database broken", err)
		}
	})
}

// TestPostgresSelectedDatabases: a backup of selected databases holds
// only those, and restores only those.
func TestPostgresSelectedDatabases(t *testing.T) {
	pg := servers.StartPostgres(t)
	fillPostgres(t, pg, 100)
	driver := postgresDriver(t)
	ctx := context.Background()
	dump, err := sdktest.Backup(ctx, t, sdktest.Start(t, driver).Client, &sdk.BackupRequest{Request: pgRequest(t, pg, "databases", "Blog Posts")})
	if err != nil {
		t.Fatal(err)
	}
	if got := frames(t, dump); !slices.Equal(got, []string{`--keepsake:database {"name":"Blog Posts"`}) {
		t.Fatalf("dump of Blog Posts has database frames %q", got)
	}
	want := pgState(t, pg, "Blog Posts")
	dropEverything(t, pg)
	if _, err := sdktest.Restore(ctx, t, sdktest.Start(t, driver).Client, &sdk.RestoreRequest{Request: pgRequest(t, pg)}, dump); err != nil {
		t.Fatal(err)
	}
	if got := pgState(t, pg, "Blog Posts"); got != want {
		t.Fatalf("restored Blog Posts differs:\n got: %s\nwant: %s", got, want)
	}
	if got := pg.MustSQL(t, "postgres", "SELECT count(*) FROM pg_database WHERE datname = 'shop';"); got != "0\n" {
		t.Fatal("a backup of Blog Posts restored shop")
	}
	_, err = sdktest.Restore(ctx, t, sdktest.Start(t, driver).Client, &sdk.RestoreRequest{Request: pgRequest(t, pg, "databases", "shop")}, dump)
	if err == nil || !strings.Contains(err.Error(), `database "shop" is not in the backup, which holds "Blog Posts"`) {
		t.Fatalf("restoring a database the backup lacks: error = %v", err)
	}
}

// TestPostgresConformance runs the SDK's conformance check against a real
// server; the cancelled backup dumps a 64 MiB table.
func TestPostgresConformance(t *testing.T) {
	pg := servers.StartPostgres(t)
	fillPostgres(t, pg, 200)
	pg.MustSQL(t, "postgres", "CREATE DATABASE big;")
	pg.MustSQL(t, "big", "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 20) AS filler FROM generate_series(1, 100000) g;")
	driver := postgresDriver(t)
	sdktest.Conformance(t, driver, sdktest.Options{
		Backup:        &sdk.BackupRequest{Request: pgRequest(t, pg, "databases", "shop")},
		FailingBackup: &sdk.BackupRequest{Request: pgRequest(t, pg, "databases", "missing")},
		CancelBackup:  &sdk.BackupRequest{Request: pgRequest(t, pg, "databases", "big")},
		Restore:       &sdk.RestoreRequest{Request: pgRequest(t, pg, "mode", "replace")},
	})
}

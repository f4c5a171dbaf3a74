package addons

import (
	"context"
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
	PostgresData{}.Fill(t, pg, 3000)
	dbs := []string{"Blog Posts", "shop"}
	want := PostgresState(t, pg, dbs...)
	driver := postgresDriver(t)
	ctx := context.Background()
	dump, err := sdktest.Backup(ctx, t, sdktest.Start(t, driver).Client, &sdk.BackupRequest{Request: pgRequest(t, pg)})
	if err != nil {
		t.Fatal(err)
	}
	if got := frames(t, dump); len(got) != 3 {
		t.Fatalf("dump has database frames %q, want Blog Posts, postgres and shop", got)
	}
	PostgresData{}.Drop(t, pg)
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
	if got := PostgresState(t, pg, dbs...); got != want {
		t.Fatalf("restored server differs:\n got: %s\nwant: %s", got, want)
	}
	// The restored role logs in with its password.
	login := pg.Command("shop", "psql", "-X", "-t", "-A", "-c", "SELECT current_user")
	login.Env = append(login.Env, "PGUSER=alice", "PGPASSWORD="+PostgresRolePassword)
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
		if got := PostgresState(t, pg, dbs...); got != want {
			t.Fatalf("replaced server differs:\n got: %s\nwant: %s", got, want)
		}
	})
	t.Run("into a renamed database", func(t *testing.T) {
		req := pgRequest(t, pg, "databases", "shop", "databaseMapping", "shop:shop_copy", "globals", "false")
		if _, err := sdktest.Restore(ctx, t, sdktest.Start(t, driver).Client, &sdk.RestoreRequest{Request: req}, dump); err != nil {
			t.Fatal(err)
		}
		shop, shopCopy := PostgresState(t, pg, "shop"), PostgresState(t, pg, "shop_copy")
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
	PostgresData{}.Fill(t, pg, 100)
	driver := postgresDriver(t)
	ctx := context.Background()
	dump, err := sdktest.Backup(ctx, t, sdktest.Start(t, driver).Client, &sdk.BackupRequest{Request: pgRequest(t, pg, "databases", "Blog Posts")})
	if err != nil {
		t.Fatal(err)
	}
	if got := frames(t, dump); !slices.Equal(got, []string{`--keepsake:database {"name":"Blog Posts"`}) {
		t.Fatalf("dump of Blog Posts has database frames %q", got)
	}
	want := PostgresState(t, pg, "Blog Posts")
	PostgresData{}.Drop(t, pg)
	if _, err := sdktest.Restore(ctx, t, sdktest.Start(t, driver).Client, &sdk.RestoreRequest{Request: pgRequest(t, pg)}, dump); err != nil {
		t.Fatal(err)
	}
	if got := PostgresState(t, pg, "Blog Posts"); got != want {
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
	PostgresData{}.Fill(t, pg, 200)
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

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// targetPostgresXRaw is issue 15's target: `keepsake run backup` with the
// PostgreSQL driver, against `pg_dump | restic backup --stdin` of the same
// server.
const targetPostgresXRaw = 0.9

// BenchmarkPostgresBackup measures a backup of a PostgreSQL 15 server
// through the PostgreSQL driver and the runtime into MinIO, against the
// shell pipeline a user would write without Keepsake (globals and the
// database, piped into restic backup --stdin), in the same run on the same
// server, each into a fresh repository. KEEPSAKE_BENCH_PG_ROWS (default
// 3000000, about 400 MB of dump) sizes the database: the runtime opens
// the repository and checks its locks (restic runs of their own) before
// the dump starts, a fixed cost a small dump cannot amortise.
//
//	go test -run '^$' -bench BenchmarkPostgresBackup -benchtime 1x -timeout 60m ./test/bench/
func BenchmarkPostgresBackup(b *testing.B) {
	e := newDriverTools(b)
	e.bin["postgres-driver"] = filepath.Join(e.dir, "postgres-driver")
	goBuild(b, filepath.Join(servers.RepoRoot(b), "addons", "postgres"), e.bin["postgres-driver"], "./cmd/postgres-driver")
	b.Setenv("PATH", servers.PostgresBinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	pg := servers.StartPostgres(b)
	rows := envInt(b, "KEEPSAKE_BENCH_PG_ROWS", 3000000)
	start := time.Now()
	pg.MustSQL(b, "postgres", "CREATE DATABASE bench;")
	pg.MustSQL(b, "bench", fmt.Sprintf(`CREATE TABLE t (id bigint PRIMARY KEY, price numeric(20,4), name text, doc jsonb, at timestamptz);
INSERT INTO t SELECT g, g * 1.2345, 'name ' || md5(g::text), jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g %% 7)),
  timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series(1, %d) g;`, rows))
	b.Logf("wrote %d rows in %s", rows, time.Since(start).Round(time.Millisecond))
	secret := writePgSecret(b, e.dir, pg)
	f := newFigures(b)
	defer f.finish()
	var keepsake, raw, dump, pgDump time.Duration
	b.ResetTimer()
	for range b.N {
		cfg, dir := e.newRepo(b)
		keepsake += e.keepsakePostgresBackup(b, cfg, dir, pg, secret)
		cfg, _ = e.newRepo(b)
		raw += rawPostgresBackup(b, cfg, pg)
		dump += e.postgresDump(b, pg, secret)
		pgDump += rawPostgresDump(b, pg)
	}
	f.report(keepsake.Seconds()/float64(b.N), "keepsake-s")
	f.report(raw.Seconds()/float64(b.N), "pg_dump-restic-s")
	// The dump alone, through the plugin into a discarding host, against
	// pg_dump into /dev/null: what the driver costs without restic.
	f.report(dump.Seconds()/float64(b.N), "driver-dump-s")
	f.report(pgDump.Seconds()/float64(b.N), "pg_dump-s")
	f.atLeast(raw.Seconds()/keepsake.Seconds(), targetPostgresXRaw, "x-pg_dump-restic")
}

// writePgSecret writes the superuser's authSecret as Kubernetes mounts it.
func writePgSecret(b *testing.B, dir string, pg *servers.Postgres) string {
	b.Helper()
	secret := filepath.Join(dir, "pg-secret")
	if err := os.MkdirAll(secret, 0o700); err != nil {
		b.Fatal(err)
	}
	for k, v := range map[string]string{"username": pg.User, "password": pg.Password} {
		if err := os.WriteFile(filepath.Join(secret, k), []byte(v), 0o400); err != nil {
			b.Fatal(err)
		}
	}
	return secret
}

// keepsakePostgresBackup runs `keepsake run backup` of pg's globals and
// database bench into repository dir and returns how long it took.
func (e *driverEnv) keepsakePostgresBackup(b *testing.B, cfg restic.Config, dir string, pg *servers.Postgres, secret string) time.Duration {
	b.Helper()
	storageFile := filepath.Join(e.dir, "storage.json")
	settings := fmt.Sprintf(`{"provider":"s3","s3":{"endpoint":%q,"bucket":"bench","prefix":"keepsake","forcePathStyle":true}}`, e.minio.Endpoint)
	if err := os.WriteFile(storageFile, []byte(settings), 0o400); err != nil {
		b.Fatal(err)
	}
	repo := strings.Join([]string{"name=bench", "storage=" + storageFile, "credentials=" + e.writeSecretDir(b),
		"namespace=bench", "directory=" + dir, "password-file=" + cfg.PasswordFile}, ",")
	cmd := exec.Command(e.bin["keepsake"], "run", "backup", "--driver", e.bin["postgres-driver"], "--component", "dump",
		"--repository", repo, "--restic", e.restic, "--cache-dir", cfg.CacheDir, "--target-name", "pg", "--target-namespace", "bench",
		"--param", "host="+pg.Host, "--param", "port="+pg.Port, "--param", "sslMode=disable", "--param", "databases=bench",
		"--param", "authSecret=pg-auth", "--secret", "authSecret="+secret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil || !strings.Contains(stdout.String(), `"phase":"Succeeded"`) {
		b.Fatalf("keepsake run backup: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	return took
}

// rawPostgresBackup runs what a user would without Keepsake:
// `{ pg_dumpall --globals-only; pg_dump bench; } | restic backup --stdin`.
func rawPostgresBackup(b *testing.B, cfg restic.Config, pg *servers.Postgres) time.Duration {
	b.Helper()
	script := `{ pg_dumpall --globals-only && pg_dump --format=plain bench; } | "$0" backup --stdin --stdin-filename dump -q "$@"`
	args := append([]string{"-o", "pipefail", "-c", script, cfg.Binary, "--repo", cfg.Repository, "--password-file", cfg.PasswordFile,
		"--cache-dir", cfg.CacheDir}, cfg.ExtraArgs...)
	cmd := exec.Command("bash", args...)
	cmd.Env = append(append(os.Environ(), cfg.Env...), pg.Env("postgres")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("pg_dump | restic backup: %v\n%s", err, stderr.String())
	}
	return time.Since(start)
}

// postgresDump times the driver's dump of database bench through the
// plugin into a host that discards it.
func (e *driverEnv) postgresDump(b *testing.B, pg *servers.Postgres, secret string) time.Duration {
	b.Helper()
	c := e.open(b, e.bin["postgres-driver"])
	req := &sdk.BackupRequest{Request: sdk.Request{Component: "dump",
		Params:      map[string]string{"host": pg.Host, "port": pg.Port, "sslMode": "disable", "databases": "bench", "authSecret": "pg-auth", "maintenanceDatabase": "postgres"},
		Credentials: map[string]string{"authSecret": secret}}}
	start := time.Now()
	if _, err := c.Backup(context.Background(), req, io.Discard); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// rawPostgresDump times the globals and pg_dump of bench into /dev/null.
func rawPostgresDump(b *testing.B, pg *servers.Postgres) time.Duration {
	b.Helper()
	cmd := exec.Command("bash", "-o", "pipefail", "-c", "{ pg_dumpall --globals-only && pg_dump --format=plain bench; } > /dev/null")
	cmd.Env = append(os.Environ(), pg.Env("postgres")...)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("pg_dump: %v\n%s", err, out)
	}
	return time.Since(start)
}

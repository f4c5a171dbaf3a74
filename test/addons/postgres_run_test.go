package addons

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/test/servers"
)

// pgStand runs `keepsake run` with the PostgreSQL driver against a local
// restic repository.
type pgStand struct {
	runStand
	pg     *servers.Postgres
	secret string // the mounted authSecret
}

func newPgStand(t *testing.T, pg *servers.Postgres) *pgStand {
	dir := t.TempDir()
	s := &pgStand{runStand: runStand{
		keepsake: build(t, ".", "./cmd/keepsake", "keepsake"),
		driver:   postgresDriver(t),
		restic:   servers.Bin(t, "restic"),
		repo:     filepath.Join(dir, "repo"), password: filepath.Join(dir, "password"), cache: filepath.Join(dir, "cache"),
	}, pg: pg, secret: pgSecret(t, pg)}
	if err := os.WriteFile(s.password, []byte("repository password"), 0o400); err != nil {
		t.Fatal(err)
	}
	return s
}

// command prepares `keepsake run <op>` of the driver on the server.
func (s *pgStand) command(op string, args ...string) *exec.Cmd {
	all := append([]string{"run", op, "--driver", s.driver, "--component", "postgres.sql", "--restic", s.restic,
		"--cache-dir", s.cache, "--repository", "name=local,restic=" + s.repo + ",password-file=" + s.password,
		"--target-kind", "Service", "--target-name", "pg", "--target-namespace", "prod",
		"--param", "host=" + s.pg.Host, "--param", "port=" + s.pg.Port, "--param", "sslMode=disable",
		"--param", "authSecret=pg-auth", "--secret", "authSecret=" + s.secret}, args...)
	return exec.Command(s.keepsake, all...)
}

// run runs the command and returns its exit code, stdout and stderr.
func (s *pgStand) run(t *testing.T, op string, args ...string) (int, string, string) {
	t.Helper()
	cmd := s.command(op, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	_ = cmd.Run()
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// repoBytes is the size of every file of the restic repository.
func (s *pgStand) repoBytes(t *testing.T) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(s.repo, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		total += info.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// latestSize is the size of the latest snapshot's file: the dump's.
func (s *pgStand) latestSize(t *testing.T) int64 {
	t.Helper()
	out, err := exec.Command(s.restic, "--repo", s.repo, "--password-file", s.password, "--no-cache",
		"stats", "latest", "--mode", "restore-size", "--json").Output()
	if err != nil {
		t.Fatalf("restic stats: %v", err)
	}
	var stats struct {
		TotalSize int64 `json:"total_size"`
	}
	if err := json.Unmarshal(out, &stats); err != nil {
		t.Fatal(err)
	}
	return stats.TotalSize
}

// TestPostgresThroughKeepsakeRun runs the driver as a Job does: `keepsake
// run backup` into a restic repository and `keepsake run restore` of the
// latest snapshot into the emptied server. A second backup of the
// unchanged server adds less than 1% of the dump to the repository.
func TestPostgresThroughKeepsakeRun(t *testing.T) {
	pg := servers.StartPostgres(t)
	PostgresData{}.Fill(t, pg, 15000)
	dbs := []string{"Blog Posts", "shop"}
	want := PostgresState(t, pg, dbs...)
	s := newPgStand(t, pg)
	code, out, errOut := s.run(t, "backup")
	if code != 0 || !strings.Contains(out, `"phase":"Succeeded"`) || s.snapshots(t) != 1 {
		t.Fatalf("backup: exit %d, %d snapshots\nstdout:\n%s\nstderr:\n%s", code, s.snapshots(t), out, errOut)
	}
	dumpSize, before := s.latestSize(t), s.repoBytes(t)
	if code, out, errOut = s.run(t, "backup"); code != 0 || s.snapshots(t) != 2 {
		t.Fatalf("second backup: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	added := s.repoBytes(t) - before
	t.Logf("dump %d bytes; the second backup of the unchanged server added %d bytes (%.3f%%)", dumpSize, added, 100*float64(added)/float64(dumpSize))
	if dumpSize < 4<<20 || float64(added) >= 0.01*float64(dumpSize) {
		t.Fatalf("the second backup added %d bytes to a repository holding a %d-byte dump: want < 1%%", added, dumpSize)
	}

	PostgresData{}.Drop(t, pg)
	code, out, errOut = s.run(t, "restore", "--snapshot", "latest")
	if code != 0 || !strings.Contains(out, `"phase":"Succeeded"`) {
		t.Fatalf("restore: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if got := PostgresState(t, pg, dbs...); got != want {
		t.Fatalf("restored server differs:\n got: %s\nwant: %s", got, want)
	}
	if strings.Contains(out+errOut, pg.Password) || strings.Contains(out+errOut, PostgresRolePassword) {
		t.Fatal("keepsake run's output holds a password")
	}
}

// TestPostgresDumpFailingMidway: the server stops while pg_dump of the
// second database waits for a table lock, after the globals and the first
// database went into the stream. The backup fails naming the database and
// pg_dump's reason, and no snapshot is made.
func TestPostgresDumpFailingMidway(t *testing.T) {
	pg := servers.StartPostgres(t)
	pg.MustSQL(t, "postgres", "CREATE DATABASE aaa; CREATE DATABASE zzz;")
	pg.MustSQL(t, "aaa", "CREATE TABLE t AS SELECT g, md5(g::text) FROM generate_series(1, 50000) g;")
	pg.MustSQL(t, "zzz", "CREATE TABLE locked (x int);")
	HoldLock(t, pg, "zzz", "locked")
	s := newPgStand(t, pg)
	cmd := s.command("backup")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	waitFor(t, done, "pg_dump waiting for the lock on zzz", func() bool {
		n, _ := pg.SQL("postgres", `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
WHERE NOT l.granted AND a.application_name = 'pg_dump' AND a.datname = 'zzz';`)
		return n == "1\n"
	})
	checkPasswordNotInArgs(t, pg.Password)
	pg.Stop()
	<-done
	if cmd.ProcessState.ExitCode() == 0 || !strings.Contains(out.String(), `"phase":"Failed"`) ||
		!strings.Contains(errOut.String(), `pg_dump of database "zzz" exited with status 1: pg_dump: error: `) {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", cmd.ProcessState.ExitCode(), out.String(), errOut.String())
	}
	if n := s.snapshots(t); n != 0 {
		t.Fatalf("%d snapshots after a failed backup, want none", n)
	}
}

// waitFor polls cond until it holds, failing if done closes first or
// after a generous bound.
func waitFor(t *testing.T, done <-chan struct{}, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for !cond() {
		select {
		case <-done:
			t.Fatalf("the backup ended before %s", what)
		case <-deadline:
			t.Fatalf("no %s within 2 minutes", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// checkPasswordNotInArgs finds the driver's running pg_dump (by the
// restrict key in its args) and checks the password is in its environment
// only.
func checkPasswordNotInArgs(t *testing.T, password string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	found := 0
	for _, p := range procs {
		args, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(args, []byte("--restrict-key=keepsakepostgresdump")) || !bytes.Contains(args, []byte("pg_dump\x00")) {
			continue
		}
		found++
		if bytes.Contains(args, []byte(password)) {
			t.Fatalf("pg_dump's args hold the password: %q", args)
		}
		env, err := os.ReadFile(filepath.Join(filepath.Dir(p), "environ"))
		if err == nil && !bytes.Contains(env, []byte("PGPASSWORD="+password+"\x00")) {
			t.Fatal("pg_dump's environment has no PGPASSWORD: how did it log in?")
		}
	}
	if found == 0 {
		t.Fatal("found no pg_dump of the driver among the processes")
	}
}

package servers

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PostgresBinDir holds Debian's PostgreSQL 15 server and client binaries
// (package postgresql, installed by `make tools`). /usr/bin/pg_dump and
// friends are Debian's wrapper scripts around them.
const PostgresBinDir = "/usr/lib/postgresql/15/bin"

// postgresStartLimit bounds the wait for the server to accept connections.
const postgresStartLimit = 2 * time.Minute

// Postgres is a real PostgreSQL 15 server on loopback, initialised by
// initdb into a temporary directory, with password authentication
// (scram-sha-256) for every connection.
type Postgres struct {
	// Host and Port are where it listens, e.g. 127.0.0.1 and 40123.
	Host, Port string
	// User and Password are the superuser's.
	User, Password string
	// Dir holds the data directory (Dir/data) and the server's log.
	Dir string

	cred   *syscall.Credential // of the postgres user, when the test runs as root
	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
}

// StartPostgres runs initdb in a new temporary directory, starts the
// server on a free loopback port and waits until it accepts connections.
// It is stopped, by its PID, when the test ends. initdb refuses to run as
// root: a root test runs the server as Debian's postgres user.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	SkipIfShort(t, "PostgreSQL")
	var secret [12]byte
	if _, err := rand.Read(secret[:]); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(freeLoopbackAddr(t))
	s := &Postgres{Host: host, Port: port, User: "postgres", Password: hex.EncodeToString(secret[:]), exited: make(chan struct{})}
	s.cred = postgresCredential(t)
	s.Dir = s.makeDir(t)
	s.initdb(t)
	s.start(t)
	t.Cleanup(s.Stop)
	if err := s.waitReady(postgresStartLimit); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
		t.Fatalf("postgres: %v\n%s", err, log)
	}
	return s
}

// postgresCredential is the postgres user's when the test runs as root.
func postgresCredential(t testing.TB) *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("initdb cannot run as root and there is no postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// makeDir makes the server's directory, owned by the user it runs as (a
// t.TempDir is below directories only root may enter).
func (s *Postgres) makeDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "keepsake-postgres-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if s.cred != nil {
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// initdb creates the cluster; the password goes through a file, never
// through args.
func (s *Postgres) initdb(t testing.TB) {
	t.Helper()
	pwfile := filepath.Join(s.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s.cred != nil {
		if err := os.Chown(pwfile, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(filepath.Join(PostgresBinDir, "initdb"), "-D", filepath.Join(s.Dir, "data"), "-U", s.User,
		"--pwfile="+pwfile, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	_ = os.Remove(pwfile)
}

func (s *Postgres) start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(filepath.Join(PostgresBinDir, "postgres"), "-D", filepath.Join(s.Dir, "data"),
		"-c", "listen_addresses="+s.Host, "-c", "port="+s.Port, "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "logging_collector=off", "-c", "max_connections=50")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	log, err := os.Create(filepath.Join(s.Dir, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		_ = log.Close()
		close(s.exited)
	}()
}

// waitReady runs pg_isready until the server accepts connections, failing
// at once if it exits.
func (s *Postgres) waitReady(limit time.Duration) error {
	deadline := time.After(limit)
	for {
		if exec.Command(filepath.Join(PostgresBinDir, "pg_isready"), "-q", "-h", s.Host, "-p", s.Port).Run() == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited before accepting connections: %v", s.cmd.ProcessState)
		case <-deadline:
			return fmt.Errorf("not accepting connections on %s:%s within %s", s.Host, s.Port, limit)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Env is the libpq environment that connects to database as the superuser.
func (s *Postgres) Env(database string) []string {
	return []string{"PGHOST=" + s.Host, "PGPORT=" + s.Port, "PGUSER=" + s.User, "PGPASSWORD=" + s.Password,
		"PGDATABASE=" + database, "PGSSLMODE=disable", "PGOPTIONS=-c client_min_messages=warning"}
}

// Command prepares one of the client tools (psql, pg_dump, ...) of
// PostgresBinDir, connecting to database as the superuser.
func (s *Postgres) Command(database, tool string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(PostgresBinDir, tool), args...)
	cmd.Env = append(os.Environ(), s.Env(database)...)
	return cmd
}

// SQL runs sql (any number of statements) in database with psql, stopping
// at the first error, and returns what it printed unaligned, without
// headers.
func (s *Postgres) SQL(database, sql string) (string, error) {
	cmd := s.Command(database, "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1")
	cmd.Stdin = strings.NewReader(sql)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("psql on %s: %v: %s", database, err, errOut.String())
	}
	return out.String(), nil
}

// MustSQL is SQL for tests.
func (s *Postgres) MustSQL(t testing.TB, database, sql string) string {
	t.Helper()
	out, err := s.SQL(database, sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Stop stops the server by its PID (SIGINT, PostgreSQL's fast shutdown,
// which disconnects every session; SIGKILL after 30 s) and waits for it
// to exit. It is safe to call more than once.
func (s *Postgres) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

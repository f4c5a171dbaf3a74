package servers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InfluxDB is a real InfluxDB 1.x server (Debian's influxd) on loopback,
// standing in for HyperbyteDB, which speaks the same v1 HTTP API.
type InfluxDB struct {
	// URL is the HTTP API's base URL, e.g. http://127.0.0.1:40123.
	URL string
	// Username and Password of the admin user; empty unless WithAuth.
	Username, Password string
	// Dir holds the server's config, data and log.
	Dir string

	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
}

// InfluxDBOption configures StartInfluxDB.
type InfluxDBOption func(*influxConfig)

type influxConfig struct {
	auth bool
}

// WithAuth enables authentication and creates an admin user.
func WithAuth() InfluxDBOption {
	return func(c *influxConfig) { c.auth = true }
}

// influxStartLimit bounds the wait for /ping; influxd is usually up in
// well under a second, but a loaded CI machine can be slow.
const influxStartLimit = 60 * time.Second

// StartInfluxDB starts influxd with its own config and data in a temporary
// directory, on free loopback ports, and waits until /ping answers. The
// server is killed when the test ends.
func StartInfluxDB(t testing.TB, opts ...InfluxDBOption) *InfluxDB {
	t.Helper()
	SkipIfShort(t, "InfluxDB")
	var cfg influxConfig
	for _, o := range opts {
		o(&cfg)
	}
	dir := t.TempDir()
	httpAddr, rpcAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	conf := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(conf, []byte(influxConf(dir, httpAddr, rpcAddr, cfg.auth)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &InfluxDB{URL: "http://" + httpAddr, Dir: dir, exited: make(chan struct{})}
	s.start(t, conf)
	t.Cleanup(s.Stop)
	if err := s.waitReady(influxStartLimit); err != nil {
		t.Fatalf("influxd: %v\n%s", err, s.logTail())
	}
	if cfg.auth {
		s.createAdmin(t)
	}
	return s
}

func (s *InfluxDB) start(t testing.TB, conf string) {
	t.Helper()
	log, err := os.Create(filepath.Join(s.Dir, "influxd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	s.cmd = exec.Command(Bin(t, "influxd"), "run", "-config", conf)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start influxd: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
}

func influxConf(dir, httpAddr, rpcAddr string, auth bool) string {
	return fmt.Sprintf(`reporting-enabled = false
bind-address = %q
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[http]
  bind-address = %q
  auth-enabled = %t
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
`, rpcAddr, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpAddr, auth)
}

// waitReady polls /ping until it answers 204, failing at once if influxd
// exits.
func (s *InfluxDB) waitReady(limit time.Duration) error {
	deadline := time.After(limit)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(s.URL + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited before answering /ping: %v", s.cmd.ProcessState)
		case <-deadline:
			return fmt.Errorf("no answer on %s/ping within %s", s.URL, limit)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// createAdmin creates the first user, which InfluxDB allows without
// credentials while no user exists.
func (s *InfluxDB) createAdmin(t testing.TB) {
	t.Helper()
	var secret [12]byte
	if _, err := rand.Read(secret[:]); err != nil {
		t.Fatal(err)
	}
	s.Username, s.Password = "admin", hex.EncodeToString(secret[:])
	q := fmt.Sprintf("CREATE USER %s WITH PASSWORD '%s' WITH ALL PRIVILEGES", s.Username, s.Password)
	resp, err := http.PostForm(s.URL+"/query", url.Values{"q": {q}})
	if err != nil {
		t.Fatalf("create admin user: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create admin user: %s", resp.Status)
	}
	s.waitForAuth(t)
}

// waitForAuth waits until influxd enforces the new admin user: its HTTP
// handler learns of the user shortly after CREATE USER returns, and until
// then answers 403 "create admin user first" rather than 401.
func (s *InfluxDB) waitForAuth(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		last := "no answer"
		resp, err := http.Get(s.URL + "/query?q=" + url.QueryEscape("SHOW DATABASES"))
		if err != nil {
			last = err.Error()
		} else {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return
			}
			last = resp.Status
		}
		if time.Now().After(deadline) {
			t.Fatalf("influxd does not enforce authentication 30 s after creating the admin user (last answer: %s)", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Pid returns influxd's process ID.
func (s *InfluxDB) Pid() int { return s.cmd.Process.Pid }

// Stop kills influxd (SIGTERM, then SIGKILL after 10 s) and waits for it to
// exit. It is safe to call more than once, e.g. from a test that stops the
// server mid-run and from cleanup.
func (s *InfluxDB) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

// Kill ends influxd at once with SIGKILL, as a crash would, and waits for
// it to exit.
func (s *InfluxDB) Kill() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
}

func (s *InfluxDB) logTail() string {
	data, _ := os.ReadFile(filepath.Join(s.Dir, "influxd.log"))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// freeLoopbackAddr returns a loopback address with a port that was free a
// moment ago. Another process could take it before the server binds; the
// server then fails to start with a clear log line rather than hanging.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

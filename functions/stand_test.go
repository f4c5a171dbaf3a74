package functions

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// binDir holds the driver and keepsake binaries TestMain builds from this
// tree, so the tests always run the code under test.
var binDir string

func TestMain(m *testing.M) {
	code, err := buildAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func buildAndRun(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "keepsake-functions-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	binDir = dir
	// Each binary is built in its own module: the root, or an addon's
	// (the script driver: a driver that counts nothing).
	for name, build := range map[string]struct{ module, pkg string }{
		"hyperbytedb-driver": {".", "../addons/hyperbytedb/cmd/hyperbytedb-driver"},
		"keepsake":           {".", "../cmd/keepsake"},
		"script-driver":      {"../addons/script", "./cmd/script-driver"},
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), build.pkg)
		cmd.Dir = build.module
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("build %s: %v\n%s", name, err, out)
		}
	}
	return m.Run(), nil
}

// stand is a test bed: InfluxDB with auth, MinIO with a bucket, the
// storage file and secrets a Job would have mounted.
type stand struct {
	influx  *servers.InfluxDB
	api     hyperbytedbtest.Server
	minio   *servers.MinIO
	dir     string
	storage string // storage settings file
	creds   string // mounted storage Secret
	auth    string // mounted InfluxDB auth Secret
}

func newStand(t testing.TB) *stand {
	t.Helper()
	s := newStorageStand(t)
	s.influx = servers.StartInfluxDB(t, servers.WithAuth())
	s.api = hyperbytedbtest.Server{URL: s.influx.URL, Username: s.influx.Username, Password: s.influx.Password}
	s.auth = s.secret(t, "influx-auth", map[string]string{"username": s.influx.Username, "password": s.influx.Password})
	return s
}

// newStorageStand is a stand with MinIO only, for runs without a driver
// (retention, forget).
func newStorageStand(t testing.TB) *stand {
	t.Helper()
	s := &stand{minio: servers.StartMinIO(t), dir: t.TempDir()}
	s.minio.CreateBucket(t, "backups")
	s.storage = s.file(t, "storage.json", fmt.Sprintf(
		`{"provider":"s3","s3":{"endpoint":%q,"bucket":"backups","prefix":"keepsake","forcePathStyle":true}}`, s.minio.Endpoint))
	s.creds = s.secret(t, "storage-secret", map[string]string{"AWS_ACCESS_KEY_ID": s.minio.AccessKey, "AWS_SECRET_ACCESS_KEY": s.minio.SecretKey})
	return s
}

func (s *stand) file(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o400); err != nil {
		t.Fatal(err)
	}
	return p
}

// secret writes a Secret as Kubernetes mounts it: one file per key.
func (s *stand) secret(t testing.TB, name string, data map[string]string) string {
	t.Helper()
	dir := filepath.Join(s.dir, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// repo returns the spec of repository name in the stand's storage.
func (s *stand) repo(t testing.TB, name string) RepositorySpec {
	t.Helper()
	return RepositorySpec{
		Name: name, StorageFile: s.storage, CredentialsDir: s.creds, Namespace: "prod", Directory: "db/" + name,
		PasswordFile: s.file(t, "password-"+name, "pw-"+name),
	}
}

// common returns the settings of a run against the stand's InfluxDB with
// params, reporting into out.
func (s *stand) common(t testing.TB, out *bytes.Buffer, params map[string]string) Common {
	t.Helper()
	p := map[string]string{"url": s.influx.URL, "authSecret": "influx-auth"}
	for k, v := range params {
		p[k] = v
	}
	return Common{
		Driver: filepath.Join(binDir, "hyperbytedb-driver"),
		Request: sdk.Request{
			Target:      sdk.Target{Kind: "HyperbytedbCluster", Name: "db", Namespace: "prod"},
			Params:      p,
			Credentials: map[string]string{"authSecret": s.auth},
			Component:   "dump",
		},
		Restic:   servers.Bin(t, "restic"),
		CacheDir: filepath.Join(s.dir, "cache"),
		Reporter: NewStdoutReporter(out),
		Log:      newTestLog(t),
	}
}

// resticRepo opens a repository of the stand directly.
func (s *stand) resticRepo(t testing.TB, spec RepositorySpec) *restic.Repo {
	t.Helper()
	cfg, err := spec.resticConfig(servers.Bin(t, "restic"), filepath.Join(s.dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return restic.New(cfg)
}

// snapshots lists a repository's snapshots; a repository that was never
// created has none.
func (s *stand) snapshots(t testing.TB, spec RepositorySpec) []restic.Snapshot {
	t.Helper()
	snaps, err := s.resticRepo(t, spec).Snapshots(context.Background())
	if err != nil && !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("snapshots of %s: %v", spec.Name, err)
	}
	return snaps
}

// testLog keeps driver logs and prints them if the test fails. (Calling
// t.Log from the plugin's log goroutine could outlive the test.)
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newTestLog(t testing.TB) *testLog {
	l := &testLog{}
	t.Cleanup(func() {
		if t.Failed() {
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Logf("driver log:\n%s", l.buf.String())
		}
	})
	return l
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// events parses StdoutReporter output.
func events(t testing.TB, out *bytes.Buffer) (components []ComponentResult, done []RunResult) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("report line %q: %v", sc.Text(), err)
		}
		if e.Component != nil {
			components = append(components, *e.Component)
		}
		if e.Done != nil {
			done = append(done, *e.Done)
		}
	}
	return components, done
}

// killWhenWritten calls kill with the driver's PID once the driver has
// written n bytes (to the host), watching /proc every few milliseconds.
// It gives up after a minute.
func killWhenWritten(t testing.TB, driver string, n int64, kill func(pid int)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if pid := childPid(driver); pid != 0 && writtenBytes(pid) >= n {
			kill(pid)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("driver %s never wrote %d bytes", driver, n)
}

// childPid finds a child process of this test running the binary path.
func childPid(path string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || exe != path {
			continue
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
			if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
				return pid
			}
		}
	}
	return 0
}

func writtenBytes(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// chunkerFixturePassword opens testdata/chunker-repo, an empty restic
// repository kept only for its chunker polynomial.
const chunkerFixturePassword = "keepsake-chunker-fixture"

// initWithFixedChunker creates spec's repository with the chunker
// polynomial of testdata/chunker-repo. restic draws a random polynomial for
// each new repository, so where it cuts a dump into chunks, and with it how
// many bytes a change adds, varies by up to a chunk from run to run; with
// one polynomial the dedup figures are the same on every run.
func (s *stand) initWithFixedChunker(t testing.TB, spec RepositorySpec) {
	t.Helper()
	cfg, err := spec.resticConfig(servers.Bin(t, "restic"), filepath.Join(s.dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	fixture, err := filepath.Abs(filepath.Join("testdata", "chunker-repo"))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"init", "--repository-version", "2", "--repo", cfg.Repository, "--password-file", cfg.PasswordFile,
		"--from-repo", fixture, "--from-password-file", s.file(t, "chunker-fixture-password", chunkerFixturePassword),
		"--copy-chunker-params"}, cfg.ExtraArgs...)
	cmd := exec.Command(cfg.Binary, args...)
	cmd.Env = append(os.Environ(), cfg.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restic init with the fixture's chunker: %v\n%s", err, out)
	}
}

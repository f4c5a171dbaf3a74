package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/repository/storage"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// driverEnv is what the driver benchmarks share: binaries built from this
// tree, an InfluxDB holding a generated dataset, a MinIO bucket for restic.
type driverEnv struct {
	dir     string
	bin     map[string]string
	influx  *servers.InfluxDB
	api     hyperbytedbtest.Server
	data    hyperbytedbtest.Bulk
	minio   *servers.MinIO
	storage storage.Config
	restic  string
	repos   *int
}

// envInt reads a positive integer from the environment, or returns def.
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// newDriverEnv builds the binaries, starts the servers and writes points
// points in 10 series to database "bench".
func newDriverEnv(b *testing.B, points int) *driverEnv {
	b.Helper()
	return newDriverTools(b).withData(b, hyperbytedbtest.Bulk{DB: "bench", N: points, Series: 10})
}

// newDriverTools builds this tree's binaries and starts MinIO; withData
// then adds a database, releaseDriver the release's driver.
func newDriverTools(b *testing.B) *driverEnv {
	b.Helper()
	e := &driverEnv{dir: b.TempDir(), bin: map[string]string{}, restic: servers.Bin(b, "restic"), repos: new(int)}
	root := servers.RepoRoot(b)
	for name, pkg := range map[string]string{
		"keepsake": "./cmd/keepsake", "hyperbytedb-driver": "./addons/hyperbytedb/cmd/hyperbytedb-driver",
		"driver_gen": "./test/bench/driver_gen",
	} {
		e.bin[name] = filepath.Join(e.dir, name)
		goBuild(b, root, e.bin[name], pkg)
	}
	e.minio = servers.StartMinIO(b)
	e.minio.CreateBucket(b, "bench")
	e.storage = storage.Config{
		Provider:    storage.ProviderS3,
		S3:          storage.S3Config{Endpoint: e.minio.Endpoint, Bucket: "bench", Prefix: "keepsake", ForcePathStyle: true},
		Credentials: storage.Credentials{AccessKeyID: e.minio.AccessKey, SecretAccessKey: e.minio.SecretKey},
	}
	return e
}

func goBuild(b *testing.B, dir, out, pkg string) {
	b.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0")
	if output, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build %s in %s: %v\n%s", pkg, dir, err, output)
	}
}

// releaseCommit is the release the dump is compared with: main when the
// speed targets were set (issue 10). KEEPSAKE_BENCH_RELEASE overrides it.
const releaseCommit = "9f343e2"

// releaseDriver builds the driver of the release commit from `git archive`
// of that commit (its whole tree: the driver with its own SDK and
// dependencies), so the comparison needs no copy of old code in this
// tree and leaves the repository's worktrees alone.
func (e *driverEnv) releaseDriver(b *testing.B) (string, string) {
	b.Helper()
	commit := cmp.Or(os.Getenv("KEEPSAKE_BENCH_RELEASE"), releaseCommit)
	out := filepath.Join(e.dir, "hyperbytedb-driver-"+commit)
	if _, err := os.Stat(out); err == nil {
		return out, commit
	}
	src := filepath.Join(e.dir, "release-"+commit)
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	archive := exec.Command("sh", "-c", `git archive "$1" | tar -x -C "$2"`, "sh", commit, src)
	archive.Dir = servers.RepoRoot(b)
	if output, err := archive.CombinedOutput(); err != nil {
		b.Fatalf("git archive %s: %v\n%s", commit, err, output)
	}
	goBuild(b, src, out, "./addons/hyperbytedb/cmd/hyperbytedb-driver")
	return out, commit
}

// withData returns e with its own InfluxDB holding the points of data.
func (e *driverEnv) withData(b *testing.B, data hyperbytedbtest.Bulk) *driverEnv {
	b.Helper()
	se := *e
	se.influx = servers.StartInfluxDB(b)
	se.api = hyperbytedbtest.Server{URL: se.influx.URL}
	se.data = data
	start := time.Now()
	data.Write(b, se.api, 0, data.N)
	b.Logf("wrote %d points in %d series in %s", data.N, data.Series, time.Since(start).Round(time.Millisecond))
	return &se
}

// newRepo creates a fresh restic repository and returns its config.
func (e *driverEnv) newRepo(b *testing.B) (restic.Config, string) {
	b.Helper()
	*e.repos++
	dir := fmt.Sprintf("repo-%d", *e.repos)
	target, err := storage.ResticRepository(e.storage, "bench", dir)
	if err != nil {
		b.Fatal(err)
	}
	pw := filepath.Join(e.dir, dir+".password")
	if err := os.WriteFile(pw, []byte("pw-"+dir), 0o400); err != nil {
		b.Fatal(err)
	}
	cfg := restic.Config{Binary: e.restic, Repository: target.Repository, PasswordFile: pw, Env: target.Env,
		CacheDir: filepath.Join(e.dir, "cache"), ExtraArgs: target.ExtraArgs}
	if err := restic.New(cfg).InitIfAbsent(context.Background()); err != nil {
		b.Fatal(err)
	}
	return cfg, dir
}

// rawBackup runs `restic backup --stdin` as a user would, and returns how
// long it took.
func rawBackup(b *testing.B, cfg restic.Config, stdin io.Reader) time.Duration {
	b.Helper()
	args := []string{"backup", "--stdin", "--stdin-filename", "dump", "-q",
		"--repo", cfg.Repository, "--password-file", cfg.PasswordFile, "--cache-dir", cfg.CacheDir}
	cmd := exec.Command(cfg.Binary, append(args, cfg.ExtraArgs...)...)
	cmd.Env = append(os.Environ(), cfg.Env...)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stderr = stdin, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("restic backup: %v\n%s", err, stderr.String())
	}
	return time.Since(start)
}

// writeSecretDir writes a storage Secret as Kubernetes mounts it.
func (e *driverEnv) writeSecretDir(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(e.dir, "storage-secret")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": e.minio.AccessKey, "AWS_SECRET_ACCESS_KEY": e.minio.SecretKey} {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o400); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// keepsakeBackup runs `keepsake run backup` of database bench into
// repository dir (already initialised) and returns how long it took.
// watch, if set, is called with the runtime's PID while it runs.
func (e *driverEnv) keepsakeBackup(b *testing.B, cfg restic.Config, dir string, watch func(pid int) func()) time.Duration {
	return e.keepsakeRun(b, "backup", cfg, dir, "hyperbytedb-driver", watch, "url="+e.influx.URL, "databases="+e.data.DB)
}

// keepsakeRun runs `keepsake run <op>` (backup or restore of the latest
// snapshot) with the named driver and parameters on repository dir and
// returns how long it took.
func (e *driverEnv) keepsakeRun(b *testing.B, op string, cfg restic.Config, dir, driver string, watch func(pid int) func(), params ...string) time.Duration {
	b.Helper()
	storageFile := filepath.Join(e.dir, "storage.json")
	settings := fmt.Sprintf(`{"provider":"s3","s3":{"endpoint":%q,"bucket":"bench","prefix":"keepsake","forcePathStyle":true}}`, e.minio.Endpoint)
	if err := os.WriteFile(storageFile, []byte(settings), 0o400); err != nil {
		b.Fatal(err)
	}
	repo := strings.Join([]string{"name=bench", "storage=" + storageFile, "credentials=" + e.writeSecretDir(b),
		"namespace=bench", "directory=" + dir, "password-file=" + cfg.PasswordFile}, ",")
	args := []string{"run", op, "--driver", e.bin[driver], "--component", "dump", "--repository", repo,
		"--restic", e.restic, "--cache-dir", cfg.CacheDir, "--target-name", "bench", "--target-namespace", "bench"}
	for _, p := range params {
		args = append(args, "--param", p)
	}
	cmd := exec.Command(e.bin["keepsake"], args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var stop func()
	if watch != nil {
		stop = watch(cmd.Process.Pid)
	}
	err := cmd.Wait()
	took := time.Since(start)
	if stop != nil {
		stop()
	}
	if err != nil || !strings.Contains(stdout.String(), `"phase":"Succeeded"`) {
		b.Fatalf("keepsake run %s: %v\n%s\n%s", op, err, stdout.String(), stderr.String())
	}
	return took
}

// payload is the generated stream of driver_gen with the same seed.
func payload(seed, size int64) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	return io.LimitReader(rand.NewChaCha8(key), size)
}

package addons

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/addons/sdk/sdktest"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// build builds a command of module dir (relative to the repository root)
// into a temporary directory.
func build(t *testing.T, dir, pkg, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = filepath.Join(servers.RepoRoot(t), dir)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

// authSecret writes a Secret as Kubernetes mounts it: redis-cli reads
// REDISCLI_AUTH from the environment, so the password is never an arg.
func authSecret(t *testing.T, password string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "REDISCLI_AUTH"), []byte(password), 0o400); err != nil {
		t.Fatal(err)
	}
	return dir
}

func rdbCommand(r *servers.Redis) string {
	return fmt.Sprintf("redis-cli -h %s -p %s --no-auth-warning --rdb -", r.Host, r.Port)
}

// TestScriptRedisThroughTheSDK backs up a real Redis with its own
// redis-cli through the script driver, restores the RDB file into a fresh
// server's directory, and compares the data sets' digests.
func TestScriptRedisThroughTheSDK(t *testing.T) {
	src := servers.StartRedis(t)
	want := FillRedis(t, src)
	driver := build(t, "addons/script", "./cmd/script-driver", "script-driver")
	creds := map[string]string{"secret": authSecret(t, src.Password)}
	backup := &sdk.BackupRequest{Request: sdk.Request{Component: "dump.rdb", Credentials: creds,
		Params: map[string]string{"backupCommand": rdbCommand(src), "secret": "redis-auth"}}}
	ctx := context.Background()
	dump, err := sdktest.Backup(ctx, t, sdktest.Start(t, driver).Client, backup)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	restore := &sdk.RestoreRequest{Request: sdk.Request{Component: "dump.rdb",
		Params: map[string]string{"restoreCommand": "cat > " + filepath.Join(dir, "dump.rdb")}}}
	if _, err := sdktest.Restore(ctx, t, sdktest.Start(t, driver).Client, restore, dump); err != nil {
		t.Fatal(err)
	}
	if got := servers.StartRedisIn(t, dir, "").MustDo(t, "DEBUG", "DIGEST"); got != want {
		t.Fatalf("restored data set digest %s, want %s", got, want)
	}
}

// runStand is what `keepsake run` needs: the binaries and a local restic
// repository.
type runStand struct {
	keepsake, driver, restic string
	repo, password, cache    string
}

func newRunStand(t *testing.T) *runStand {
	dir := t.TempDir()
	s := &runStand{
		keepsake: build(t, ".", "./cmd/keepsake", "keepsake"),
		driver:   build(t, "addons/script", "./cmd/script-driver", "script-driver"),
		restic:   servers.Bin(t, "restic"),
		repo:     filepath.Join(dir, "repo"), password: filepath.Join(dir, "password"), cache: filepath.Join(dir, "cache"),
	}
	if err := os.WriteFile(s.password, []byte("repository password"), 0o400); err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs `keepsake run <op>` with the script driver and returns its exit
// code, stdout and stderr.
func (s *runStand) run(t *testing.T, op string, args ...string) (int, string, string) {
	t.Helper()
	all := append([]string{"run", op, "--driver", s.driver, "--component", "dump.rdb", "--restic", s.restic,
		"--cache-dir", s.cache, "--repository", "name=local,restic=" + s.repo + ",password-file=" + s.password,
		"--target-kind", "Service", "--target-name", "redis", "--target-namespace", "prod"}, args...)
	cmd := exec.Command(s.keepsake, all...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	_ = cmd.Run()
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// snapshots counts the restic repository's snapshots (0 before the first
// backup created it).
func (s *runStand) snapshots(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(s.restic, "--repo", s.repo, "--password-file", s.password, "--no-cache", "snapshots", "--json")
	out, err := cmd.Output()
	if err != nil {
		if _, statErr := os.Stat(s.repo); os.IsNotExist(statErr) {
			return 0
		}
		t.Fatalf("restic snapshots: %v", err)
	}
	var snaps []json.RawMessage
	if err := json.Unmarshal(out, &snaps); err != nil {
		t.Fatal(err)
	}
	return len(snaps)
}

// TestScriptRedisThroughKeepsakeRun runs the script driver as a Job does:
// `keepsake run backup` into a restic repository, `keepsake run restore`
// of the latest snapshot; failing commands make no snapshot.
func TestScriptRedisThroughKeepsakeRun(t *testing.T) {
	src := servers.StartRedis(t)
	want := FillRedis(t, src)
	s := newRunStand(t)
	secret := "secret=" + authSecret(t, src.Password)

	code, out, errOut := s.run(t, "backup", "--param", "backupCommand="+rdbCommand(src), "--param", "secret=redis-auth", "--secret", secret)
	if code != 0 || !strings.Contains(out, `"phase":"Succeeded"`) || s.snapshots(t) != 1 {
		t.Fatalf("backup: exit %d, %d snapshots\nstdout:\n%s\nstderr:\n%s", code, s.snapshots(t), out, errOut)
	}
	dir := t.TempDir()
	code, out, errOut = s.run(t, "restore", "--snapshot", "latest", "--param", "restoreCommand=cat > "+filepath.Join(dir, "dump.rdb"))
	if code != 0 || !strings.Contains(out, `"phase":"Succeeded"`) {
		t.Fatalf("restore: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if got := servers.StartRedisIn(t, dir, "").MustDo(t, "DEBUG", "DIGEST"); got != want {
		t.Fatalf("restored data set digest %s, want %s", got, want)
	}

	failures := map[string]struct {
		command string // the backup command
		want    string // substring of keepsake's stderr
	}{
		"non-zero exit": {
			command: fmt.Sprintf("redis-cli -h %s -p %s --no-auth-warning -a wrong --rdb -", src.Host, src.Port),
			want:    "backup command exited with status 1: AUTH failed: WRONGPASS",
		},
		// The whole RDB file was written before the shell was killed: still no snapshot.
		"killed by a signal": {
			command: rdbCommand(src) + "; echo 'killed after the dump' >&2; kill -9 $$",
			want:    "backup command was killed by signal 9 (killed): ",
		},
	}
	for name, tc := range failures {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := s.run(t, "backup", "--param", "backupCommand="+tc.command, "--param", "secret=redis-auth", "--secret", secret)
			if code == 0 || !strings.Contains(errOut, tc.want) || !strings.Contains(out, `"phase":"Failed"`) {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			if n := s.snapshots(t); n != 1 {
				t.Fatalf("%d snapshots after a failed backup, want the first one only", n)
			}
		})
	}
}

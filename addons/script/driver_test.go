package script_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/addons/sdk/sdktest"
)

// driverBin is the script driver TestMain builds from this tree, so the
// tests run the binary the runtime would run.
var driverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "script-driver-")
	if err != nil {
		panic(err)
	}
	driverBin = filepath.Join(dir, "script-driver")
	build := exec.Command("go", "build", "-o", driverBin, "./cmd/script-driver")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build script-driver: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func backupReq(command string) *sdk.BackupRequest {
	return &sdk.BackupRequest{Request: sdk.Request{Params: map[string]string{"backupCommand": command},
		Target: sdk.Target{Kind: "Service", Name: "db", Namespace: "prod"}, Component: "dump"}}
}

func restoreReq(command string) *sdk.RestoreRequest {
	return &sdk.RestoreRequest{Request: sdk.Request{Params: map[string]string{"restoreCommand": command},
		Target: sdk.Target{Kind: "Service", Name: "db", Namespace: "prod"}, Component: "dump"}}
}

func TestConformance(t *testing.T) {
	out := filepath.Join(t.TempDir(), "restored")
	sdktest.Conformance(t, driverBin, sdktest.Options{
		Backup:        backupReq("seq 1 100000"),
		FailingBackup: backupReq("seq 1 1000; echo 'ERROR: no such database' >&2; exit 3"),
		// 64 MiB outgrow the SDK's flow-control windows: still running when cancelled.
		CancelBackup: backupReq("head -c 67108864 /dev/zero"),
		Restore:      restoreReq("cat > " + out),
	})
}

// TestRoundTrip backs up a command's output with the target's variables
// and a Secret's keys in its environment, and restores it byte for byte.
func TestRoundTrip(t *testing.T) {
	secret := t.TempDir()
	for name, value := range map[string]string{"DB_PASSWORD": "s3cret", "not-a-name": "x", "..data": "y"} {
		if err := os.WriteFile(filepath.Join(secret, name), []byte(value), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	req := backupReq(`echo "$KEEPSAKE_TARGET_NAMESPACE/$KEEPSAKE_TARGET_NAME $KEEPSAKE_COMPONENT $DB_PASSWORD"; env | grep -c '^not-a-name=' ; seq 1 300000`)
	req.Params["secret"] = "db-auth"
	req.Credentials = map[string]string{"secret": secret}
	ctx := context.Background()
	dump, err := sdktest.Backup(ctx, t, sdktest.Start(t, driverBin).Client, req)
	if err != nil {
		t.Fatal(err)
	}
	want := "prod/db dump s3cret\n0\n" + seqOutput(300000)
	if got := readFile(t, dump.Path); got != want {
		t.Fatalf("dump starts %q, want %q", got[:min(60, len(got))], want[:60])
	}
	out := filepath.Join(t.TempDir(), "restored")
	if _, err := sdktest.Restore(ctx, t, sdktest.Start(t, driverBin).Client, restoreReq("cat > "+out), dump); err != nil {
		t.Fatal(err)
	}
	if readFile(t, out) != want {
		t.Fatal("restored bytes differ from the dump")
	}
}

func TestBackupFailures(t *testing.T) {
	tests := map[string]struct {
		command string // the backup command
		want    string // substring of the error
	}{
		"non-zero exit": {
			command: "seq 1 5000; echo 'mariadb-dump: Got error: 1049: Unknown database' >&2; exit 2",
			want:    "backup command exited with status 2: mariadb-dump: Got error: 1049: Unknown database",
		},
		"shell killed by a signal": {
			command: "seq 1 5000; echo 'about to die' >&2; kill -9 $$",
			want:    "backup command was killed by signal 9 (killed): about to die",
		},
		"a command killed by a signal": {
			command: "echo dying >&2; sh -c 'kill -TERM $$'",
			want:    "backup command exited with status 143 (a command killed by signal 15, terminated): dying",
		},
		"only the last lines of stderr": {
			command: "for i in $(seq 1 50); do echo line $i >&2; done; exit 1",
			want:    "status 1: line 41 | line 42",
		},
		"no output":     {command: "true", want: "backup command wrote nothing to its standard output"},
		"empty command": {command: " ", want: "parameter backupCommand is empty"},
		"not mounted": {
			command: "true",
			want:    `secret "db-auth" is set but not mounted as credential secret`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := backupReq(tc.command)
			if name == "not mounted" {
				req.Params["secret"] = "db-auth"
			}
			_, err := sdktest.Backup(context.Background(), t, sdktest.Start(t, driverBin).Client, req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
			if name == "only the last lines of stderr" && strings.Contains(err.Error(), "line 40 ") {
				t.Fatalf("error %q keeps more than the last 10 lines", err)
			}
		})
	}
}

func TestRestoreFailures(t *testing.T) {
	dump := makeDump(t, seqOutput(200000))
	tests := map[string]struct {
		command string // the restore command
		want    string // substring of the error
	}{
		"non-zero exit": {
			command: "cat > /dev/null; echo 'ERROR 1045 (28000): Access denied' >&2; exit 1",
			want:    "restore command exited with status 1: ERROR 1045 (28000): Access denied",
		},
		"exits before the end": {
			command: "head -c 10 > /dev/null",
			want:    "restore command exited after reading",
		},
		"killed by a signal": {
			command: "head -c 1000 > /dev/null; kill -9 $$",
			want:    "restore command was killed by signal 9 (killed)",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := sdktest.Restore(context.Background(), t, sdktest.Start(t, driverBin).Client, restoreReq(tc.command), dump)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestCancelKillsThePipeline: a cancelled backup kills every process of
// its command, not only the shell.
func TestCancelKillsThePipeline(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	d := sdktest.Start(t, driverBin)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := d.Client.Backup(ctx, backupReq("echo $$ > "+pidFile+"; echo started; sleep 600 | cat"), &bytes.Buffer{})
		done <- err
	}()
	pgid := waitForPid(t, pidFile)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled backup succeeded")
	}
	if err := d.Log.WaitReturnedAfterCancel("Backup", sdktest.StopLimit); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d of the cancelled command still has processes", pgid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitForPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(data), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the backup command never started")
	return 0
}

func seqOutput(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

func makeDump(t *testing.T, content string) sdktest.Dump {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dump")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return sdktest.Dump{Path: p, Bytes: uint64(len(content))}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

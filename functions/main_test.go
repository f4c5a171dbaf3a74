package functions

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// TestKeepsakeRun runs the keepsake binary as a Job would: backup with
// flags, restore with KEEPSAKE_* variables, and a failing run.
func TestKeepsakeRun(t *testing.T) {
	s := newStand(t)
	ds := hyperbytedbtest.Mixed(time.Now())
	ds.Write(t, s.api)
	repo := s.repo(t, "primary")
	repoFlag := "name=primary,storage=" + repo.StorageFile + ",credentials=" + repo.CredentialsDir +
		",namespace=prod,directory=db/primary,password-file=" + repo.PasswordFile
	params := s.file(t, "params.json", `{"url": "`+s.influx.URL+`", "authSecret": "influx-auth", "mode": "merge"}`)
	common := []string{"--driver", filepath.Join(binDir, "hyperbytedb-driver"), "--component", "dump",
		"--restic", servers.Bin(t, "restic"), "--cache-dir", filepath.Join(s.dir, "cache"),
		"--target-kind", "HyperbytedbCluster", "--target-name", "db", "--target-namespace", "prod"}

	out, _ := keepsake(t, 0, nil, append([]string{"run", "backup", "--repository", repoFlag, "--params-file", params,
		"--secret", "authSecret=" + s.auth, "--session", "cli"}, common...)...)
	if !strings.Contains(out, `"event":"done","done":{"operation":"backup","phase":"Succeeded"`) {
		t.Fatalf("backup report:\n%s", out)
	}

	for _, db := range ds.Databases {
		s.api.Exec(t, "DROP DATABASE "+quoteIdent(db.Name))
	}
	env := []string{"KEEPSAKE_REPOSITORY=" + repoFlag, "KEEPSAKE_PARAMS_FILE=" + params, "KEEPSAKE_SECRET=authSecret=" + s.auth,
		"KEEPSAKE_PARAM=mode=replace", "KEEPSAKE_SNAPSHOT=latest"}
	out, _ = keepsake(t, 0, env, append([]string{"run", "restore"}, common...)...)
	if !strings.Contains(out, `"done":{"operation":"restore","phase":"Succeeded"`) {
		t.Fatalf("restore report:\n%s", out)
	}
	assertContents(t, s, ds.Contents())

	out, stderr := keepsake(t, 1, nil, append([]string{"run", "backup", "--repository", repoFlag, "--params-file", params,
		"--param", "databases=missing", "--secret", "authSecret=" + s.auth}, common...)...)
	if !strings.Contains(stderr, "keepsake: driver hyperbytedb-driver: backup: dump: databases not found on the server: missing") ||
		!strings.Contains(out, `"phase":"Failed"`) {
		t.Fatalf("failed backup: stdout:\n%s\nstderr:\n%s", out, stderr)
	}
}

// keepsake runs the binary and checks its exit code.
func keepsake(t *testing.T, wantCode int, env []string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "keepsake"), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != wantCode {
		t.Fatalf("keepsake %s: exit %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", args[:2], code, err, wantCode, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

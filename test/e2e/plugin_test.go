package e2e

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/test/demo"
)

// plugin runs bin/kubectl-keepsake against the local cluster in e's
// namespace and returns its output and exit code.
func plugin(t *testing.T, e *demo.Env, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	full := append([]string{"--kubeconfig", e.Cluster.AdminKubeconfig(), "-n", e.Params.Namespace}, args...)
	var out, errOut bytes.Buffer
	cmd := exec.Command(filepath.Join(e.Root, "bin", "kubectl-keepsake"), full...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run kubectl-keepsake: %v", err)
	}
	t.Logf("$ kubectl keepsake %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), errOut.String(), code
}

// kubectlPlugin: the plugin drives a backup and a restore from end to end
// as a user would (backup --wait, snapshots, restore --wait, describe),
// every point comes back, and bad input gets a one-line error and a
// non-zero exit.
func kubectlPlugin(t *testing.T, e *demo.Env) {
	e = e.With(t)
	// What the database holds now (earlier scenarios added to it) is what
	// the plugin's backup must bring back.
	want := hyperbytedbtest.ReadContents(t, e.DB)
	// Scheduled once a year: only the first run and the plugin's back up.
	e.Apply(demo.BackupConfiguration, func(p *demo.Params) {
		p.Name, p.Schedule, p.AuthSecret, p.Directory = "by-plugin", "0 0 1 1 *", "metrics-auth", "by-plugin"
	})
	e.WaitBackupSession("by-plugin-scheduled-first", corev1alpha1.BackupSessionSucceeded)

	out, _, code := plugin(t, e, "backup", "by-plugin", "--wait")
	if code != 0 || !strings.Contains(out, "Succeeded") {
		t.Fatalf("backup --wait exited %d", code)
	}
	out, _, code = plugin(t, e, "snapshots", "by-plugin")
	rows := strings.Split(strings.TrimSpace(out), "\n")[1:] // below the header
	if code != 0 || len(rows) != 2 {
		t.Fatalf("snapshots exited %d with %d rows; want the first and the plugin's Snapshot", code, len(rows))
	}
	for _, row := range rows {
		if f := strings.Fields(row); len(f) < 7 || f[1] != "by-plugin-repo" || f[len(f)-2] != "Succeeded" {
			t.Errorf("snapshots row %q: want repository by-plugin-repo, phase Succeeded", row)
		}
	}
	e.DropAll()
	out, _, code = plugin(t, e, "restore", "latest", "--repository", "by-plugin-repo", "--wait")
	if code != 0 || !strings.Contains(out, "Succeeded") {
		t.Fatalf("restore --wait exited %d", code)
	}
	got := hyperbytedbtest.ReadContents(t, e.DB)
	if diff := hyperbytedbtest.Diff(want, got, 10); diff != "" {
		t.Fatalf("database restored by the plugin differs:\n%s", diff)
	}
	out, _, code = plugin(t, e, "describe", "by-plugin")
	if code != 0 || !strings.Contains(out, "repository by-plugin-repo  Ready") {
		t.Fatalf("describe exited %d", code)
	}

	for name, tc := range map[string]struct {
		args []string // command line
		want string   // what its one-line error says
	}{
		"unknown configuration":  {[]string{"backup", "nope"}, `BackupConfiguration "nope" not found`},
		"restore, no repository": {[]string{"restore", "latest"}, "name the Repository holding the Snapshot with --repository"},
		"missing snapshot":       {[]string{"restore", "nope", "--repository", "by-plugin-repo"}, `snapshot "nope" not found`},
		"bad target":             {[]string{"restore", "latest", "--repository", "by-plugin-repo", "--to", "pod/x"}, "want KIND/NAME"},
	} {
		_, stderr, code := plugin(t, e, tc.args...)
		if code == 0 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want a non-zero exit and one line saying %q", name, code, stderr, tc.want)
		}
	}
}

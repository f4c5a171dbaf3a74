package plugin

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// startAPI starts a kube-apiserver with Keepsake's CRDs and returns a
// client and a kubeconfig file for the plugin.
func startAPI(t *testing.T) (client.Client, string) {
	t.Helper()
	servers.SkipIfShort(t, "kube-apiserver")
	api, err := servers.StartAPIServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Stop() })
	c, err := client.New(api.Config, client.Options{Scheme: newScheme()})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, api.Env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return c, p
}

// answerCheck plays the operator and the check Job: once the Repository
// asks for a check, it records result as that check's verdict.
func answerCheck(ctx context.Context, t *testing.T, c client.Client, name string, result storagev1alpha1.IntegrityResult, message string) {
	repo := &storagev1alpha1.Repository{}
	_ = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, repo); err != nil {
			return false, nil
		}
		req := repo.Annotations[storagev1alpha1.AnnotationCheckRequested]
		if req == "" || (repo.Status.IntegrityCheck != nil && repo.Status.IntegrityCheck.Request == req) {
			return false, nil
		}
		repo.Status.IntegrityCheck = &storagev1alpha1.IntegrityCheckStatus{
			LastCheckTime: &metav1.Time{Time: time.Now()}, Result: result, Message: message, Request: req,
		}
		if err := c.Status().Update(ctx, repo); err != nil {
			t.Logf("answer the check: %v", err)
			return false, nil
		}
		return true, nil
	})
}

// TestCheckCommand runs `kubectl keepsake check REPO --wait` against a
// kube-apiserver: it asks for a check through the Repository's annotation
// and shows the verdict of the check that answered it; a failed check is
// a failed command. An earlier verdict is not taken for the new one.
func TestCheckCommand(t *testing.T) {
	c, kubeconfig := startAPI(t)
	repo := &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "metrics"},
		Spec: storagev1alpha1.RepositorySpec{StorageRef: storagev1alpha1.ObjectReference{Name: "s3"}, Path: "db",
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: "pw"}},
	}
	if err := c.Create(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
	run := func(result storagev1alpha1.IntegrityResult, message string, wantCode int) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		go answerCheck(ctx, t, c, "metrics", result, message)
		var out, errOut bytes.Buffer
		code := Run(ctx, []string{"--kubeconfig", kubeconfig, "-n", "default", "check", "metrics", "--wait"}, &out, &errOut)
		if code != wantCode {
			t.Fatalf("check --wait: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	out := run(storagev1alpha1.IntegrityPassed, "no errors were found", 0)
	if !strings.Contains(out, "repository/metrics check requested") || !strings.Contains(out, "Passed: no errors were found") {
		t.Fatalf("output of a passing check:\n%s", out)
	}
	out = run(storagev1alpha1.IntegrityFailed, "restic check found damage: pack 560d907d contains 2 errors", 1)
	if !strings.Contains(out, "Failed: restic check found damage: pack 560d907d") || !strings.Contains(out, "check of repository metrics: Failed") {
		t.Fatalf("output of a failing check:\n%s", out)
	}
}

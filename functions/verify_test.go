package functions

import (
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// backedUpSnapshot creates a Succeeded Snapshot whose one component is
// the restic snapshot id, recorded with size bytes, as a backup records it.
func backedUpSnapshot(t *testing.T, c client.Client, name, id string, size int64) {
	t.Helper()
	snap := createSnapshot(t, c, name, "bks-"+name, "verified")
	snap.Status = storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotSucceeded, Components: map[string]storagev1alpha1.ComponentStatus{
		"dump": {Phase: storagev1alpha1.ComponentSucceeded, ResticSnapshotID: id, Path: "/dump", SizeBytes: size},
	}}
	if err := c.Status().Update(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
}

// assertVerification checks the verdict recorded in Snapshot name.
func assertVerification(t *testing.T, c client.Client, name string, want storagev1alpha1.VerificationStatus, message string) {
	t.Helper()
	snap := getSnapshot(t, c, name)
	cond := meta.FindStatusCondition(snap.Status.Conditions, storagev1alpha1.ConditionVerified)
	v := snap.Status.Verification
	if snap.Status.VerificationStatus != want || cond == nil || (cond.Status == metav1.ConditionTrue) != (want == storagev1alpha1.Verified) ||
		v == nil || v.LastVerifyTime == nil || v.Request != "r1" || !strings.Contains(v.Message, message) || cond.Message != v.Message {
		t.Fatalf("Snapshot %s: verificationStatus %q, condition %+v, verification %+v; want %s saying %q",
			name, snap.Status.VerificationStatus, cond, v, want, message)
	}
	if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Fatalf("Snapshot %s: phase %s, the verification must not change it", name, snap.Status.Phase)
	}
}

// TestVerifyReadsTheSnapshotBack runs the verify task against a real
// restic repository and a kube-apiserver: a Snapshot whose data reads back
// as recorded is Verified; one whose recorded size differs from what the
// repository holds fails, and so does every Snapshot once the repository's
// packs are corrupted by hand.
func TestVerifyReadsTheSnapshotBack(t *testing.T) {
	c, _ := startKube(t)
	spec, repo := localRepo(t, "verified")
	const size = 300 << 10
	sum, err := repo.Backup(context.Background(), io.LimitReader(rand.NewChaCha8([32]byte{7}), size), restic.BackupOptions{Filename: "dump"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	backedUpSnapshot(t, c, "good", sum.SnapshotID, size)
	backedUpSnapshot(t, c, "wrong-size", sum.SnapshotID, size+1)
	cfg := VerifyConfig{Repository: spec, Namespace: "default", Client: c, Restic: servers.Bin(t, "restic"), CacheDir: t.TempDir(),
		Job: "verify-verified@now", Request: "r1"}

	verify := func(name string) *VerifyResult {
		t.Helper()
		cfg.Snapshot = name
		res, err := RunVerify(context.Background(), cfg)
		if err != nil {
			t.Fatalf("verify %s: %v", name, err)
		}
		return res
	}
	if res := verify("good"); !res.Verified || res.Components[0].Bytes != size {
		t.Fatalf("good Snapshot: %+v", res)
	}
	assertVerification(t, c, "good", storagev1alpha1.Verified, "1 component(s) read back whole")
	verify("wrong-size")
	assertVerification(t, c, "wrong-size", storagev1alpha1.VerificationFailed, "dump: read back 307200 bytes, the backup recorded 307201")

	corruptPacks(t, spec.Restic)
	if res := verify("good"); res.Verified {
		t.Fatalf("Snapshot of a corrupted repository verified: %+v", res)
	}
	assertVerification(t, c, "good", storagev1alpha1.VerificationFailed, "dump: read back failed: ")

	// A repository that cannot be opened says nothing about the data.
	cfg.Repository.PasswordFile = spec.PasswordFile + ".missing"
	cfg.Snapshot = "wrong-size"
	if _, err := RunVerify(context.Background(), cfg); err == nil {
		t.Fatal("verify without the password succeeded")
	}
}

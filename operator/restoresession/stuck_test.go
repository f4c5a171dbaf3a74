package restoresession_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestRefusedPodsFailRestore checks that a restore Job whose pods the API
// server refuses fails the RestoreSession with the API's message instead
// of leaving it Running.
func TestRefusedPodsFailRestore(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	createSnapshot(t, snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
	rs := restore(ns, "restore-db", "snap", nil)
	env.Create(t, rs)
	testenv.RefusePods(t, getJob(t, rs), `Error creating: pods "restore-db-x" is forbidden: error looking up service account `+
		ns+`/keepsake-job: serviceaccount "keepsake-job" not found`)
	c := waitPhase(t, rs, corev1alpha1.RestoreFailed, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonPodCreationFailed)
	if !strings.Contains(c.Message, `serviceaccount "keepsake-job" not found`) {
		t.Errorf("message %q does not carry the API server's", c.Message)
	}
	if got := rs.Status.Components[componentName].Phase; got != storagev1alpha1.ComponentFailed {
		t.Errorf("component phase = %s, want Failed", got)
	}
}

// TestStuckMountFailsRestore checks that a restore pod that cannot mount
// a volume fails the RestoreSession after the grace time, naming the cause.
func TestStuckMountFailsRestore(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	createSnapshot(t, snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
	rs := restore(ns, "restore-db", "snap", nil)
	env.Create(t, rs)
	msg := `MountVolume.SetUp failed for volume "secret-1" : secret "db-admin" not found`
	testenv.StuckPod(t, getJob(t, rs), corev1.PodStatus{Phase: corev1.PodPending}, "FailedMount", msg)
	c := waitPhase(t, rs, corev1alpha1.RestoreFailed, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonVolumeMountFailed)
	if !strings.Contains(c.Message, msg) {
		t.Errorf("message %q does not carry the kubelet's", c.Message)
	}
}

// TestDefaultRestoreDeadline checks that a RestoreSession without
// restoreTimeout still gets a deadline.
func TestDefaultRestoreDeadline(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	createSnapshot(t, snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
	rs := restore(ns, "restore-db", "snap", func(s *corev1alpha1.RestoreSessionSpec) { s.RestoreTimeout = nil })
	env.Create(t, rs)
	want := int64(corev1alpha1.DefaultRestoreTimeout.Seconds())
	if d := getJob(t, rs).Spec.ActiveDeadlineSeconds; d == nil || *d != want {
		t.Errorf("activeDeadlineSeconds = %v, want %d (the default restoreTimeout)", d, want)
	}
}

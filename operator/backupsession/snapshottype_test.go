package backupsession_test

import (
	"context"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestSnapshotType checks that the first Snapshot of a Repository is Full
// and that one taken once the Repository holds a Succeeded Snapshot is
// Incremental, naming it as its parent: every Snapshot used to say Full.
func TestSnapshotType(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, config(ns, addonName, func(s *corev1alpha1.Session) { s.Scheduler.ConcurrencyPolicy = batchv1.AllowConcurrent }))
	first := firstSession(ns)
	waitPhase(t, first, corev1alpha1.BackupSessionRunning, corev1alpha1.ConditionBackupJobCreated, corev1alpha1.ReasonJobCreated)
	snap := getSnapshot(t, first)
	if snap.Spec.Type != storagev1alpha1.SnapshotFull || snap.Spec.Parent != "" {
		t.Errorf("first Snapshot is %s with parent %q, want Full without one", snap.Spec.Type, snap.Spec.Parent)
	}

	// The runtime reports the first Snapshot Succeeded.
	before := snap.DeepCopy()
	now := metav1.Now()
	snap.Status.Phase, snap.Status.SnapshotTime = storagev1alpha1.SnapshotSucceeded, &now
	if err := env.Client.Status().Patch(context.Background(), snap, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	second := newSession(ns, "second", configName)
	env.Create(t, second)
	waitPhase(t, second, corev1alpha1.BackupSessionRunning, corev1alpha1.ConditionBackupJobCreated, corev1alpha1.ReasonJobCreated)
	next := getSnapshot(t, second)
	if next.Spec.Type != storagev1alpha1.SnapshotIncremental || next.Spec.Parent != snap.Name {
		t.Errorf("second Snapshot is %s with parent %q, want Incremental with parent %s", next.Spec.Type, next.Spec.Parent, snap.Name)
	}
}

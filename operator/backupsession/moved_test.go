package backupsession_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupsession"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestMovedRepository checks the sessions of a configuration that moved a
// repository to another directory: the configuration made a new Repository
// for the new location (TestRepositoryLocationChange), so the next
// session's Snapshot, its Job and its retention must go to that one, not
// to the old Repository the configuration's name still spells.
func TestMovedRepository(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := configKeepingTwo(t, ns, nil)
	first := firstSession(ns)
	recordResult(t, first, "")
	testenv.FinishJob(t, getJob(t, first), "")
	waitPhase(t, first, corev1alpha1.BackupSessionSucceeded, corev1alpha1.ConditionRetentionApplied, corev1alpha1.ReasonRetentionRunning)

	moveRepository(t, bc, "moved")
	moved := storagev1alpha1.MovedRepositoryName(repoName, storagev1alpha1.RepositorySpec{
		StorageRef: storagev1alpha1.ObjectReference{Name: storageName}, Path: "moved",
		EncryptionSecret: storagev1alpha1.ObjectReference{Name: secretName},
	})
	env.WaitCondition(t, bc, func() []metav1.Condition { return bc.Status.Conditions },
		corev1alpha1.ConditionReady, metav1.ConditionTrue, corev1alpha1.ReasonAllReady)

	bks := newSession(ns, "after-move", configName)
	env.Create(t, bks)
	job := getJob(t, bks)
	snap := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: backupsession.SnapshotName(bks.Name, moved)}}
	testenv.WaitExists(t, snap)
	if snap.Spec.Repository != moved || len(snap.OwnerReferences) != 1 || snap.OwnerReferences[0].Name != moved {
		t.Errorf("Snapshot %s: repository %s, owners %+v; want Repository %s", snap.Name, snap.Spec.Repository, snap.OwnerReferences, moved)
	}
	if got := envOf(job)["KEEPSAKE_REPOSITORY"]; !strings.HasPrefix(got, "name="+moved+",") {
		t.Errorf("backup Job's KEEPSAKE_REPOSITORY = %q, want Repository %s", got, moved)
	}

	recordInto(t, snap)
	testenv.FinishJob(t, job, "")
	waitPhase(t, bks, corev1alpha1.BackupSessionSucceeded, corev1alpha1.ConditionRetentionApplied, corev1alpha1.ReasonRetentionRunning)
	if refs := bks.Status.Snapshots; len(refs) != 1 || refs[0].Repository != moved {
		t.Errorf("status.snapshots = %+v, want one in Repository %s", refs, moved)
	}
	retention := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: backupsession.RetentionJobName(bks.Name, moved)}}
	testenv.WaitExists(t, retention)
	if got := envOf(retention)["KEEPSAKE_REPOSITORY"]; !strings.HasPrefix(got, "name="+moved+",") {
		t.Errorf("retention Job's KEEPSAKE_REPOSITORY = %q, want Repository %s", got, moved)
	}
}

// moveRepository changes the directory of the configuration's repository.
func moveRepository(t *testing.T, bc *corev1alpha1.BackupConfiguration, dir string) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(bc), bc); err != nil {
			return false, err.Error()
		}
		bc.Spec.Sessions[0].Repositories[0].Directory = dir
		if err := testenv.Default.Client.Update(ctx, bc); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// recordInto plays the runtime: one component of snap succeeded.
func recordInto(t *testing.T, snap *storagev1alpha1.Snapshot) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(snap), snap); err != nil {
			return false, err.Error()
		}
		snap.Status.Phase = storagev1alpha1.SnapshotSucceeded
		snap.Status.Components = map[string]storagev1alpha1.ComponentStatus{taskName: {
			Phase: storagev1alpha1.ComponentSucceeded, ResticSnapshotID: "4567cdef", SizeBytes: 42,
		}}
		if err := testenv.Default.Client.Status().Update(ctx, snap); err != nil {
			return false, fmt.Sprintf("record into %s: %v", snap.Name, err)
		}
		return true, ""
	})
}

// envOf is the environment of a Job's task container.
func envOf(job *batchv1.Job) map[string]string {
	env := map[string]string{}
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	return env
}

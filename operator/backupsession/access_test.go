package backupsession_test

import (
	"context"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupsession"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestJobTokens checks what the tokens of a session's Jobs can do, acting
// as the ServiceAccount each Job names. The backup Job records its result
// in its Snapshot's status and can delete nothing (with one Role for every
// Job it could delete any Snapshot); the retention Job deletes Snapshots
// but cannot write their status or start backups; neither reads Secrets.
func TestJobTokens(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := configKeepingTwo(t, ns, nil)
	bks := firstSession(ns)
	job := getJob(t, bks)
	snap := getSnapshot(t, bks)

	backup := env.As(t, ns, job.Spec.Template.Spec.ServiceAccountName)
	testenv.Allowed(t, "backup Job lists its session's Snapshots", func(ctx context.Context) error {
		return backup.List(ctx, &storagev1alpha1.SnapshotList{}, client.InNamespace(ns),
			client.MatchingLabels{backupsession.LabelBackupSession: bks.Name})
	})
	testenv.Allowed(t, "backup Job patches its Snapshot's status", func(ctx context.Context) error {
		return backup.Status().Patch(ctx, snap.DeepCopy(), client.RawPatch("application/merge-patch+json",
			[]byte(`{"status":{"components":{"`+taskName+`":{"phase":"Running"}}}}`)), client.DryRunAll)
	})
	refuseCommon(t, "backup Job", backup, ns, bc, snap)
	testenv.Refused(t, "backup Job deletes a Snapshot", func(ctx context.Context) error {
		return backup.Delete(ctx, snap.DeepCopy(), client.DryRunAll)
	})

	recordResult(t, bks, "")
	testenv.FinishJob(t, job, "")
	waitPhase(t, bks, corev1alpha1.BackupSessionSucceeded, corev1alpha1.ConditionRetentionApplied, corev1alpha1.ReasonRetentionRunning)
	retention := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: backupsession.RetentionJobName(bks.Name, repoName)}}
	testenv.WaitExists(t, retention)
	if sa := retention.Spec.Template.Spec.ServiceAccountName; sa == job.Spec.Template.Spec.ServiceAccountName {
		t.Errorf("the retention Job runs as %s, as the backup Job does", sa)
	}
	cleaner := env.As(t, ns, retention.Spec.Template.Spec.ServiceAccountName)
	testenv.Allowed(t, "retention Job deletes a Snapshot", func(ctx context.Context) error {
		return cleaner.Delete(ctx, snap.DeepCopy(), client.DryRunAll)
	})
	refuseCommon(t, "retention Job", cleaner, ns, bc, snap)
	testenv.Refused(t, "retention Job patches a Snapshot's status", func(ctx context.Context) error {
		return cleaner.Status().Patch(ctx, snap.DeepCopy(), client.RawPatch("application/merge-patch+json",
			[]byte(`{"status":{"phase":"Succeeded"}}`)), client.DryRunAll)
	})
}

// refuseCommon checks that c may neither start a backup nor read a Secret.
func refuseCommon(t *testing.T, who string, c client.Client, ns string, bc *corev1alpha1.BackupConfiguration, snap *storagev1alpha1.Snapshot) {
	t.Helper()
	testenv.Refused(t, who+" creates a BackupSession", func(ctx context.Context) error {
		return c.Create(ctx, newSession(ns, "intruder", bc.Name), client.DryRunAll)
	})
	testenv.Refused(t, who+" reads a Secret", func(ctx context.Context) error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: secretName}, &corev1.Secret{})
	})
	testenv.Refused(t, who+" changes a Snapshot's spec", func(ctx context.Context) error {
		return c.Update(ctx, snap.DeepCopy(), client.DryRunAll)
	})
}

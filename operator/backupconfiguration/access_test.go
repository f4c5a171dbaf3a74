package backupconfiguration_test

import (
	"context"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestTriggerToken checks what the token of the CronJob's trigger pods can
// do, acting as the ServiceAccount the CronJob names: read its
// configuration and create a BackupSession, which is all `keepsake
// trigger` does, but never read, change or delete a Snapshot, nor read a
// Secret. With one Role for every Job, the trigger could delete Snapshots.
func TestTriggerToken(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := validConfig(ns)
	env.Create(t, bc)
	waitCronJob(t, bc, func(*batchv1.CronJob) bool { return true })
	sa := getCronJob(t, bc).Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName
	snap := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "older"},
		Spec:       storagev1alpha1.SnapshotSpec{Repository: repoName},
	}
	env.Create(t, snap)

	c := env.As(t, ns, sa)
	testenv.Allowed(t, "trigger gets its BackupConfiguration", func(ctx context.Context) error {
		return c.Get(ctx, client.ObjectKeyFromObject(bc), &corev1alpha1.BackupConfiguration{})
	})
	testenv.Allowed(t, "trigger creates a BackupSession", func(ctx context.Context) error {
		return c.Create(ctx, &corev1alpha1.BackupSession{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: bc.Name + "-"},
			Spec:       corev1alpha1.BackupSessionSpec{BackupConfiguration: bc.Name, Session: sessionName},
		}, client.DryRunAll)
	})
	testenv.Refused(t, "trigger deletes a Snapshot", func(ctx context.Context) error {
		return c.Delete(ctx, snap.DeepCopy(), client.DryRunAll)
	})
	testenv.Refused(t, "trigger reads a Snapshot", func(ctx context.Context) error {
		return c.Get(ctx, client.ObjectKeyFromObject(snap), &storagev1alpha1.Snapshot{})
	})
	testenv.Refused(t, "trigger reads a Secret", func(ctx context.Context) error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: secretName}, &corev1.Secret{})
	})
}

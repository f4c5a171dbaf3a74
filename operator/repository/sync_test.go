package repository_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/access"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/operator/repository"
)

// TestSyncJob checks the reconciler side of repository sync: a Repository
// that becomes Ready gets a sync Job running `keepsake run sync` on its
// repository, as a ServiceAccount whose Role may create Snapshots and
// delete nothing, and the Synced condition follows the Job's outcome.
func TestSyncJob(t *testing.T) {
	env := testenv.Default
	ns := env.Namespace(t, nil)
	repo := newRepository(ns, repoName, "local")
	env.Create(t, localStorage(ns), passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "x"}), repo)
	waitReady(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)

	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: repository.SyncJobName(repoName)}}
	testenv.WaitExists(t, job)
	pod := job.Spec.Template.Spec
	if pod.ServiceAccountName != access.Sync.Name || !slices.Contains(pod.Containers[0].Command, "sync") ||
		!metav1.IsControlledBy(job, repo) {
		t.Errorf("sync Job: service account %s, command %v, owners %+v", pod.ServiceAccountName, pod.Containers[0].Command, job.OwnerReferences)
	}
	envs := map[string]string{}
	for _, e := range pod.Containers[0].Env {
		envs[e.Name] = e.Value
	}
	if envs["KEEPSAKE_REPORT_TO"] != "kubernetes" || envs["KEEPSAKE_NAMESPACE"] != ns || envs["KEEPSAKE_REPOSITORY"] == "" {
		t.Errorf("sync Job env %v", envs)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: access.Sync.Name}}
	testenv.WaitExists(t, role)
	for _, rule := range role.Rules {
		if slices.Contains(rule.Verbs, "delete") || slices.Contains(rule.Verbs, "*") {
			t.Errorf("sync Role may delete: %+v", rule)
		}
	}
	testenv.WaitExists(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: access.Sync.Name}})

	testenv.FinishJob(t, job, "BackoffLimitExceeded")
	waitSynced(t, repo, metav1.ConditionFalse, storagev1alpha1.ReasonSyncFailed)
}

// TestSyncAfterBackup checks that a backup that succeeds after the last
// sync Job started brings a new sync once that one is done, so the stored
// size is current soon after each backup (the periodic sync is an hour
// away): one sync at a time, the backups that finish during one counted by
// the next.
func TestSyncAfterBackup(t *testing.T) {
	env := testenv.Default
	ns := env.Namespace(t, nil)
	repo := newRepository(ns, repoName, "local")
	env.Create(t, localStorage(ns), passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "x"}), repo)
	waitReady(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
	first := waitSyncJob(t, ns, "")
	testenv.FinishJob(t, first, "")
	waitSynced(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonSyncSucceeded)

	backedUp := func(name string) {
		newSnapshot(t, ns, name, repoName, storagev1alpha1.SnapshotStatus{
			Phase: storagev1alpha1.SnapshotSucceeded, SnapshotTime: &metav1.Time{Time: time.Now()}, SizeBytes: 1000})
	}
	backedUp("after-first-sync")
	second := waitSyncJob(t, ns, first.UID)
	// Two backups while the second sync runs: one sync after it.
	backedUp("during-second-sync-1")
	backedUp("during-second-sync-2")
	testenv.FinishJob(t, second, "")
	waitSyncJob(t, ns, second.UID)
}

// waitSyncJob waits for the sync Job of repoName in ns whose UID is not
// previous, and returns it.
func waitSyncJob(t *testing.T, ns string, previous types.UID) *batchv1.Job {
	t.Helper()
	job := &batchv1.Job{}
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		key := client.ObjectKey{Namespace: ns, Name: repository.SyncJobName(repoName)}
		if err := testenv.Default.Client.Get(ctx, key, job); err != nil {
			return false, err.Error()
		}
		return job.UID != previous && job.DeletionTimestamp.IsZero(), "the sync Job is still " + string(job.UID)
	})
	return job
}

// waitSynced waits until repo's Synced condition has status want and reason.
func waitSynced(t *testing.T, repo *storagev1alpha1.Repository, want metav1.ConditionStatus, reason string) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(repo), repo); err != nil {
			return false, err.Error()
		}
		for _, c := range repo.Status.Conditions {
			if c.Type == storagev1alpha1.ConditionSynced {
				return c.Status == want && c.Reason == reason, fmt.Sprintf("Synced is %s/%s: %s", c.Status, c.Reason, c.Message)
			}
		}
		return false, "no Synced condition"
	})
}

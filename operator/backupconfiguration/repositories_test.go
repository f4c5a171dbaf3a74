package backupconfiguration_test

import (
	"context"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// waitRepository waits until Repository name of ns exists at path.
func waitRepository(t *testing.T, ns, name, path string) *storagev1alpha1.Repository {
	t.Helper()
	var repo storagev1alpha1.Repository
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &repo); err != nil {
			return false, err.Error()
		}
		return repo.Spec.Path == path, fmt.Sprintf("Repository %s at %s, want %s", name, repo.Spec.Path, path)
	})
	return &repo
}

// TestRepositoryLocationChange checks that moving a session's repository
// to another directory creates a new Repository with the derived name
// rather than rewriting the one whose Snapshots live at the old place, and
// that no Repository is owned by the configuration, so that deleting it
// never garbage-collects Repositories and with them their Snapshots.
func TestRepositoryLocationChange(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := validConfig(ns)
	env.Create(t, bc)
	old := waitRepository(t, ns, repoName, repoName)

	bc.Spec.Sessions[0].Repositories[0].Directory = "moved"
	update(t, bc)
	moved := old.Spec.DeepCopy()
	moved.Path = "moved"
	newName := storagev1alpha1.MovedRepositoryName(repoName, *moved)
	repo := waitRepository(t, ns, newName, "moved")
	env.WaitCondition(t, bc, func() []metav1.Condition { return bc.Status.Conditions },
		corev1alpha1.ConditionRepositoryReady, metav1.ConditionTrue, corev1alpha1.ReasonRepositoriesReady)
	old = waitRepository(t, ns, repoName, repoName)
	for _, r := range []*storagev1alpha1.Repository{old, repo} {
		if len(r.OwnerReferences) != 0 {
			t.Errorf("Repository %s owners %+v, want none: deleting the configuration must not collect it", r.Name, r.OwnerReferences)
		}
		if r.Labels[corev1alpha1.LabelBackupConfiguration] != bc.Name {
			t.Errorf("Repository %s labels %v, want %s=%s", r.Name, r.Labels, corev1alpha1.LabelBackupConfiguration, bc.Name)
		}
	}
}

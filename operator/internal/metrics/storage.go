package metrics

import (
	"cmp"
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// collectStorage sends the Repository and RestoreSession metrics.
func collectStorage(ctx context.Context, r client.Reader, emit emitter) {
	log := logf.FromContext(ctx).WithName("metrics")
	var repos storagev1alpha1.RepositoryList
	if err := r.List(ctx, &repos); err != nil {
		log.Error(err, "list Repositories")
	}
	for _, repo := range repos.Items {
		st := &repo.Status
		emit(repositoryReady, boolValue(st.Phase == storagev1alpha1.RepositoryReady), repo.Namespace, repo.Name)
		emit(repositorySnapshots, float64(st.SnapshotCount), repo.Namespace, repo.Name)
		emit(repositoryStored, float64(st.SizeBytes), repo.Namespace, repo.Name)
		if st.Integrity != nil {
			emit(repositoryIntegrity, boolValue(*st.Integrity), repo.Namespace, repo.Name)
		}
	}
	var restores corev1alpha1.RestoreSessionList
	if err := r.List(ctx, &restores); err != nil {
		log.Error(err, "list RestoreSessions")
		return
	}
	collectRestores(restores.Items, emit)
}

// collectRestores sends the counts by phase and, per Repository, whether
// the newest finished restore from it failed.
func collectRestores(items []corev1alpha1.RestoreSession, emit emitter) {
	type repoKey struct{ namespace, repository string }
	counts := map[[2]string]int{}
	newest := map[repoKey]*corev1alpha1.RestoreSession{}
	for i := range items {
		rs := &items[i]
		counts[[2]string{rs.Namespace, string(cmp.Or(rs.Status.Phase, corev1alpha1.RestorePending))}]++
		if !restoreFinished(rs.Status.Phase) {
			continue
		}
		ref := rs.Spec.DataSource.Repository
		key := repoKey{rs.Namespace, ref.Name}
		if ref.Namespace != "" {
			key.namespace = ref.Namespace
		}
		if have, ok := newest[key]; !ok || have.CreationTimestamp.Before(&rs.CreationTimestamp) {
			newest[key] = rs
		}
	}
	for k, n := range counts {
		emit(restoreSessions, float64(n), k[0], k[1])
	}
	for k, rs := range newest {
		emit(restoreLastFailed, boolValue(rs.Status.Phase != corev1alpha1.RestoreSucceeded), k.namespace, k.repository)
	}
}

func restoreFinished(p corev1alpha1.RestoreSessionPhase) bool {
	return p == corev1alpha1.RestoreSucceeded || p == corev1alpha1.RestoreFailed || p == corev1alpha1.RestoreInvalid
}

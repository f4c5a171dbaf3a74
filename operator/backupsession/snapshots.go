package backupsession

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
)

// LabelBackupSession names the BackupSession a Snapshot or Job belongs to.
const LabelBackupSession = corev1alpha1.LabelBackupSession

// SnapshotName is the name of the Snapshot a BackupSession takes into repo.
// It is deterministic, so a Snapshot is never created twice.
func SnapshotName(bks, repo string) string {
	return jobs.ShortName(bks+"-"+repo, 253)
}

// JobName is the name of a BackupSession's Job. It is deterministic, so a
// restarted operator finds the Job instead of starting a second one.
func JobName(bks string) string {
	return jobs.ShortName(bks, jobs.MaxName)
}

// labels link an object to its BackupSession, configuration and session.
func labels(bks *corev1alpha1.BackupSession) map[string]string {
	return map[string]string{
		corev1alpha1.LabelBackupConfiguration: bks.Spec.BackupConfiguration,
		corev1alpha1.LabelSession:             bks.Spec.Session,
		LabelBackupSession:                    bks.Name,
	}
}

// ensureSnapshots creates one Snapshot per Repository of the session
// (resolveRepositories) and lists them in the status.
func (r *Reconciler) ensureSnapshots(ctx context.Context, p *pass) (*ctrl.Result, error) {
	refs := make([]corev1alpha1.SnapshotReference, 0, len(p.repos))
	for _, repo := range p.repos {
		snap, err := r.ensureSnapshot(ctx, p, repo)
		var prob *jobs.Problem
		if errors.As(err, &prob) {
			return r.fail(p, prob.Reason, prob.Err), nil
		}
		if err != nil {
			return nil, err
		}
		refs = append(refs, corev1alpha1.SnapshotReference{Name: snap.Name, Repository: repo, Phase: snap.Status.Phase})
	}
	p.bks.Status.Snapshots = refs
	p.bks.Status.TotalSnapshots = int32(len(refs))
	r.setCondition(p, corev1alpha1.ConditionSnapshotsEnsured, true, corev1alpha1.ReasonSnapshotsCreated,
		fmt.Sprintf("%d Snapshot(s) created", len(refs)))
	return nil, nil
}

// ensureSnapshot returns the session's Snapshot of repo, creating it when
// absent.
func (r *Reconciler) ensureSnapshot(ctx context.Context, p *pass, repo string) (*storagev1alpha1.Snapshot, error) {
	snap := &storagev1alpha1.Snapshot{}
	key := client.ObjectKey{Namespace: p.bks.Namespace, Name: SnapshotName(p.bks.Name, repo)}
	err := r.Client.Get(ctx, key, snap)
	if err == nil {
		return snap, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get Snapshot %s: %w", key.Name, err)
	}
	target := p.bc.Spec.Target
	if target.Namespace == "" {
		target.Namespace = p.bc.Namespace
	}
	var repository storagev1alpha1.Repository
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: repo}, &repository); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, jobs.NewProblem(corev1alpha1.ReasonRepositoryNotFound, "Repository %s not found", repo)
		}
		return nil, fmt.Errorf("get Repository %s: %w", repo, err)
	}
	parent, err := r.latestSucceeded(ctx, key.Namespace, repo)
	if err != nil {
		return nil, err
	}
	snap = &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: labels(p.bks),
			// The restic snapshot is forgotten when the Snapshot is
			// deleted, unless its Repository goes too (see operator/snapshot).
			Finalizers: []string{storagev1alpha1.FinalizerForget}},
		Spec: storagev1alpha1.SnapshotSpec{
			Repository:    repo,
			BackupSession: p.bks.Name,
			Session:       p.bks.Spec.Session,
			AppRef:        &target,
			Addon:         addonTask(p.session),
			Type:          storagev1alpha1.SnapshotFull,
		},
	}
	if parent != nil {
		snap.Spec.Type, snap.Spec.Parent = storagev1alpha1.SnapshotIncremental, parent.Name
	}
	// Snapshots belong to their Repository, not to the BackupSession: they
	// outlive the session's history, and go (keeping the data) only with
	// the Repository, whose deletionPolicy decides about the data.
	if err := controllerutil.SetControllerReference(&repository, snap, r.Client.Scheme()); err != nil {
		return nil, fmt.Errorf("own Snapshot %s: %w", key.Name, err)
	}
	err = r.Client.Create(ctx, snap)
	if apierrors.IsAlreadyExists(err) {
		// The cache lagged behind a Snapshot made by a previous pass.
		return snap, nil
	}
	if err != nil {
		return nil, fmt.Errorf("create Snapshot %s: %w", key.Name, err)
	}
	return snap, nil
}

// addonTask names the Addon and task that take the session's backup, for
// verification to find the driver again; nil unless the session names
// exactly one task (its Job then fails before taking anything).
func addonTask(s *corev1alpha1.Session) *storagev1alpha1.AddonTaskReference {
	if len(s.Addon.Tasks) != 1 {
		return nil
	}
	return &storagev1alpha1.AddonTaskReference{Name: s.Addon.Name, Task: s.Addon.Tasks[0].Name}
}

// latestSucceeded returns the Succeeded Snapshot of Repository repo with the
// newest snapshotTime, nil when it has none: a new Snapshot is Full then,
// Incremental on top of it otherwise. It reads past the cache, which may
// not have seen the previous Snapshot succeed yet; it runs once per
// Snapshot created.
func (r *Reconciler) latestSucceeded(ctx context.Context, ns, repo string) (*storagev1alpha1.Snapshot, error) {
	var list storagev1alpha1.SnapshotList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list Snapshots: %w", err)
	}
	return storagev1alpha1.LatestSucceeded(list.Items, repo), nil
}

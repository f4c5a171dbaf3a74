package restoresession

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

// snapshotTimeout is how long a RestoreSession waits for its Snapshot to
// appear or succeed when it sets no restoreTimeout.
const snapshotTimeout = 10 * time.Minute

// resolveSnapshot finds the Snapshot to restore: the one named, or the
// newest Succeeded one of the repository for "latest". It waits, with
// backoff, for a Snapshot that is missing or still running.
func (r *Reconciler) resolveSnapshot(ctx context.Context, p *pass) (*ctrl.Result, error) {
	ds := p.rs.Spec.DataSource
	// Jobs run in the RestoreSession's namespace and mount the repository's
	// Secrets and settings, which exist only in the repository's namespace:
	// so the repository must be in the RestoreSession's namespace.
	if ns := ds.Repository.Namespace; ns != "" && ns != p.rs.Namespace {
		return r.invalid(p, corev1alpha1.ConditionSnapshotResolved, corev1alpha1.ReasonRepositoryNotFound,
			fmt.Errorf("repository %s/%s is in another namespace: restore Jobs run in the RestoreSession's namespace %s, so the Repository must be there too",
				ns, ds.Repository.Name, p.rs.Namespace)), nil
	}
	if res, err := r.checkRepository(ctx, p); res != nil || err != nil {
		return res, err
	}
	snap, err := r.findSnapshot(ctx, p)
	if err != nil {
		return nil, err
	}
	return r.checkSnapshot(p, snap), nil
}

// checkRepository ends the RestoreSession when its Repository does not
// exist: no Snapshot of it can appear.
func (r *Reconciler) checkRepository(ctx context.Context, p *pass) (*ctrl.Result, error) {
	name := p.rs.Spec.DataSource.Repository.Name
	var repo storagev1alpha1.Repository
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.rs.Namespace, Name: name}, &repo)
	if apierrors.IsNotFound(err) {
		return r.invalid(p, corev1alpha1.ConditionSnapshotResolved, corev1alpha1.ReasonRepositoryNotFound,
			fmt.Errorf("repository %s not found in namespace %s", name, p.rs.Namespace)), nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Repository %s: %w", name, err)
	}
	return nil, nil
}

// findSnapshot returns the Snapshot dataSource names, or nil when there is
// none (yet).
func (r *Reconciler) findSnapshot(ctx context.Context, p *pass) (*storagev1alpha1.Snapshot, error) {
	ds := p.rs.Spec.DataSource
	if ds.Snapshot == "" || ds.Snapshot == corev1alpha1.SnapshotLatest {
		return r.latestSnapshot(ctx, p.rs.Namespace, ds.Repository.Name)
	}
	var snap storagev1alpha1.Snapshot
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.rs.Namespace, Name: ds.Snapshot}, &snap)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Snapshot %s: %w", ds.Snapshot, err)
	}
	return &snap, nil
}

// latestSnapshot returns the Succeeded Snapshot of repository repo with
// the newest snapshotTime, or nil when it has none.
func (r *Reconciler) latestSnapshot(ctx context.Context, ns, repo string) (*storagev1alpha1.Snapshot, error) {
	var list storagev1alpha1.SnapshotList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list Snapshots: %w", err)
	}
	return storagev1alpha1.LatestSucceeded(list.Items, repo), nil
}

// checkSnapshot accepts a Succeeded Snapshot of the right repository, waits
// for a missing or unfinished one, and fails on a failed one.
func (r *Reconciler) checkSnapshot(p *pass, snap *storagev1alpha1.Snapshot) *ctrl.Result {
	ds := p.rs.Spec.DataSource
	switch {
	case snap == nil && (ds.Snapshot == "" || ds.Snapshot == corev1alpha1.SnapshotLatest):
		return r.waitForSnapshot(p, corev1alpha1.ReasonSnapshotNotFound,
			fmt.Errorf("repository %s has no Succeeded Snapshot", ds.Repository.Name))
	case snap == nil:
		return r.waitForSnapshot(p, corev1alpha1.ReasonSnapshotNotFound, fmt.Errorf("snapshot %s not found", ds.Snapshot))
	case snap.Spec.Repository != ds.Repository.Name:
		return r.invalid(p, corev1alpha1.ConditionSnapshotResolved, corev1alpha1.ReasonSnapshotNotFound,
			fmt.Errorf("snapshot %s is of Repository %s, not %s", snap.Name, snap.Spec.Repository, ds.Repository.Name))
	case snap.Status.Phase == storagev1alpha1.SnapshotFailed || !snap.DeletionTimestamp.IsZero():
		return r.snapshotFailed(p, corev1alpha1.ReasonSnapshotNotReady,
			fmt.Errorf("snapshot %s cannot be restored: it failed or is being deleted", snap.Name))
	case snap.Status.Phase != storagev1alpha1.SnapshotSucceeded:
		return r.waitForSnapshot(p, corev1alpha1.ReasonSnapshotNotReady,
			fmt.Errorf("snapshot %s is %s, not Succeeded", snap.Name, phaseString(snap.Status.Phase)))
	}
	p.snapshot = snap
	p.rs.Status.Snapshot = snap.Name
	return nil
}

// waitForSnapshot keeps the RestoreSession Pending while its Snapshot is
// missing or unfinished, and fails it once it has waited longer than its
// restoreTimeout. The Snapshot watch wakes it earlier.
func (r *Reconciler) waitForSnapshot(p *pass, reason string, err error) *ctrl.Result {
	rs := p.rs
	limit := snapshotTimeout
	if t := rs.Spec.RestoreTimeout; t != nil && t.Duration > 0 {
		limit = t.Duration
	}
	waited := p.now.Sub(rs.CreationTimestamp.Time)
	if waited > limit {
		return r.snapshotFailed(p, reason, fmt.Errorf("%w after waiting %s", err, limit))
	}
	rs.Status.Phase = corev1alpha1.RestorePending
	// Waiting is not a problem yet (the backup may still be running): a
	// Normal Event; giving up is a Warning.
	msg := fmt.Sprintf("%s: waiting up to %s in all (restoreTimeout), until %s, then the restore fails",
		err, limit, rs.CreationTimestamp.Add(limit).UTC().Format(time.RFC3339))
	if status.Set(&rs.Status.Conditions, rs.Generation, corev1alpha1.ConditionSnapshotResolved, false, reason, msg) {
		p.events.Eventf(rs, nil, corev1.EventTypeNormal, reason, "Restore", "%s", msg)
	}
	wait := status.Backoff(rs.Status.Conditions, corev1alpha1.ConditionSnapshotResolved, p.now.Time)
	return &ctrl.Result{RequeueAfter: min(wait, max(limit-waited, time.Second))}
}

// selectComponent picks the one component of the Snapshot to restore: the
// runtime restores one component per run.
func (r *Reconciler) selectComponent(_ context.Context, p *pass) (*ctrl.Result, error) {
	snap := p.snapshot
	available := make([]string, 0, len(snap.Status.Components))
	for name := range snap.Status.Components {
		available = append(available, name)
	}
	slices.Sort(available)
	selected := available
	if want := p.rs.Spec.DataSource.Components; len(want) > 0 {
		for _, c := range want {
			if !slices.Contains(available, c) {
				return r.componentNotFound(p, fmt.Errorf("snapshot %s has no component %s; it has: %s",
					snap.Name, c, listOrNone(available))), nil
			}
		}
		selected = slices.Compact(slices.Sorted(slices.Values(want)))
	}
	switch {
	case len(selected) == 0:
		return r.componentNotFound(p, fmt.Errorf("snapshot %s has no components", snap.Name)), nil
	case len(selected) > 1:
		return r.componentNotFound(p, fmt.Errorf("a restore restores one component and Snapshot %s has %s: name one in dataSource.components",
			snap.Name, strings.Join(selected, ", "))), nil
	}
	p.component = selected[0]
	p.resticID = snap.Status.Components[p.component].ResticSnapshotID
	if p.resticID == "" {
		return r.snapshotFailed(p, corev1alpha1.ReasonSnapshotNotReady,
			fmt.Errorf("component %s of Snapshot %s has no resticSnapshotID", p.component, snap.Name)), nil
	}
	r.setCondition(p, corev1alpha1.ConditionSnapshotResolved, true, corev1alpha1.ReasonSnapshotResolved,
		fmt.Sprintf("restoring component %s of Snapshot %s (restic snapshot %s)", p.component, snap.Name, p.resticID))
	return nil, nil
}

// componentNotFound makes the RestoreSession Invalid: its components do not
// name exactly one component of the Snapshot.
func (r *Reconciler) componentNotFound(p *pass, err error) *ctrl.Result {
	return r.invalid(p, corev1alpha1.ConditionSnapshotResolved, corev1alpha1.ReasonComponentNotFound, err)
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func phaseString(ph storagev1alpha1.SnapshotPhase) string {
	if ph == "" {
		return "not started"
	}
	return string(ph)
}

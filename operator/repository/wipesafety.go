package repository

import (
	"context"
	"errors"
	"fmt"
	"path"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

// wipeOwned leaves the data of a Repository whose BackupStorage does not
// own its prefix: one attached with attach: Shared, or one whose
// metadata.yaml names another BackupStorage (another object, or another
// cluster's). Nothing is deleted through a storage that does not own it.
func (r *Reconciler) wipeOwned(ctx context.Context, w *wipe) (*ctrl.Result, error) {
	if w.bs.Spec.Attach == storagev1alpha1.AttachShared {
		return r.leaveData(w, corev1.EventTypeWarning, fmt.Sprintf(
			"BackupStorage %s/%s is attached with attach: Shared and never deletes data: the restic repository %s is left in the storage",
			w.bs.Namespace, w.bs.Name, w.where())), nil
	}
	m, err := storage.ReadStorageMetadata(ctx, w.store)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return r.wipeFailed(w, err), nil
	}
	if m != nil && m.UID != string(w.bs.UID) {
		return r.leaveData(w, corev1.EventTypeWarning, fmt.Sprintf(
			"the prefix belongs to BackupStorage %s/%s (uid %s), not to %s/%s: the restic repository %s is left in the storage",
			m.Namespace, m.Name, m.UID, w.bs.Namespace, w.bs.Name, w.where())), nil
	}
	return nil, nil
}

// wipeAlone leaves the data when another Repository object, in any
// namespace and through any BackupStorage on the same bucket and prefix,
// uses the same location or one nested with it: deleting the directory
// would delete that one's backups.
func (r *Reconciler) wipeAlone(ctx context.Context, w *wipe) (*ctrl.Result, error) {
	overlaps, err := r.overlapping(ctx, w.repo, w.bs)
	if err != nil {
		return nil, err
	}
	if len(overlaps) == 0 {
		return nil, nil
	}
	o := overlaps[0]
	how := "lies inside or contains"
	if o.same {
		how = "uses the same location as"
	}
	return r.leaveData(w, corev1.EventTypeWarning, fmt.Sprintf(
		"Repository %s/%s at %s %s this one: the restic repository %s is left in the storage",
		o.repo.Namespace, o.repo.Name, o.where, how, w.where())), nil
}

// wipeNothingInside leaves the data when a repository found in the storage
// lies inside the directory, at any depth, or the directory lies inside
// one: Repositories of another cluster are only seen there.
func (r *Reconciler) wipeNothingInside(ctx context.Context, w *wipe) (*ctrl.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, wipeTimeout)
	defer cancel()
	ns, dir := w.repo.Namespace, w.repo.Spec.Path
	around, err := storage.RepositoryAround(ctx, w.store, ns, dir)
	if err != nil {
		return r.wipeFailed(w, err), nil
	}
	if around != "" {
		return r.leaveData(w, corev1.EventTypeWarning, fmt.Sprintf(
			"%s lies inside the repository %s and would be deleted with it: the data is left in the storage",
			w.where(), path.Join(ns, around))), nil
	}
	inside, err := storage.RepositoriesInside(ctx, w.store, ns, dir)
	if err != nil {
		return r.wipeFailed(w, err), nil
	}
	if len(inside) > 0 {
		return r.leaveData(w, corev1.EventTypeWarning, fmt.Sprintf(
			"repository %s of Repository %s lives inside %s and would be deleted with it: the data is left in the storage",
			path.Join(ns, inside[0].Dir), inside[0].Metadata.Name, w.where())), nil
	}
	return nil, nil
}

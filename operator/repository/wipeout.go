package repository

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
	"github.com/keepsake-dev/keepsake/operator/internal/steps"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

// wipeTimeout bounds one attempt to delete a repository: a large one is
// deleted over several attempts, each resuming where the last stopped.
const wipeTimeout = 5 * time.Minute

// keepFinalizer adds the wipe-out finalizer to a Repository whose data goes
// with it (deletionPolicy WipeOut) and removes it from one whose data stays.
func (r *Reconciler) keepFinalizer(ctx context.Context, repo *storagev1alpha1.Repository) error {
	want := repo.Spec.DeletionPolicy == storagev1alpha1.RepositoryWipeOut
	return status.SetFinalizer(ctx, r.Client, repo, storagev1alpha1.FinalizerWipeOut, want)
}

// wipe is one attempt to delete the data of one Repository being deleted.
type wipe struct {
	repo *storagev1alpha1.Repository
	bs   *storagev1alpha1.BackupStorage
	// store and bucket are the opened storage.
	store  storage.Store
	bucket string
	// release says the finalizer goes once the status is written.
	release bool
}

// finalize deletes the data of a Repository with the wipe-out finalizer
// and then lets it go.
func (r *Reconciler) finalize(ctx context.Context, repo *storagev1alpha1.Repository) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(repo, storagev1alpha1.FinalizerWipeOut) {
		return ctrl.Result{}, nil
	}
	patcher := status.NewPatcher(repo)
	w := &wipe{repo: repo}
	result, err := r.wipeOut(ctx, w)
	if _, perr := patcher.Patch(ctx, r.Client, repo); perr != nil {
		return ctrl.Result{}, errors.Join(err, client.IgnoreNotFound(perr))
	}
	if err != nil || !w.release {
		return result, err
	}
	return ctrl.Result{}, status.SetFinalizer(ctx, r.Client, repo, storagev1alpha1.FinalizerWipeOut, false)
}

// wipeOut goes through the steps: is the data to go, can the operator
// reach it, may it delete it (its storage owns the prefix, no other
// repository shares, contains or lies inside its directory), and the
// deletion.
func (r *Reconciler) wipeOut(ctx context.Context, w *wipe) (ctrl.Result, error) {
	return steps.Run(ctx, w, r.wipeWanted, r.wipeStorage, r.openWipeStore,
		r.wipeOwned, r.wipeAlone, r.wipeNothingInside, r.deleteData)
}

// wipeWanted lets go, keeping the data, a Repository whose deletionPolicy
// was changed to Delete after its deletion began: that is how a user
// unblocks a wipe-out that keeps failing.
func (r *Reconciler) wipeWanted(_ context.Context, w *wipe) (*ctrl.Result, error) {
	if w.repo.Spec.DeletionPolicy == storagev1alpha1.RepositoryWipeOut {
		return nil, nil
	}
	return r.leaveData(w, corev1.EventTypeNormal, "deletionPolicy is "+string(w.repo.Spec.DeletionPolicy)+": the restic repository stays in the storage"), nil
}

// wipeStorage finds the BackupStorage holding the data and makes sure the
// operator can reach it and this namespace may use it.
//
// A Repository whose storage, or the storage's credentials Secret or CA
// bundle, is gone is let go with its data left and a Warning Event, rather
// than held until they come back: they never do when their namespace is
// being deleted along with the Repository's, and a finalizer must not
// block a namespace deletion forever. The same goes for a local storage,
// which only Jobs mount: the operator cannot reach it.
func (r *Reconciler) wipeStorage(ctx context.Context, w *wipe) (*ctrl.Result, error) {
	ref := storageRef(w.repo)
	var bs storagev1alpha1.BackupStorage
	key := client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}
	err := r.Client.Get(ctx, key, &bs)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, &bs) // not in the cache yet, or gone
	}
	if apierrors.IsNotFound(err) {
		return r.leaveData(w, corev1.EventTypeWarning, fmt.Sprintf(
			"BackupStorage %s is gone, so the operator cannot reach the restic repository %s: it is left in the storage",
			key, w.where())), nil
	}
	if err != nil {
		return nil, fmt.Errorf("get BackupStorage %s: %w", key, err)
	}
	ok, err := r.allows(ctx, &bs, w.repo.Namespace)
	if err != nil {
		return nil, err
	}
	if !ok {
		return r.leaveData(w, corev1.EventTypeWarning, fmt.Sprintf(
			"the usagePolicy of BackupStorage %s does not allow namespace %s, so the restic repository %s is left in the storage",
			key, w.repo.Namespace, w.where())), nil
	}
	if bs.Spec.Storage.Provider != storagev1alpha1.ProviderS3 || bs.Spec.Storage.S3 == nil {
		return r.leaveData(w, corev1.EventTypeWarning, fmt.Sprintf(
			"BackupStorage %s is a local volume that only Jobs mount and the operator cannot reach: the restic repository %s is left in it; delete it by hand",
			key, w.where())), nil
	}
	w.bs = &bs
	return nil, nil
}

// openWipeStore opens the storage of the data to delete.
func (r *Reconciler) openWipeStore(ctx context.Context, w *wipe) (*ctrl.Result, error) {
	cfg, err := r.s3Config(ctx, w.bs)
	if apierrors.IsNotFound(err) {
		return r.leaveData(w, corev1.EventTypeWarning, fmt.Sprintf(
			"%v, so the operator cannot reach the restic repository %s: it is left in the storage", err, w.where())), nil
	}
	if err != nil {
		return r.wipeFailed(w, err), nil
	}
	store, err := storage.Open(cfg)
	if err != nil {
		return r.wipeFailed(w, err), nil
	}
	w.store, w.bucket = store, cfg.S3.Bucket
	return nil, nil
}

// deleteData deletes every object under <prefix>/<namespace>/<path>/.
func (r *Reconciler) deleteData(ctx context.Context, w *wipe) (*ctrl.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, wipeTimeout)
	defer cancel()
	n, err := storage.DeleteRepository(ctx, w.store, w.repo.Namespace, w.repo.Spec.Path)
	if err != nil {
		return r.wipeFailed(w, fmt.Errorf("%w (%d objects deleted so far)", err, n)), nil
	}
	w.release = true
	r.Events.Eventf(w.repo, nil, corev1.EventTypeNormal, storagev1alpha1.ReasonWipedOut, "WipeOut",
		"deleted %d objects of the restic repository %s from bucket %s", n, w.where(), w.bucket)
	return &ctrl.Result{}, nil
}

// where names the repository's directory below the storage's prefix.
func (w *wipe) where() string { return path.Join(w.repo.Namespace, w.repo.Spec.Path) }

// leaveData ends the attempt by letting the Repository go without deleting
// its data, with an Event of evType saying why.
func (r *Reconciler) leaveData(w *wipe, evType, message string) *ctrl.Result {
	w.release = true
	r.Events.Eventf(w.repo, nil, evType, storagev1alpha1.ReasonDataLeft, "WipeOut", message)
	return &ctrl.Result{}
}

// wipeFailed records an attempt that failed and schedules the next one,
// later the longer the wipe-out has been failing.
func (r *Reconciler) wipeFailed(w *wipe, err error) *ctrl.Result {
	repo := w.repo
	msg := fmt.Sprintf("deleting the restic repository %s failed: %v; set spec.deletionPolicy to Retain to keep the data and let the Repository go",
		w.where(), err)
	status.Set(&repo.Status.Conditions, repo.Generation, storagev1alpha1.ConditionWipedOut, false, storagev1alpha1.ReasonWipeOutFailed, msg)
	r.Events.Eventf(repo, nil, corev1.EventTypeWarning, storagev1alpha1.ReasonWipeOutFailed, "WipeOut", msg)
	return &ctrl.Result{RequeueAfter: status.Backoff(repo.Status.Conditions, storagev1alpha1.ConditionWipedOut, time.Now())}
}

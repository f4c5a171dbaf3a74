package backupstorage

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
	"github.com/keepsake-dev/keepsake/operator/internal/storageref"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

// wipeTimeout bounds one attempt to delete the prefix: a large one is
// deleted over several attempts, each resuming where the last stopped.
const wipeTimeout = 5 * time.Minute

// keepFinalizer adds the wipe-out finalizer to a BackupStorage whose data
// goes with it (deletionPolicy WipeOut) and removes it from one whose data
// stays. The patch fails rather than overwrite finalizers changed meanwhile.
func (r *Reconciler) keepFinalizer(ctx context.Context, bs *storagev1alpha1.BackupStorage) error {
	want := bs.Spec.DeletionPolicy == storagev1alpha1.BackupStorageWipeOut
	return status.SetFinalizer(ctx, r.Client, bs, storagev1alpha1.FinalizerWipeOut, want)
}

// finalize deletes the data of a BackupStorage with the wipe-out finalizer
// and then lets it go.
func (r *Reconciler) finalize(ctx context.Context, bs *storagev1alpha1.BackupStorage) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(bs, storagev1alpha1.FinalizerWipeOut) {
		return ctrl.Result{}, nil
	}
	patcher := status.NewPatcher(bs)
	result, release := r.wipeOut(ctx, bs)
	if _, err := patcher.Patch(ctx, r.Client, bs); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	}
	if !release {
		return result, nil
	}
	return ctrl.Result{}, status.SetFinalizer(ctx, r.Client, bs, storagev1alpha1.FinalizerWipeOut, false)
}

// wipeOut deletes every object under the prefix, metadata.yaml included,
// and reports whether the finalizer may go.
//
// A storage whose credentials Secret or CA bundle is gone, or a local
// storage (only Jobs mount it), is let go with its data left and a Warning
// Event, rather than held until the operator can reach it: a Secret in a
// namespace being deleted never comes back, and a finalizer must not block
// a namespace deletion forever. An empty prefix is refused the same way:
// wiping it out would empty the whole bucket.
func (r *Reconciler) wipeOut(ctx context.Context, bs *storagev1alpha1.BackupStorage) (ctrl.Result, bool) {
	sb := bs.Spec.Storage
	switch {
	case bs.Spec.DeletionPolicy != storagev1alpha1.BackupStorageWipeOut:
		// Changed after the deletion began: how a user unblocks a
		// wipe-out that keeps failing.
		return r.leaveData(bs, corev1.EventTypeNormal, "deletionPolicy is "+string(bs.Spec.DeletionPolicy)+": the data stays in the storage"), true
	case sb.Provider != storagev1alpha1.ProviderS3 || sb.S3 == nil:
		return r.leaveData(bs, corev1.EventTypeWarning,
			"a local storage is only mounted into Jobs and the operator cannot reach it: the data is left in it; delete it by hand"), true
	case bs.Spec.Attach == storagev1alpha1.AttachShared:
		return r.leaveData(bs, corev1.EventTypeWarning, fmt.Sprintf(
			"attach is Shared: nothing is deleted through this storage; the data under %s stays", location(sb.S3))), true
	case strings.Trim(sb.S3.Prefix, "/") == "":
		return r.leaveData(bs, corev1.EventTypeWarning, fmt.Sprintf(
			"the prefix is empty: wiping it out would empty the whole bucket %s, which Keepsake refuses; the data is left in it",
			sb.S3.Bucket)), true
	}
	store, gone, err := r.wipeStore(ctx, bs)
	if gone != "" {
		return r.leaveData(bs, corev1.EventTypeWarning, fmt.Sprintf(
			"%s is gone, so the operator cannot reach the storage: the data under %s is left in it", gone, location(sb.S3))), true
	}
	if err != nil {
		return r.wipeFailed(bs, err), false
	}
	ctx, cancel := context.WithTimeout(ctx, wipeTimeout)
	defer cancel()
	if why, err := notOwned(ctx, bs, store); why != "" || err != nil {
		if err != nil {
			return r.wipeFailed(bs, err), false
		}
		return r.leaveData(bs, corev1.EventTypeWarning, why+": the data under "+location(sb.S3)+" is left in the storage"), true
	}
	n, err := store.DeleteAll(ctx, "")
	if err != nil {
		return r.wipeFailed(bs, fmt.Errorf("%w (%d objects deleted so far)", err, n)), false
	}
	r.Events.Eventf(bs, nil, corev1.EventTypeNormal, storagev1alpha1.ReasonWipedOut, "WipeOut",
		"deleted %d objects under %s", n, location(sb.S3))
	return ctrl.Result{}, true
}

// wipeStore opens the S3 storage of bs. When its credentials Secret or CA
// bundle is gone, gone names it.
func (r *Reconciler) wipeStore(ctx context.Context, bs *storagev1alpha1.BackupStorage) (s storage.Store, gone string, err error) {
	s3 := bs.Spec.Storage.S3
	var creds storage.Credentials
	if s3.SecretName != "" {
		var secret corev1.Secret
		key := types.NamespacedName{Namespace: bs.Namespace, Name: s3.SecretName}
		if err := r.APIReader.Get(ctx, key, &secret); err != nil {
			gone, err := missing(err, "credentials secret "+key.String())
			return nil, gone, err
		}
		if creds, err = storage.CredentialsFromSecretData(secret.Data); err != nil {
			return nil, "", fmt.Errorf("secret %s: %w", key, err)
		}
	}
	var pem []byte
	if s3.CABundle != nil {
		var what string
		if pem, what, err = storageref.CABundle(ctx, r.APIReader, bs.Namespace, s3.CABundle); err != nil {
			gone, err := missing(err, what)
			return nil, gone, err
		}
	}
	s, err = storage.Open(s3Config(s3, creds, pem))
	return s, "", err
}

// missing returns what as gone when err is NotFound, and err otherwise.
func missing(err error, what string) (string, error) {
	if apierrors.IsNotFound(err) {
		return what, nil
	}
	return "", fmt.Errorf("get %s: %w", what, err)
}

// location names the bucket and prefix of s3.
func location(s3 *storagev1alpha1.S3Storage) string {
	return path.Join(s3.Bucket, strings.Trim(s3.Prefix, "/")) + "/"
}

// leaveData records, with an Event of evType, that the BackupStorage goes
// without its data being deleted.
func (r *Reconciler) leaveData(bs *storagev1alpha1.BackupStorage, evType, message string) ctrl.Result {
	r.Events.Eventf(bs, nil, evType, storagev1alpha1.ReasonDataLeft, "WipeOut", message)
	return ctrl.Result{}
}

// wipeFailed records an attempt that failed and schedules the next one,
// later the longer the wipe-out has been failing.
func (r *Reconciler) wipeFailed(bs *storagev1alpha1.BackupStorage, err error) ctrl.Result {
	msg := fmt.Sprintf("deleting the data under %s failed: %v; set spec.deletionPolicy to Retain to keep the data and let the BackupStorage go",
		location(bs.Spec.Storage.S3), err)
	status.Set(&bs.Status.Conditions, bs.Generation, storagev1alpha1.ConditionWipedOut, false, storagev1alpha1.ReasonWipeOutFailed, msg)
	r.Events.Eventf(bs, nil, corev1.EventTypeWarning, storagev1alpha1.ReasonWipeOutFailed, "WipeOut", msg)
	return ctrl.Result{RequeueAfter: status.Backoff(bs.Status.Conditions, storagev1alpha1.ConditionWipedOut, time.Now())}
}

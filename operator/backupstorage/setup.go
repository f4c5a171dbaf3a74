// Package backupstorage reconciles BackupStorages: it reads the credentials
// Secret and CA bundle, checks the bucket, writes <prefix>/metadata.yaml and
// reports Ready or NotReady with a reason users can act on; with
// deletionPolicy WipeOut, it deletes everything under the prefix before a
// deleted BackupStorage goes.
package backupstorage

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=backupstorages,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=backupstorages/finalizers,verbs=update
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=backupstorages/status,verbs=get;patch;update
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Setup registers the BackupStorage reconciler with mgr. Secrets and CA
// bundles are read straight from the API server; a storage is reconciled
// again when its credentials Secret or CA bundle Secret is created,
// changed or deleted (the watch caches Secrets' metadata only, never their
// data). A ConfigMap CA bundle is checked again with backoff.
func Setup(mgr ctrl.Manager) error {
	r := &Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Events:    mgr.GetEventRecorder("keepsake-backupstorage"),
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("backupstorage").
		// Objects are independent: a slow one (an unreachable S3 endpoint, a
		// long WipeOut) must not stall the others.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		For(&storagev1alpha1.BackupStorage{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(storagesOfSecret(mgr.GetClient())), builder.OnlyMetadata).
		Complete(r)
}

// storagesOfSecret maps a Secret to the BackupStorages of its namespace
// that name it, as credentials or CA bundle.
func storagesOfSecret(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list storagev1alpha1.BackupStorageList
		if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, bs := range list.Items {
			if slices.Contains(secretsOf(&bs), o.GetName()) {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bs)})
			}
		}
		return reqs
	}
}

// secretsOf names the Secrets a BackupStorage reads.
func secretsOf(bs *storagev1alpha1.BackupStorage) []string {
	s3 := bs.Spec.Storage.S3
	if s3 == nil {
		return nil
	}
	names := []string{s3.SecretName}
	if ca := s3.CABundle; ca != nil && ca.SecretKeyRef != nil {
		names = append(names, ca.SecretKeyRef.Name)
	}
	return names
}

// Package backupstorage reconciles BackupStorages: it reads the credentials
// Secret and CA bundle, checks the bucket, writes <prefix>/metadata.yaml and
// reports Ready or NotReady with a reason users can act on; with
// deletionPolicy WipeOut, it deletes everything under the prefix before a
// deleted BackupStorage goes.
package backupstorage

import (
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=backupstorages,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=backupstorages/finalizers,verbs=update
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=backupstorages/status,verbs=get;patch;update
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Setup registers the BackupStorage reconciler with mgr. Secrets and CA
// bundles are read straight from the API server (get only, no cluster-wide
// Secret cache); a storage waiting for one is checked again with backoff.
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
		Complete(r)
}

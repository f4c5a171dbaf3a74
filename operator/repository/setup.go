// Package repository reconciles Repositories: it checks the storage and the
// encryption Secret, writes repository.yaml and sums up the Snapshots; with
// deletionPolicy WipeOut, it deletes the restic repository from the
// storage before a deleted Repository goes.
package repository

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
)

// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=repositories,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=repositories/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=repositories/finalizers,verbs=update
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=snapshots,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=snapshots/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=core.keepsake.dev,resources=backupconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=backupstorages,verbs=get;list;watch
// +kubebuilder:rbac:groups=addons.keepsake.dev,resources=addons;functions,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// indexEncryptionSecret indexes Repositories by their encryption Secret,
// as "<namespace>/<name>".
const indexEncryptionSecret = "spec.encryptionSecret"

// Setup registers the Repository reconciler with mgr. A Repository is
// reconciled again when one of its Snapshots, its BackupStorage or its
// encryption Secret changes. Secrets are read straight from the API server;
// the watch caches their metadata only, never their data.
func Setup(mgr ctrl.Manager, opts jobs.Options) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &storagev1alpha1.Repository{}, indexEncryptionSecret,
		func(o client.Object) []string {
			return []string{encryptionSecretKey(o.(*storagev1alpha1.Repository)).String()}
		}); err != nil {
		return err
	}
	r := &Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Events:    mgr.GetEventRecorder("keepsake-repository"),
		Options:   opts,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("repository").
		// Objects are independent: a slow one (an unreachable S3 endpoint, a
		// long WipeOut) must not stall the others.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		For(&storagev1alpha1.Repository{}).
		Owns(&batchv1.Job{}).
		Watches(&storagev1alpha1.Snapshot{}, handler.EnqueueRequestsFromMapFunc(repositoryOfSnapshot)).
		Watches(&storagev1alpha1.BackupStorage{}, handler.EnqueueRequestsFromMapFunc(repositoriesOfStorage(mgr.GetClient()))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(repositoriesOfSecret(mgr.GetClient())), builder.OnlyMetadata).
		Complete(r)
}

// repositoriesOfSecret maps a Secret to the Repositories, in any
// namespace, it encrypts.
func repositoriesOfSecret(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list storagev1alpha1.RepositoryList
		if err := c.List(ctx, &list, client.MatchingFields{indexEncryptionSecret: client.ObjectKeyFromObject(o).String()}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, repo := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&repo)})
		}
		return reqs
	}
}

// encryptionSecretKey is the Repository's encryption Secret: in the
// namespace its reference names, else in the Repository's.
func encryptionSecretKey(repo *storagev1alpha1.Repository) client.ObjectKey {
	ref := repo.Spec.EncryptionSecret
	if ref.Namespace == "" {
		ref.Namespace = repo.Namespace
	}
	return client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}
}

// repositoryOfSnapshot maps a Snapshot to the Repository holding it.
func repositoryOfSnapshot(_ context.Context, o client.Object) []reconcile.Request {
	snap, ok := o.(*storagev1alpha1.Snapshot)
	if !ok || snap.Spec.Repository == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: snap.Namespace, Name: snap.Spec.Repository}}}
}

// repositoriesOfStorage maps a BackupStorage to the Repositories, in any
// namespace, stored in it.
func repositoriesOfStorage(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list storagev1alpha1.RepositoryList
		if err := c.List(ctx, &list); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, repo := range list.Items {
			if ref := storageRef(&repo); ref.Name == o.GetName() && ref.Namespace == o.GetNamespace() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&repo)})
			}
		}
		return reqs
	}
}

// storageRef is the Repository's storageRef with its namespace filled in.
func storageRef(repo *storagev1alpha1.Repository) storagev1alpha1.ObjectReference {
	ref := repo.Spec.StorageRef
	if ref.Namespace == "" {
		ref.Namespace = repo.Namespace
	}
	return ref
}

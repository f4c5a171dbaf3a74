// Package snapshot reconciles Snapshots: a Snapshot with deletionPolicy
// WipeOut (or Delete, its former name) keeps a finalizer until a Job has forgotten its restic snapshots.
package snapshot

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
)

// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=snapshots,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=snapshots/finalizers,verbs=update
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=snapshots/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=repositories;backupstorages,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Options configure the Jobs (or CronJobs) the reconciler creates.
type Options = jobs.Options

// Setup registers the Snapshot reconciler with mgr. A Snapshot is
// reconciled again when its forget Job changes.
func Setup(mgr ctrl.Manager, opts Options) error {
	r := &Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Events:    mgr.GetEventRecorder("keepsake-snapshot"),
		Options:   opts,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("snapshot").
		For(&storagev1alpha1.Snapshot{}).
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(snapshotOfJob)).
		Complete(r)
}

// snapshotOfJob maps a forget Job to the Snapshot it forgets. The Job is
// not owned by the Snapshot (see ensureJob), so an annotation links them.
func snapshotOfJob(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetAnnotations()[AnnotationForgetOf]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}

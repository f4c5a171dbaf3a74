// Package restoresession reconciles RestoreSessions: it resolves the Snapshot,
// builds the restore Job from the Addon's restore task and follows it.
package restoresession

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
)

// +kubebuilder:rbac:groups=core.keepsake.dev,resources=restoresessions,verbs=get;list;watch
// +kubebuilder:rbac:groups=core.keepsake.dev,resources=restoresessions/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=snapshots;repositories;backupstorages,verbs=get;list;watch
// +kubebuilder:rbac:groups=addons.keepsake.dev,resources=addons;functions,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=create
// +kubebuilder:rbac:groups="",resources=pods;events,verbs=list
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// An offline restore (a restore task with targetMustBeStopped) scales the
// target's StatefulSet to 0 and back, pausing a HyperbytedbCluster's
// operator meanwhile, and checks its PVCs before it starts.
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;patch
// +kubebuilder:rbac:groups=hyperbytedb.hyperbyte.cloud,resources=hyperbytedbclusters,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get

// Options configure the Jobs (or CronJobs) the reconciler creates.
type Options = jobs.Options

// Setup registers the RestoreSession reconciler with mgr. A RestoreSession
// is reconciled again when its Job changes, and a waiting one as soon as a
// Snapshot of its namespace changes (e.g. the backup it waits for ends).
func Setup(mgr ctrl.Manager, opts Options) error {
	r := &Reconciler{
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		RESTMapper: mgr.GetRESTMapper(),
		Events:     mgr.GetEventRecorder("keepsake-restoresession"),
		Options:    opts,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("restoresession").
		// Objects are independent: a slow one (an unreachable S3 endpoint, a
		// long WipeOut) must not stall the others.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		For(&corev1alpha1.RestoreSession{}).
		Owns(&batchv1.Job{}).
		Watches(&storagev1alpha1.Snapshot{}, handler.EnqueueRequestsFromMapFunc(waitingRestores(mgr.GetClient()))).
		Complete(r)
}

// waitingRestores maps a Snapshot to the RestoreSessions of its namespace
// that have not started yet: any of them may be waiting for it, by name or
// as the latest of its repository.
func waitingRestores(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list corev1alpha1.RestoreSessionList
		if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, rs := range list.Items {
			if rs.Status.Phase == "" || rs.Status.Phase == corev1alpha1.RestorePending {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rs)})
			}
		}
		return reqs
	}
}

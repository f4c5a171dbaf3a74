// Package backupsession reconciles BackupSessions: one run of one session of
// a BackupConfiguration. It creates one Snapshot per repository and exactly
// one Job built from the session's Addon task and Function, follows the Job
// to Succeeded or Failed, and prunes old BackupSessions.
//
// The session's whole life (phases, what moves it from one to the next,
// concurrency, deadlines, stuck pods, retention and history) is described
// once, in docs/backupsession-lifecycle.md; the steps in reconcile.go
// follow it in order.
package backupsession

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
)

// +kubebuilder:rbac:groups=core.keepsake.dev,resources=backupsessions,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=core.keepsake.dev,resources=backupsessions/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=core.keepsake.dev,resources=backupsessions/finalizers,verbs=update
// +kubebuilder:rbac:groups=core.keepsake.dev,resources=backupconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=snapshots,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=snapshots/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=repositories;backupstorages,verbs=get;list;watch
// +kubebuilder:rbac:groups=addons.keepsake.dev,resources=addons;functions,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=create;delete
// +kubebuilder:rbac:groups="",resources=pods;events,verbs=list
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// A backup task that mounts the target's volume (mountsTargetVolume) reads
// the target's StatefulSet (a HyperbytedbCluster's), its pod 0 and that
// pod's PVC.
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get
// +kubebuilder:rbac:groups=hyperbytedb.hyperbyte.cloud,resources=hyperbytedbclusters,verbs=get
// +kubebuilder:rbac:groups="",resources=pods;persistentvolumeclaims,verbs=get

// Setup registers the BackupSession reconciler with mgr. A session is
// reconciled again when its Job or Snapshots change, and a waiting session
// when its BackupConfiguration changes (e.g. becomes Ready).
func Setup(mgr ctrl.Manager, opts Options) error {
	r := &Reconciler{
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Events:     mgr.GetEventRecorder("keepsake-backupsession"),
		RESTMapper: mgr.GetRESTMapper(),
		Options:    opts,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("backupsession").
		// One worker, on purpose: runs of one session are not independent.
		// checkConcurrency decides Forbid and Replace from what the API server
		// stores, which is only complete when the pass that started a Job has
		// recorded Running before the next pass reads. The reconcile does no
		// long work (Jobs do), so one worker keeps up.
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		For(&corev1alpha1.BackupSession{}).
		Owns(&batchv1.Job{}).
		Watches(&storagev1alpha1.Snapshot{}, handler.EnqueueRequestsFromMapFunc(sessionOfSnapshot)).
		Watches(&corev1alpha1.BackupConfiguration{}, handler.EnqueueRequestsFromMapFunc(waitingSessions(mgr.GetClient()))).
		Complete(r)
}

// waitingSessions maps a BackupConfiguration to its BackupSessions that have
// not started yet.
func waitingSessions(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list corev1alpha1.BackupSessionList
		if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, b := range list.Items {
			if b.Spec.BackupConfiguration == o.GetName() && (b.Status.Phase == "" || b.Status.Phase == corev1alpha1.BackupSessionPending) {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&b)})
			}
		}
		return reqs
	}
}

// sessionOfSnapshot maps a Snapshot to the BackupSession that took it.
func sessionOfSnapshot(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[LabelBackupSession]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}

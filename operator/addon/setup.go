// Package addon reconciles the cluster-scoped addon catalog: a Function is
// Ready once accepted, an Addon is Ready when the Function of every one of
// its tasks exists.
package addon

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
)

// +kubebuilder:rbac:groups=addons.keepsake.dev,resources=addons;functions,verbs=get;list;watch
// +kubebuilder:rbac:groups=addons.keepsake.dev,resources=addons/status;functions/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Setup registers the Addon and Function reconcilers with mgr. An Addon is
// reconciled again whenever a Function appears or goes away.
func Setup(mgr ctrl.Manager) error {
	c := mgr.GetClient()
	err := ctrl.NewControllerManagedBy(mgr).
		Named("function").
		For(&addonsv1alpha1.Function{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(&FunctionReconciler{Client: c})
	if err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("addon").
		For(&addonsv1alpha1.Addon{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&addonsv1alpha1.Function{}, handler.EnqueueRequestsFromMapFunc(addonsOf(c)),
			builder.WithPredicates(onCreateOrDelete())).
		Complete(&AddonReconciler{Client: c, Events: mgr.GetEventRecorder("keepsake-addon")})
}

// addonsOf maps a Function to the Addons whose tasks run it.
func addonsOf(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, fn client.Object) []reconcile.Request {
		var addons addonsv1alpha1.AddonList
		if err := c.List(ctx, &addons); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, a := range addons.Items {
			if usesFunction(&a, fn.GetName()) {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: a.Name}})
			}
		}
		return reqs
	}
}

// usesFunction reports whether a task of the Addon runs the named Function.
func usesFunction(a *addonsv1alpha1.Addon, fn string) bool {
	for _, t := range append(append([]addonsv1alpha1.Task{}, a.Spec.BackupTasks...), a.Spec.RestoreTasks...) {
		if t.Function == fn {
			return true
		}
	}
	return false
}

// onCreateOrDelete passes only the events that change whether a Function
// exists.
func onCreateOrDelete() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc:  func(ev event.UpdateEvent) bool { return false },
		GenericFunc: func(ev event.GenericEvent) bool { return false },
	}
}

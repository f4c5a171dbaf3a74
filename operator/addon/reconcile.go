package addon

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

// FunctionReconciler marks Functions Ready.
type FunctionReconciler struct {
	// Client reads Functions from the cache and patches their status.
	Client client.Client
}

// Reconcile records that the Function, which the API server validated, is
// accepted at its current generation.
func (r *FunctionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var fn addonsv1alpha1.Function
	if err := r.Client.Get(ctx, req.NamespacedName, &fn); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	patcher := status.NewPatcher(&fn)
	fn.Status.Phase = addonsv1alpha1.CatalogReady
	status.Set(&fn.Status.Conditions, fn.Generation, addonsv1alpha1.ConditionReady, true,
		addonsv1alpha1.ReasonFunctionAccepted, "the function is valid")
	_, err := patcher.Patch(ctx, r.Client, &fn)
	return ctrl.Result{}, err
}

// AddonReconciler checks that every task of an Addon has its Function.
type AddonReconciler struct {
	// Client reads Addons and Functions from the cache and patches status.
	Client client.Client
	// Events records what users should see in `kubectl describe`.
	Events events.EventRecorder
}

// Reconcile marks the Addon Ready when the Function of each of its tasks
// exists, NotReady with reason FunctionNotFound otherwise. A missing Function
// needs no polling: its creation triggers this reconciler again.
func (r *AddonReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var a addonsv1alpha1.Addon
	if err := r.Client.Get(ctx, req.NamespacedName, &a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	patcher := status.NewPatcher(&a)
	missing, err := r.missingFunctions(ctx, &a)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.setReady(&a, missing)
	_, err = patcher.Patch(ctx, r.Client, &a)
	return ctrl.Result{}, err
}

// missingFunctions lists, sorted as the tasks are, the Functions named by a
// task that do not exist.
func (r *AddonReconciler) missingFunctions(ctx context.Context, a *addonsv1alpha1.Addon) ([]string, error) {
	var missing []string
	seen := map[string]bool{}
	for _, t := range append(append([]addonsv1alpha1.Task{}, a.Spec.BackupTasks...), a.Spec.RestoreTasks...) {
		if seen[t.Function] {
			continue
		}
		seen[t.Function] = true
		var fn addonsv1alpha1.Function
		err := r.Client.Get(ctx, types.NamespacedName{Name: t.Function}, &fn)
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, t.Function)
		case err != nil:
			return nil, fmt.Errorf("get function %s: %w", t.Function, err)
		}
	}
	return missing, nil
}

// setReady records the outcome, with an Event when it changes.
func (r *AddonReconciler) setReady(a *addonsv1alpha1.Addon, missing []string) {
	ok, reason, msg := true, addonsv1alpha1.ReasonFunctionsFound, "every task's function exists"
	a.Status.Phase = addonsv1alpha1.CatalogReady
	if len(missing) > 0 {
		ok, reason = false, addonsv1alpha1.ReasonFunctionNotFound
		msg = "functions not found: " + strings.Join(missing, ", ")
		a.Status.Phase = addonsv1alpha1.CatalogNotReady
	}
	if status.Set(&a.Status.Conditions, a.Generation, addonsv1alpha1.ConditionReady, ok, reason, msg) {
		evType := corev1.EventTypeNormal
		if !ok {
			evType = corev1.EventTypeWarning
		}
		r.Events.Eventf(a, nil, evType, reason, "Resolve", msg)
	}
}

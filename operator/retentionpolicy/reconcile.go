package retentionpolicy

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

// Reconciler marks RetentionPolicies Ready.
type Reconciler struct {
	// Client reads policies from the cache and patches their status.
	Client client.Client
}

// Reconcile records that the policy, which the API server validated, is
// accepted at its current generation.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var p storagev1alpha1.RetentionPolicy
	if err := r.Client.Get(ctx, req.NamespacedName, &p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	patcher := status.NewPatcher(&p)
	p.Status.Phase = storagev1alpha1.RetentionPolicyReady
	status.Set(&p.Status.Conditions, p.Generation, storagev1alpha1.ConditionReady, true,
		storagev1alpha1.ReasonPolicyAccepted, "the policy is valid")
	_, err := patcher.Patch(ctx, r.Client, &p)
	return ctrl.Result{}, err
}

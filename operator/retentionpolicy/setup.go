// Package retentionpolicy reconciles RetentionPolicies. The API server's
// schema already validates every rule, so the reconciler only reports the
// policy Ready for users and for BackupConfigurations that refer to it.
package retentionpolicy

import (
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=retentionpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=retentionpolicies/status,verbs=get;patch;update

// Setup registers the RetentionPolicy reconciler with mgr.
func Setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("retentionpolicy").
		For(&storagev1alpha1.RetentionPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(&Reconciler{Client: mgr.GetClient()})
}

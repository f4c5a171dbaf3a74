// Package targets looks up the application a BackupConfiguration or a
// RestoreSession names, whatever its kind: a StatefulSet, a Service or a
// custom resource such as a HyperbytedbCluster.
package targets

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
)

// Find looks the target up by API group and kind through the REST mapper,
// in namespace ns when the kind is namespaced. A target that does not
// exist, or that the operator may not read, is a *jobs.Problem with reason
// TargetNotFound or TargetNotAccessible; other errors are returned as such.
func Find(ctx context.Context, reader client.Reader, mapper meta.RESTMapper, t storagev1alpha1.TypedObjectReference, ns string) error {
	mapping, err := mapper.RESTMapping(schema.GroupKind{Group: t.APIGroup, Kind: t.Kind})
	if meta.IsNoMatchError(err) {
		return jobs.NewProblem(corev1alpha1.ReasonTargetNotFound, "the API server knows no kind %s in group %q", t.Kind, t.APIGroup)
	}
	if err != nil {
		return fmt.Errorf("map kind %s: %w", t.Kind, err)
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(mapping.GroupVersionKind)
	key := types.NamespacedName{Name: t.Name}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		key.Namespace = ns
	}
	if err := reader.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return jobs.NewProblem(corev1alpha1.ReasonTargetNotFound, "%s %s not found", t.Kind, key)
		}
		if apierrors.IsForbidden(err) {
			return jobs.NewProblem(corev1alpha1.ReasonTargetNotAccessible,
				"the operator may not read %s %s: grant it get on %s.%s (the chart's targetReadRules value)",
				t.Kind, key, mapping.Resource.Resource, mapping.Resource.Group)
		}
		return fmt.Errorf("get target %s %s: %w", t.Kind, key, err)
	}
	return nil
}

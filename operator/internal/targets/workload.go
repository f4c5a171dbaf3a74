package targets

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
)

// HyperbytedbCluster is the group and kind of the HyperbyteDB operator's
// cluster resource (github.com/hyperbyte-cloud/hyperbytedb-operator,
// api/v1alpha1/hyperbytedbcluster_types.go). Its operator names the
// StatefulSet and the client Service after the cluster and the PVCs
// data-<cluster>-<ordinal> (internal/hyperbytedb/statefulset.go, service.go,
// pvc.go), and skips reconciling a cluster whose spec.paused is true.
var HyperbytedbCluster = schema.GroupKind{Group: "hyperbytedb.hyperbyte.cloud", Kind: "HyperbytedbCluster"}

// Workload is what an offline restore stops, writes and starts again.
type Workload struct {
	// StatefulSet runs the database.
	StatefulSet *appsv1.StatefulSet
	// Service is the name of the Service clients use; "" when the target is
	// a bare StatefulSet.
	Service string
	// Owner is the object whose operator manages the StatefulSet and would
	// undo a scale-down unless paused (a HyperbytedbCluster); nil when
	// nothing manages it.
	Owner *unstructured.Unstructured
}

// ResolveWorkload finds the StatefulSet behind target t in namespace ns: t
// itself when it is a StatefulSet, the cluster's when it is a
// HyperbytedbCluster. Another kind, or a target that is missing, is a
// *jobs.Problem.
func ResolveWorkload(ctx context.Context, reader client.Reader, mapper meta.RESTMapper, t storagev1alpha1.TypedObjectReference, ns string) (*Workload, error) {
	w := &Workload{}
	stsName := t.Name
	switch (schema.GroupKind{Group: t.APIGroup, Kind: t.Kind}) {
	case schema.GroupKind{Group: appsv1.GroupName, Kind: "StatefulSet"}:
	case HyperbytedbCluster:
		owner, err := getOwner(ctx, reader, mapper, t, ns)
		if err != nil {
			return nil, err
		}
		w.Owner, w.Service = owner, t.Name
	default:
		return nil, jobs.NewProblem(corev1alpha1.ReasonTargetNotStoppable,
			"an offline restore stops a StatefulSet or a HyperbytedbCluster, not a %s", t.Kind)
	}
	var sts appsv1.StatefulSet
	if err := reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: stsName}, &sts); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, jobs.NewProblem(corev1alpha1.ReasonTargetNotFound, "StatefulSet %s/%s of %s %s not found", ns, stsName, t.Kind, t.Name)
		}
		return nil, fmt.Errorf("get StatefulSet %s/%s: %w", ns, stsName, err)
	}
	w.StatefulSet = &sts
	return w, nil
}

// getOwner reads the HyperbytedbCluster t.
func getOwner(ctx context.Context, reader client.Reader, mapper meta.RESTMapper, t storagev1alpha1.TypedObjectReference, ns string) (*unstructured.Unstructured, error) {
	mapping, err := mapper.RESTMapping(HyperbytedbCluster)
	if meta.IsNoMatchError(err) {
		return nil, jobs.NewProblem(corev1alpha1.ReasonTargetNotFound, "the API server knows no kind %s in group %q", t.Kind, t.APIGroup)
	}
	if err != nil {
		return nil, fmt.Errorf("map kind %s: %w", t.Kind, err)
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(mapping.GroupVersionKind)
	if err := reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: t.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, jobs.NewProblem(corev1alpha1.ReasonTargetNotFound, "%s %s/%s not found", t.Kind, ns, t.Name)
		}
		return nil, fmt.Errorf("get %s %s/%s: %w", t.Kind, ns, t.Name, err)
	}
	return obj, nil
}

// Replicas is the StatefulSet's replica count, 1 when unset (the API
// server's default).
func Replicas(sts *appsv1.StatefulSet) int32 {
	if sts.Spec.Replicas == nil {
		return 1
	}
	return *sts.Spec.Replicas
}

// PVCs are the names of the PersistentVolumeClaims of a StatefulSet of
// replicas pods: <template>-<statefulset>-<ordinal> for each
// volumeClaimTemplate, ordinal by ordinal.
func PVCs(sts *appsv1.StatefulSet, replicas int32) []string {
	var names []string
	for i := range replicas {
		for _, tpl := range sts.Spec.VolumeClaimTemplates {
			names = append(names, fmt.Sprintf("%s-%s-%d", tpl.Name, sts.Name, i))
		}
	}
	return names
}

// Paused reports whether the owner's spec.paused is true.
func Paused(owner *unstructured.Unstructured) bool {
	paused, _, _ := unstructured.NestedBool(owner.Object, "spec", "paused")
	return paused
}

// SetPaused sets the owner's spec.paused with a merge patch.
func SetPaused(ctx context.Context, c client.Client, owner *unstructured.Unstructured, paused bool) error {
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"paused":%t}}`, paused))
	if err := c.Patch(ctx, owner, patch); err != nil {
		return fmt.Errorf("set spec.paused of %s %s to %t: %w", owner.GetKind(), owner.GetName(), paused, err)
	}
	return nil
}

// Running lists the names of the StatefulSet's pods that have not ended:
// pending, running or terminating. An offline restore starts only when it
// is empty.
func Running(ctx context.Context, reader client.Reader, sts *appsv1.StatefulSet) ([]string, error) {
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("selector of StatefulSet %s: %w", sts.Name, err)
	}
	var pods corev1.PodList
	if err := reader.List(ctx, &pods, client.InNamespace(sts.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("list pods of StatefulSet %s: %w", sts.Name, err)
	}
	var names []string
	for _, pod := range pods.Items {
		if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			names = append(names, pod.Name)
		}
	}
	return names, nil
}

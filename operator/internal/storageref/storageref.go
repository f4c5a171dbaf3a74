// Package storageref reads what a BackupStorage refers to, for the
// reconcilers that open its store: the BackupStorage's own and the
// Repository's.
package storageref

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// CABundle reads the selected key of the Secret or ConfigMap of a CA
// bundle in namespace ns, past the cache (the operator watches no Secret);
// where names it for messages.
func CABundle(ctx context.Context, r client.Reader, ns string, src *storagev1alpha1.CABundleSource) (pem []byte, where string, err error) {
	if ref := src.SecretKeyRef; ref != nil {
		where = fmt.Sprintf("key %s of secret %s/%s", ref.Key, ns, ref.Name)
		var s corev1.Secret
		err = r.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, &s)
		return s.Data[ref.Key], where, err
	}
	ref := src.ConfigMapKeyRef
	if ref == nil { // the schema forbids it; never panic on a user's object
		return nil, "caBundle without secretKeyRef or configMapKeyRef", nil
	}
	where = fmt.Sprintf("key %s of configmap %s/%s", ref.Key, ns, ref.Name)
	var cm corev1.ConfigMap
	err = r.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, &cm)
	return []byte(cm.Data[ref.Key]), where, err
}

// Allows applies the usage policy of an object of namespace own (a
// BackupStorage or RetentionPolicy) to namespace ns, reading ns's labels
// past the cache only when a selector needs them. A broken selector
// allows nothing.
func Allows(ctx context.Context, r client.Reader, policy *storagev1alpha1.UsagePolicy, own, ns string) (bool, error) {
	var nsLabels map[string]string
	if own != ns && policy != nil && policy.AllowedNamespaces.From == storagev1alpha1.NamespacesFromSelector {
		var n corev1.Namespace
		if err := r.Get(ctx, types.NamespacedName{Name: ns}, &n); err != nil {
			return false, fmt.Errorf("get namespace %s: %w", ns, err)
		}
		nsLabels = n.Labels
	}
	ok, err := policy.AllowsNamespace(own, ns, nsLabels)
	if err != nil {
		return false, nil
	}
	return ok, nil
}

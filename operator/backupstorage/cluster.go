package backupstorage

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// clusterIdentity caches the UID of the cluster's kube-system namespace,
// which lives exactly as long as the cluster does.
type clusterIdentity struct {
	mu  sync.Mutex
	uid string
}

// clusterID returns this cluster's identity, read once.
func (r *Reconciler) clusterID(ctx context.Context) (string, error) {
	r.cluster.mu.Lock()
	defer r.cluster.mu.Unlock()
	if r.cluster.uid != "" {
		return r.cluster.uid, nil
	}
	var ns corev1.Namespace
	if err := r.APIReader.Get(ctx, client.ObjectKey{Name: metav1.NamespaceSystem}, &ns); err != nil {
		return "", fmt.Errorf("read namespace %s, the cluster's identity: %w", metav1.NamespaceSystem, err)
	}
	r.cluster.uid = string(ns.UID)
	return r.cluster.uid, nil
}

// sameStorage reports whether metadata.yaml was written by an earlier
// BackupStorage of this cluster with bs's namespace and name: one that was
// deleted (with its data kept) and made again.
func sameStorage(m *storage.StorageMetadata, bs *storagev1alpha1.BackupStorage, cluster string) bool {
	return m.Cluster != "" && m.Cluster == cluster && m.Namespace == bs.Namespace && m.Name == bs.Name
}

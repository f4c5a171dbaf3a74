// Package v1alpha1 holds the storage.keepsake.dev API: where backups live
// (BackupStorage), the restic repositories inside it (Repository), the
// backups taken into them (Snapshot) and how long they are kept
// (RetentionPolicy).
//
// +kubebuilder:object:generate=true
// +groupName=storage.keepsake.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of every type in this package.
var GroupVersion = schema.GroupVersion{Group: "storage.keepsake.dev", Version: "v1alpha1"}

var (
	// SchemeBuilder registers this package's types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this package's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&BackupStorage{}, &BackupStorageList{},
		&Repository{}, &RepositoryList{},
		&Snapshot{}, &SnapshotList{},
		&RetentionPolicy{}, &RetentionPolicyList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}

// Package v1alpha1 holds the core.keepsake.dev API: what to back up and when
// (BackupConfiguration), one run of it (BackupSession), and restoring
// (RestoreSession).
//
// +kubebuilder:object:generate=true
// +groupName=core.keepsake.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of every type in this package.
var GroupVersion = schema.GroupVersion{Group: "core.keepsake.dev", Version: "v1alpha1"}

var (
	// SchemeBuilder registers this package's types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this package's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&BackupConfiguration{}, &BackupConfigurationList{},
		&BackupSession{}, &BackupSessionList{},
		&RestoreSession{}, &RestoreSessionList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}

// Package v1alpha1 holds the addons.keepsake.dev API, the cluster-scoped
// catalog of what Keepsake can back up: an Addon names the backup and
// restore tasks for one kind of database, a Function names the container
// that runs a task.
//
// +kubebuilder:object:generate=true
// +groupName=addons.keepsake.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of every type in this package.
var GroupVersion = schema.GroupVersion{Group: "addons.keepsake.dev", Version: "v1alpha1"}

var (
	// SchemeBuilder registers this package's types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this package's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&Addon{}, &AddonList{},
		&Function{}, &FunctionList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}

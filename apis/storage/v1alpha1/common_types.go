package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ObjectReference names an object of a known kind, optionally in another
// namespace.
type ObjectReference struct {
	// Name of the referenced object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the referenced object. Empty means the namespace of the
	// object holding this reference.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// TypedObjectReference names an object of any kind, for example the
// HyperbytedbCluster, StatefulSet or Service a backup is taken of.
type TypedObjectReference struct {
	// APIGroup of the referenced kind; empty for the core group.
	// +optional
	APIGroup string `json:"apiGroup,omitempty"`
	// Kind of the referenced object, e.g. StatefulSet or HyperbytedbCluster.
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`
	// Name of the referenced object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the referenced object. Empty means the namespace of the
	// object holding this reference.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// NamespacesFrom says which namespaces may use a shared object.
// +kubebuilder:validation:Enum=Same;All;Selector
type NamespacesFrom string

const (
	// NamespacesFromSame allows only the object's own namespace.
	NamespacesFromSame NamespacesFrom = "Same"
	// NamespacesFromAll allows every namespace.
	NamespacesFromAll NamespacesFrom = "All"
	// NamespacesFromSelector allows namespaces matching a label selector.
	NamespacesFromSelector NamespacesFrom = "Selector"
)

// UsagePolicy says which namespaces may refer to a BackupStorage or a
// RetentionPolicy.
type UsagePolicy struct {
	// AllowedNamespaces lists the namespaces allowed to use this object.
	// +optional
	AllowedNamespaces AllowedNamespaces `json:"allowedNamespaces,omitempty"`
}

// AllowedNamespaces selects namespaces.
// +kubebuilder:validation:XValidation:rule="self.from != 'Selector' || has(self.selector)",message="selector is required when from is Selector"
type AllowedNamespaces struct {
	// From is Same (only this namespace), All, or Selector (namespaces
	// matching selector).
	// +kubebuilder:default=Same
	// +optional
	From NamespacesFrom `json:"from,omitempty"`
	// Selector matches namespace labels when From is Selector.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// Condition types shared by several kinds.
const (
	// ConditionReady summarises whether an object can be used.
	ConditionReady = "Ready"
)

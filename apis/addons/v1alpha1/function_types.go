package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FunctionSpec is the container that runs a task. In command, args and env
// values, ${name} is replaced by the parameter or built-in variable of that
// name and ${name:=default} falls back to default when it is unset.
type FunctionSpec struct {
	// Image of the container, e.g. the database's own tools image; the
	// Keepsake runtime is copied into it at /keepsake/bin.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`
	// Command is the container's entrypoint; the image's when empty.
	// +optional
	Command []string `json:"command,omitempty"`
	// Args are the entrypoint's arguments.
	// +optional
	Args []string `json:"args,omitempty"`
	// Env are extra environment variables. Never put secrets here: Keepsake
	// mounts credentials as files.
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`
	// VolumeMounts the container needs besides those Keepsake adds.
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// RuntimeSettings are resources and security settings for the container.
	// +optional
	RuntimeSettings *RuntimeSettings `json:"runtimeSettings,omitempty"`
}

// RuntimeSettings tune the container that runs a Function.
type RuntimeSettings struct {
	// Resources requested and limited for the container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
	// SecurityContext of the container; Keepsake's restricted defaults
	// apply to whatever is left unset.
	// +optional
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
}

// FunctionStatus is the observed state of a Function.
type FunctionStatus struct {
	// Phase is Ready once the operator has accepted the Function.
	// +optional
	Phase CatalogPhase `json:"phase,omitempty"`
	// Conditions are the detailed state: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Function is a container definition that runs an Addon task.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=fn,categories=keepsake
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Function struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the container definition.
	Spec FunctionSpec `json:"spec"`
	// Status is the function as the operator last saw it.
	// +optional
	Status FunctionStatus `json:"status,omitempty"`
}

// FunctionList is a list of Function.
//
// +kubebuilder:object:root=true
type FunctionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Function `json:"items"`
}

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AddonSpec lists the tasks an Addon offers.
// +kubebuilder:validation:XValidation:rule="size(self.backupTasks) + size(self.restoreTasks) > 0",message="an addon needs at least one backup or restore task"
type AddonSpec struct {
	// BackupTasks take a backup, e.g. logical-backup.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:default={}
	// +optional
	BackupTasks []Task `json:"backupTasks"`
	// RestoreTasks restore one, e.g. logical-restore.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:default={}
	// +optional
	RestoreTasks []Task `json:"restoreTasks"`
}

// Task is one thing an Addon can do, run by a Function's container with a
// driver.
type Task struct {
	// Name of the task, e.g. logical-backup.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="a task name must be lower-case letters, digits and dashes, starting and ending with a letter or digit, e.g. logical-backup"
	Name string `json:"name"`
	// Function is the Function whose container runs this task.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Function string `json:"function"`
	// Driver is the path of the driver binary inside the Function's image.
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="driver must be an absolute path inside the Function's image, e.g. /drivers/hyperbytedb"
	Driver string `json:"driver"`
	// Parameters the task accepts; users set them in the session's
	// addon.tasks[].params.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Parameters []ParameterDefinition `json:"parameters,omitempty"`
	// Singleton runs the task once per session even when several
	// repositories are listed (the dump is fanned out to all of them).
	// +optional
	Singleton bool `json:"singleton,omitempty"`
	// TargetMustBeStopped makes a restore with this task offline: the
	// operator pauses the target's owning operator, scales its StatefulSet
	// to 0, runs the task once per PVC with that PVC mounted at
	// /keepsake/target, then scales back up (docs/physical-mode.md).
	// Meaningful on restore tasks only.
	// +optional
	TargetMustBeStopped bool `json:"targetMustBeStopped,omitempty"`
	// MountsTargetVolume makes a backup with this task read the target's
	// files: the Job mounts, read-only at /keepsake/target (${targetDir}
	// in the Function, KEEPSAKE_TARGET_DIR in the driver's environment),
	// the PVC of pod 0 of the target's StatefulSet (a HyperbytedbCluster's
	// is the cluster's), and runs on that pod's node, where a ReadWriteOnce
	// volume is attached. The StatefulSet must have exactly one
	// volumeClaimTemplate; the session fails with reason
	// TargetVolumeUnavailable otherwise, or when the pod or its PVC is
	// missing (docs/physical-mode.md). Meaningful on backup tasks only.
	// +optional
	MountsTargetVolume bool `json:"mountsTargetVolume,omitempty"`
}

// ParameterDefinition documents one task parameter.
// +kubebuilder:validation:XValidation:rule="!(has(self.required) && self.required && has(self.default))",message="a required parameter cannot have a default"
type ParameterDefinition struct {
	// Name of the parameter, used as ${name} in the Function.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z_][A-Za-z0-9_]*$')",message="a parameter name must be letters, digits and underscores, not starting with a digit, e.g. authSecret"
	Name string `json:"name"`
	// Usage says what the parameter does.
	// +optional
	Usage string `json:"usage,omitempty"`
	// Required parameters must be set by the user.
	// +optional
	Required bool `json:"required,omitempty"`
	// Default is the value used when the user sets none.
	// +optional
	Default *string `json:"default,omitempty"`
	// Type is string (the default) or secret. The value of a secret
	// parameter names a Secret in the session's namespace: the Job mounts
	// it read-only and hands its directory to the driver as the credential
	// of the parameter's name; its contents never appear in args or env.
	// +kubebuilder:default=string
	// +optional
	Type ParameterType `json:"type,omitempty"`
}

// ParameterType says how a parameter's value reaches the driver.
// +kubebuilder:validation:Enum=string;secret
type ParameterType string

const (
	// ParameterString is passed as it is.
	ParameterString ParameterType = "string"
	// ParameterSecret names a Secret, mounted as files.
	ParameterSecret ParameterType = "secret"
)

// AddonStatus is the observed state of an Addon.
type AddonStatus struct {
	// Phase is Ready when every task's Function exists, NotReady otherwise.
	// +optional
	Phase CatalogPhase `json:"phase,omitempty"`
	// Conditions are the detailed state: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// CatalogPhase summarises an Addon's or Function's state.
// +kubebuilder:validation:Enum=Ready;NotReady
type CatalogPhase string

const (
	CatalogReady    CatalogPhase = "Ready"
	CatalogNotReady CatalogPhase = "NotReady"
)

// Condition types and reasons of Addons and Functions.
const (
	ConditionReady         = "Ready"
	ReasonFunctionsFound   = "FunctionsFound"
	ReasonFunctionNotFound = "FunctionNotFound"
	// ReasonFunctionAccepted is a Function's Ready reason once the
	// operator accepted it.
	ReasonFunctionAccepted = "FunctionAccepted"
)

// Addon is the catalog entry for one kind of database: the backup and
// restore tasks Keepsake can run for it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=keepsake
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Addon struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec lists the tasks.
	Spec AddonSpec `json:"spec"`
	// Status is the addon as the operator last saw it.
	// +optional
	Status AddonStatus `json:"status,omitempty"`
}

// AddonList is a list of Addon.
//
// +kubebuilder:object:root=true
type AddonList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Addon `json:"items"`
}

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RetentionPolicySpec says which Snapshots to keep. A Snapshot is kept when
// any rule keeps it (restic forget semantics); with no rule at all, every
// Snapshot is kept.
type RetentionPolicySpec struct {
	// MaxRetentionPeriod keeps every successful Snapshot younger than this,
	// written as restic's --keep-within duration: a sequence of <n>y, <n>m
	// (months), <n>d and <n>h, e.g. 30d or 1y6m.
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+y)?([0-9]+m)?([0-9]+d)?([0-9]+h)?$')",message="maxRetentionPeriod must be years, months, days and hours in that order, such as 30d, 1y6m or 12h"
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=32
	// +optional
	MaxRetentionPeriod string `json:"maxRetentionPeriod,omitempty"`
	// SuccessfulSnapshots keeps the newest successful Snapshots per period.
	// +optional
	SuccessfulSnapshots *SuccessfulSnapshotsKeepPolicy `json:"successfulSnapshots,omitempty"`
	// FailedSnapshots keeps the newest failed Snapshots (for diagnosis).
	// +optional
	FailedSnapshots *FailedSnapshotsKeepPolicy `json:"failedSnapshots,omitempty"`
	// UsagePolicy says which namespaces may use this policy.
	// +optional
	UsagePolicy *UsagePolicy `json:"usagePolicy,omitempty"`
	// Default marks this policy as the one used when a backend names none.
	// +optional
	Default bool `json:"default,omitempty"`
}

// SuccessfulSnapshotsKeepPolicy counts successful Snapshots to keep.
type SuccessfulSnapshotsKeepPolicy struct {
	// Last keeps the newest n Snapshots.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Last *int32 `json:"last,omitempty"`
	// Hourly keeps the newest Snapshot of each of the last n hours that have one.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Hourly *int32 `json:"hourly,omitempty"`
	// Daily keeps the newest Snapshot of each of the last n days that have one.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Daily *int32 `json:"daily,omitempty"`
	// Weekly keeps the newest Snapshot of each of the last n weeks that have one.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Weekly *int32 `json:"weekly,omitempty"`
	// Monthly keeps the newest Snapshot of each of the last n months that have one.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Monthly *int32 `json:"monthly,omitempty"`
	// Yearly keeps the newest Snapshot of each of the last n years that have one.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Yearly *int32 `json:"yearly,omitempty"`
}

// FailedSnapshotsKeepPolicy counts failed Snapshots to keep.
type FailedSnapshotsKeepPolicy struct {
	// Last keeps the newest n failed Snapshots.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=1
	// +optional
	Last *int32 `json:"last,omitempty"`
}

// RetentionPolicyPhase summarises a RetentionPolicy's state.
// +kubebuilder:validation:Enum=Ready;Invalid
type RetentionPolicyPhase string

const (
	RetentionPolicyReady   RetentionPolicyPhase = "Ready"
	RetentionPolicyInvalid RetentionPolicyPhase = "Invalid"
)

// Reasons of a RetentionPolicy's Ready condition.
const (
	// ReasonPolicyAccepted: the API server validated the policy and the
	// operator accepted it.
	ReasonPolicyAccepted = "PolicyAccepted"
)

// RetentionPolicyStatus is the observed state of a RetentionPolicy.
type RetentionPolicyStatus struct {
	// Phase is Ready or Invalid.
	// +optional
	Phase RetentionPolicyPhase `json:"phase,omitempty"`
	// Conditions are the detailed state: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RetentionPolicy says how many Snapshots of a repository to keep and for
// how long. It is applied after every successful backup.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rp,categories=keepsake
// +kubebuilder:printcolumn:name="Max-Age",type=string,JSONPath=`.spec.maxRetentionPeriod`,priority=1
// +kubebuilder:printcolumn:name="Last",type=integer,JSONPath=`.spec.successfulSnapshots.last`
// +kubebuilder:printcolumn:name="Default",type=boolean,JSONPath=`.spec.default`,priority=1
// +kubebuilder:printcolumn:name="Daily",type=integer,JSONPath=`.spec.successfulSnapshots.daily`,priority=1
// +kubebuilder:printcolumn:name="Weekly",type=integer,JSONPath=`.spec.successfulSnapshots.weekly`,priority=1
// +kubebuilder:printcolumn:name="Monthly",type=integer,JSONPath=`.spec.successfulSnapshots.monthly`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RetentionPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the retention rules.
	Spec RetentionPolicySpec `json:"spec"`
	// Status is the policy as the operator last saw it.
	// +optional
	Status RetentionPolicyStatus `json:"status,omitempty"`
}

// RetentionPolicyList is a list of RetentionPolicy.
//
// +kubebuilder:object:root=true
type RetentionPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RetentionPolicy `json:"items"`
}

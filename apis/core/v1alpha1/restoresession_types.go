package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// SnapshotLatest, as dataSource.snapshot, selects the newest successful
// Snapshot of the repository.
const SnapshotLatest = "latest"

// RestoreSessionSpec says what to restore, from where, and how.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: create a new RestoreSession"
type RestoreSessionSpec struct {
	// Target is the application to restore into.
	Target storagev1alpha1.TypedObjectReference `json:"target"`
	// DataSource is the Snapshot to restore.
	DataSource RestoreDataSource `json:"dataSource"`
	// Addon names the tasks that restore the data.
	Addon AddonInfo `json:"addon"`
	// RestoreTimeout fails the restore if it runs longer, e.g. 1h; 6h when
	// unset (DefaultRestoreTimeout).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="restoreTimeout must be a duration such as 30m or 2h (units h, m, s, ms)"
	// +optional
	RestoreTimeout *metav1.Duration `json:"restoreTimeout,omitempty"`
}

// RestoreDataSource is the Snapshot to restore and how to read it.
type RestoreDataSource struct {
	// Repository holding the Snapshot.
	Repository storagev1alpha1.ObjectReference `json:"repository"`
	// Snapshot is the name of a Snapshot, or "latest" for the newest
	// successful Snapshot of the repository.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:default=latest
	// +optional
	Snapshot string `json:"snapshot,omitempty"`
	// Components restores only these components of the Snapshot; all when
	// empty.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Components []string `json:"components,omitempty"`
	// EncryptionSecret overrides the Repository's encryption Secret.
	// +optional
	EncryptionSecret *storagev1alpha1.ObjectReference `json:"encryptionSecret,omitempty"`
	// RestoreTimestamp is reserved for point-in-time restore; not yet used.
	// +optional
	RestoreTimestamp *metav1.Time `json:"restoreTimestamp,omitempty"`
}

// RestoreSessionPhase is where a RestoreSession is in its life.
// +kubebuilder:validation:Enum=Pending;Running;ScalingDown;Restoring;ScalingUp;Succeeded;Failed;Invalid
type RestoreSessionPhase string

const (
	RestorePending     RestoreSessionPhase = "Pending"
	RestoreRunning     RestoreSessionPhase = "Running"
	RestoreScalingDown RestoreSessionPhase = "ScalingDown"
	RestoreRestoring   RestoreSessionPhase = "Restoring"
	RestoreScalingUp   RestoreSessionPhase = "ScalingUp"
	RestoreSucceeded   RestoreSessionPhase = "Succeeded"
	RestoreFailed      RestoreSessionPhase = "Failed"
	RestoreInvalid     RestoreSessionPhase = "Invalid"
)

// Condition types and reasons of a RestoreSession.
const (
	ConditionSnapshotResolved  = "SnapshotResolved"
	ConditionRestoreJobCreated = "RestoreJobCreated"
	ConditionRestoreSucceeded  = "RestoreSucceeded"

	ReasonSnapshotResolved   = "SnapshotResolved"
	ReasonSnapshotNotFound   = "SnapshotNotFound"
	ReasonSnapshotNotReady   = "SnapshotNotSucceeded"
	ReasonRepositoryNotFound = "RepositoryNotFound"
	ReasonComponentNotFound  = "ComponentNotFound"
	ReasonRestoreCompleted   = "RestoreCompleted"
	ReasonRestoreFailed      = "RestoreFailed"
	ReasonRestoreTimeout     = "RestoreTimeout"
)

// RestoreSessionStatus is the observed state of a RestoreSession.
type RestoreSessionStatus struct {
	// Phase is Pending, Running, ScalingDown, Restoring, ScalingUp,
	// Succeeded, Failed or Invalid. A logical restore goes Pending, Running;
	// an offline one Pending, ScalingDown, Restoring, ScalingUp.
	// +optional
	Phase RestoreSessionPhase `json:"phase,omitempty"`
	// Snapshot is the Snapshot being restored (resolved from "latest").
	// +optional
	Snapshot string `json:"snapshot,omitempty"`
	// Duration is how long the restore ran, e.g. 2m3s.
	// +optional
	Duration string `json:"duration,omitempty"`
	// TotalComponents is the number of components being restored.
	// +optional
	TotalComponents int32 `json:"totalComponents,omitempty"`
	// Restored sums what the drivers restored, e.g. "2 databases, 120000
	// points", once the restore succeeded; empty when the drivers do not
	// say (the script addon).
	// +optional
	Restored string `json:"restored,omitempty"`
	// Components holds the progress of each component, keyed by name.
	// +optional
	Components map[string]RestoreComponentStatus `json:"components,omitempty"`
	// Progress sums the components' transfers: how much is restored, how
	// fast, and of how much.
	// +optional
	Progress *storagev1alpha1.TransferProgress `json:"progress,omitempty"`
	// Job is the name of the restore Job.
	// +optional
	Job string `json:"job,omitempty"`
	// Offline is the progress of an offline restore (a restore task with
	// targetMustBeStopped): the StatefulSet stopped and its PVCs restored.
	// +optional
	Offline *OfflineRestoreStatus `json:"offline,omitempty"`
	// Conditions are the detailed state: TargetFound (False with
	// TargetNotFound or TargetNotAccessible ends the restore Invalid before
	// any Job), SnapshotResolved, RestoreJobCreated, RestoreSucceeded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RestoreComponentStatus is the progress of restoring one component.
type RestoreComponentStatus struct {
	// Phase of this component.
	// +optional
	Phase storagev1alpha1.ComponentPhase `json:"phase,omitempty"`
	// Progress is a human summary, e.g. "1.2 GiB of 3.4 GiB restored,
	// 12 MiB/s", or whose lock the restore waits for.
	// +optional
	Progress string `json:"progress,omitempty"`
	// Transfer is the component's progress in numbers, updated every few
	// seconds while it runs.
	// +optional
	Transfer *storagev1alpha1.TransferProgress `json:"transfer,omitempty"`
	// Duration is how long the component took, e.g. 40s.
	// +optional
	Duration string `json:"duration,omitempty"`
	// Error says why the component failed.
	// +optional
	Error string `json:"error,omitempty"`
	// Restored is what the driver says it loaded, e.g. 2 databases and
	// 120000 points; unset when the driver does not say.
	// +optional
	Restored *RestoredData `json:"restored,omitempty"`
}

// MaxRestoredObjects bounds RestoredData.Objects; ObjectCount still counts
// them all.
const MaxRestoredObjects = 64

// RestoredData is what a driver says a restore loaded, in its own terms.
type RestoredData struct {
	// ObjectKind names what Objects are, e.g. databases or tables.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	ObjectKind string `json:"objectKind,omitempty"`
	// ObjectCount is how many objects were restored.
	// +optional
	ObjectCount int64 `json:"objectCount,omitempty"`
	// Objects are the names of the objects restored, e.g. the databases;
	// the first MaxRestoredObjects (64) in name order.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Objects []string `json:"objects,omitempty"`
	// Items counts the items restored, by unit, e.g. points or rows.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=unit
	// +optional
	Items []RestoredItems `json:"items,omitempty"`
}

// RestoredItems is a count of restored items of one unit.
type RestoredItems struct {
	// Unit of the items, plural, e.g. points or rows.
	// +kubebuilder:validation:MaxLength=63
	Unit string `json:"unit"`
	// Count of items restored.
	Count int64 `json:"count"`
}

// RestoreSession restores a Snapshot into an application.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=restore,categories=keepsake
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.dataSource.repository.name`
// +kubebuilder:printcolumn:name="Snapshot",type=string,JSONPath=`.spec.dataSource.snapshot`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.target.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.duration`
// +kubebuilder:printcolumn:name="Restored",type=string,JSONPath=`.status.restored`,priority=1
// +kubebuilder:printcolumn:name="Resolved-Snapshot",type=string,JSONPath=`.status.snapshot`,priority=1
// +kubebuilder:printcolumn:name="Addon",type=string,JSONPath=`.spec.addon.name`,priority=1
// +kubebuilder:printcolumn:name="Done",type=string,JSONPath=`.status.progress.done`,priority=1
// +kubebuilder:printcolumn:name="Total",type=string,JSONPath=`.status.progress.total`,priority=1
// +kubebuilder:printcolumn:name="Rate",type=string,JSONPath=`.status.progress.rate`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RestoreSession struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is what to restore and how.
	Spec RestoreSessionSpec `json:"spec"`
	// Status is the restore's progress and result.
	// +optional
	Status RestoreSessionStatus `json:"status,omitempty"`
}

// RestoreSessionList is a list of RestoreSession.
//
// +kubebuilder:object:root=true
type RestoreSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RestoreSession `json:"items"`
}

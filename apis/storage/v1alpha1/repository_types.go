package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RepositoryDeletionPolicy says what happens to a restic repository's data
// when its Repository object is deleted. The words mean the same on every
// kind: Retain keeps the data, WipeOut deletes it.
// +kubebuilder:validation:Enum=Retain;WipeOut;Delete
type RepositoryDeletionPolicy string

const (
	// RepositoryRetain removes the Repository object and its Snapshot
	// objects but keeps the data in the storage.
	RepositoryRetain RepositoryDeletionPolicy = "Retain"
	// RepositoryWipeOut also deletes the restic repository from the storage.
	RepositoryWipeOut RepositoryDeletionPolicy = "WipeOut"
	// RepositoryDelete is the former name of RepositoryRetain, still
	// accepted and meaning the same: the data is kept.
	// Write RepositoryRetain in new manifests: on a Snapshot, Delete meant the
	// opposite.
	RepositoryDelete RepositoryDeletionPolicy = "Delete"
)

// RepositorySpec describes one encrypted restic repository inside a
// BackupStorage.
type RepositorySpec struct {
	// StorageRef is the BackupStorage holding this repository. It cannot
	// change: existing Snapshots live where it points.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="storageRef is immutable: existing Snapshots live in this storage; create a new Repository for another one"
	StorageRef ObjectReference `json:"storageRef"`
	// Path is the repository's directory below <prefix>/<namespace>/ in the
	// storage, in its one canonical form: relative, without empty, "." or
	// ".." segments and without a trailing slash, so that two spellings
	// never name one directory. It cannot change.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$')",message="path must be a relative path of letters, digits, dots, dashes and underscores, e.g. db/logical (no leading or trailing /, no //)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)[.][.]?(/|$)')",message="path must not contain . or .. segments: write the directory plainly, e.g. db/logical rather than ./db/logical"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="path is immutable: existing Snapshots live at this path; create a new Repository for another one"
	Path string `json:"path"`
	// EncryptionSecret is the Secret whose RESTIC_PASSWORD key encrypts the
	// repository. Losing it loses the backups. It cannot change: the
	// repository's key is in it.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="encryptionSecret is immutable: the repository is encrypted with the key it holds; create a new Repository for another one"
	EncryptionSecret ObjectReference `json:"encryptionSecret"`
	// AppRef is the application whose backups this repository holds.
	// +optional
	AppRef *TypedObjectReference `json:"appRef,omitempty"`
	// DeletionPolicy is Retain (the default: keep the data) or WipeOut
	// (delete it too). Delete, the former name of Retain, is still accepted
	// and keeps the data.
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy RepositoryDeletionPolicy `json:"deletionPolicy,omitempty"`
	// Paused stops new backups into this repository.
	// +optional
	Paused bool `json:"paused,omitempty"`
	// IntegrityCheck runs `restic check` on the repository on a schedule;
	// unset, only `kubectl keepsake check` (annotation
	// storage.keepsake.dev/check-requested) starts one.
	// +optional
	IntegrityCheck *IntegrityCheck `json:"integrityCheck,omitempty"`
}

// IntegrityCheck says when and how thoroughly a Repository is checked.
type IntegrityCheck struct {
	// Schedule is an interval such as 24h or 168h (measured from the last
	// check, or from the Repository's creation), or a cron expression
	// such as "0 3 * * 0" (UTC).
	// +kubebuilder:validation:MinLength=1
	Schedule string `json:"schedule"`
	// ReadDataSubset also reads and verifies part of the stored data
	// (restic check --read-data-subset): a percentage such as 5%, a part
	// such as 1/10, or a size such as 500M. Unset checks the structure
	// only, which reads no pack data.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?%|[0-9]+/[0-9]+|[0-9]+[KMGT]?)$`
	// +optional
	ReadDataSubset string `json:"readDataSubset,omitempty"`
}

// AnnotationCheckRequested on a Repository asks for an integrity check
// now; its value (any string, e.g. a time) identifies the request, and
// status.integrityCheck.request echoes it once a check answered it.
const AnnotationCheckRequested = "storage.keepsake.dev/check-requested"

// IntegrityResult is the outcome of one integrity check.
// +kubebuilder:validation:Enum=Passed;Failed;Error
type IntegrityResult string

const (
	// IntegrityPassed: restic check found no damage.
	IntegrityPassed IntegrityResult = "Passed"
	// IntegrityFailed: restic check found damage; the message says what.
	IntegrityFailed IntegrityResult = "Failed"
	// IntegrityError: the check could not run (storage unreachable, wrong
	// password, the Job failed); nothing is known about the data.
	IntegrityError IntegrityResult = "Error"
)

// IntegrityCheckStatus is the latest integrity check of a Repository.
type IntegrityCheckStatus struct {
	// LastCheckTime is when the latest check ended.
	// +optional
	LastCheckTime *metav1.Time `json:"lastCheckTime,omitempty"`
	// Result is Passed, Failed or Error.
	// +optional
	Result IntegrityResult `json:"result,omitempty"`
	// Message is restic's verdict, or why the check could not run.
	// +optional
	Message string `json:"message,omitempty"`
	// ReadDataSubset is the part of the data the check read, if any.
	// +optional
	ReadDataSubset string `json:"readDataSubset,omitempty"`
	// Job names the check Job's run that made it: <job>@<start time>.
	// +optional
	Job string `json:"job,omitempty"`
	// Request is the value of the check-requested annotation the check
	// answered, if one asked for it.
	// +optional
	Request string `json:"request,omitempty"`
	// NextCheckTime is when the schedule runs the next check.
	// +optional
	NextCheckTime *metav1.Time `json:"nextCheckTime,omitempty"`
}

// Integrity checks: a Job runs restic check and writes the outcome into
// status.integrityCheck (and status.integrity).
const (
	// ConditionIntegrityChecked says how the latest integrity check ended:
	// True when it passed, False when it found damage or could not run.
	ConditionIntegrityChecked = "IntegrityChecked"
	// ReasonIntegrityCheckPassed: the latest check found no damage.
	ReasonIntegrityCheckPassed = "IntegrityCheckPassed"
	// ReasonIntegrityCheckFailed: the latest check found damage (also the
	// reason of the Warning Event).
	ReasonIntegrityCheckFailed = "IntegrityCheckFailed"
	// ReasonIntegrityCheckError: the latest check could not run.
	ReasonIntegrityCheckError = "IntegrityCheckError"
	// ReasonInvalidCheckSchedule: spec.integrityCheck.schedule is neither
	// an interval nor a cron expression.
	ReasonInvalidCheckSchedule = "InvalidCheckSchedule"
)

// RepositoryPhase summarises a Repository's state.
// +kubebuilder:validation:Enum=Ready;NotReady
type RepositoryPhase string

const (
	// RepositoryReady means the repository can take backups.
	RepositoryReady RepositoryPhase = "Ready"
	// RepositoryNotReady means it cannot; the Ready condition says why.
	RepositoryNotReady RepositoryPhase = "NotReady"
)

// Reasons of a Repository's Ready condition.
const (
	ReasonRepositoryReady         = "RepositoryReady"
	ReasonStorageNotReady         = "StorageNotReady"
	ReasonStorageNotFound         = "StorageNotFound"
	ReasonStorageNotAllowed       = "StorageNotAllowed"
	ReasonEncryptionSecretMissing = "EncryptionSecretMissing"
	// ReasonLocationInUse: an older Repository, maybe through another
	// BackupStorage on the same bucket and prefix, already uses this
	// location.
	ReasonLocationInUse = "LocationInUse"
	// ReasonLocationOverlaps: an older Repository lives inside this one's
	// directory, or this one would live inside an older one's.
	ReasonLocationOverlaps = "LocationOverlaps"
)

// Repository sync: a Job lists the restic snapshots and creates the
// Snapshot objects that are missing.
const (
	// ConditionSynced says how the latest sync Job ended.
	ConditionSynced = "Synced"
	// ReasonSyncRunning: a sync Job is running.
	ReasonSyncRunning = "SyncRunning"
	// ReasonSyncSucceeded: the latest sync Job completed.
	ReasonSyncSucceeded = "SyncSucceeded"
	// ReasonSyncFailed: the latest sync Job failed; the next one runs at
	// the next sync interval.
	ReasonSyncFailed = "SyncFailed"
)

// RepositoryStatus is the observed state of a Repository.
type RepositoryStatus struct {
	// Phase is Ready or NotReady.
	// +optional
	Phase RepositoryPhase `json:"phase,omitempty"`
	// SnapshotCount is the number of Snapshots in the repository.
	// +optional
	SnapshotCount int32 `json:"snapshotCount,omitempty"`
	// Size is the repository's size in the storage, e.g. 754 KiB: what
	// the bucket holds (compressed, deduplicated), as `restic stats --mode
	// raw-data` reports it after each sync and integrity check.
	// +optional
	Size string `json:"size,omitempty"`
	// SizeBytes is Size in bytes.
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// LogicalSize is the sum of the sizes of the Repository's Succeeded
	// Snapshots, e.g. 23 MiB: what restoring all of them would yield.
	// +optional
	LogicalSize string `json:"logicalSize,omitempty"`
	// LogicalSizeBytes is LogicalSize in bytes.
	// +optional
	LogicalSizeBytes int64 `json:"logicalSizeBytes,omitempty"`
	// LastBackupTime is when the latest successful Snapshot was taken.
	// +optional
	LastBackupTime *metav1.Time `json:"lastBackupTime,omitempty"`
	// Integrity is the result of the latest `restic check`: true when it
	// found no damage, false when it found some; unset until one ran (a
	// check that could not run leaves it as it was).
	// +optional
	Integrity *bool `json:"integrity,omitempty"`
	// IntegrityCheck is the latest integrity check: when, its outcome and
	// restic's message.
	// +optional
	IntegrityCheck *IntegrityCheckStatus `json:"integrityCheck,omitempty"`
	// RecentSnapshots lists the newest Snapshots, newest first.
	// +kubebuilder:validation:MaxItems=10
	// +optional
	RecentSnapshots []SnapshotSummary `json:"recentSnapshots,omitempty"`
	// Conditions are the detailed state: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// SnapshotSummary is a short line about one Snapshot.
type SnapshotSummary struct {
	// Name of the Snapshot object.
	Name string `json:"name"`
	// Phase of the Snapshot.
	Phase SnapshotPhase `json:"phase"`
	// SnapshotTime is when the data was taken.
	// +optional
	SnapshotTime *metav1.Time `json:"snapshotTime,omitempty"`
	// Size of the Snapshot, e.g. 12 MiB.
	// +optional
	Size string `json:"size,omitempty"`
}

// Repository is an encrypted, deduplicated restic repository inside a
// BackupStorage. BackupConfigurations create them; users may create them to
// re-attach existing backups.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=repo,categories=keepsake
// +kubebuilder:printcolumn:name="Storage",type=string,JSONPath=`.spec.storageRef.name`
// +kubebuilder:printcolumn:name="Snapshots",type=integer,JSONPath=`.status.snapshotCount`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.status.size`
// +kubebuilder:printcolumn:name="Logical",type=string,JSONPath=`.status.logicalSize`,priority=1
// +kubebuilder:printcolumn:name="Integrity",type=string,JSONPath=`.status.integrityCheck.result`,priority=1
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Last-Backup",type=date,JSONPath=`.status.lastBackupTime`
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.spec.path`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Repository struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired repository.
	Spec RepositorySpec `json:"spec"`
	// Status is the repository as the operator last saw it.
	// +optional
	Status RepositoryStatus `json:"status,omitempty"`
}

// RepositoryList is a list of Repository.
//
// +kubebuilder:object:root=true
type RepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Repository `json:"items"`
}

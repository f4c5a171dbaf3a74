package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SnapshotType says whether a Snapshot was the first of its Repository or
// built on earlier ones. Every Snapshot holds a whole dump and restores on
// its own; what differs is what it uploaded.
// +kubebuilder:validation:Enum=Full;Incremental
type SnapshotType string

const (
	// SnapshotFull is the first Snapshot of its Repository: it uploaded
	// every byte of its dump.
	SnapshotFull SnapshotType = "Full"
	// SnapshotIncremental was taken into a Repository that already held a
	// Succeeded Snapshot (spec.parent): restic deduplicated its dump against
	// the repository and uploaded only what was new
	// (status.components[].dataAdded).
	SnapshotIncremental SnapshotType = "Incremental"
)

// SnapshotDeletionPolicy says what happens to the restic snapshot when its
// Snapshot object is deleted. The words mean the same on every kind:
// Retain keeps the data, WipeOut deletes it.
// +kubebuilder:validation:Enum=WipeOut;Retain;Delete
type SnapshotDeletionPolicy string

const (
	// SnapshotWipeOut forgets the restic snapshots when the object is
	// deleted.
	SnapshotWipeOut SnapshotDeletionPolicy = "WipeOut"
	// SnapshotRetain keeps the restic snapshots.
	SnapshotRetain SnapshotDeletionPolicy = "Retain"
	// SnapshotDelete is the former name of SnapshotWipeOut, still accepted
	// and meaning the same: the data is forgotten.
	// Write SnapshotWipeOut in new manifests: on a BackupStorage or a Repository,
	// Delete keeps the data.
	SnapshotDelete SnapshotDeletionPolicy = "Delete"
)

// ForgetsData reports whether deleting a Snapshot with this policy forgets
// its restic snapshots: WipeOut, and Delete, its former name.
func (p SnapshotDeletionPolicy) ForgetsData() bool {
	return p != SnapshotRetain
}

const (
	// FinalizerForget holds a Snapshot with deletionPolicy Delete until a
	// Job has forgotten its restic snapshots.
	FinalizerForget = "storage.keepsake.dev/forget"
	// FinalizerWipeOut holds a Repository or BackupStorage with
	// deletionPolicy WipeOut until its data is deleted from the storage.
	FinalizerWipeOut = "storage.keepsake.dev/wipe-out"
	// ConditionWipedOut, on a Repository or BackupStorage being deleted
	// with deletionPolicy WipeOut, is False after an attempt to delete its
	// data failed. It never turns True: the object is gone by then.
	ConditionWipedOut = "WipedOut"
	// ReasonWipedOut is the Normal Event of a wipe-out that deleted the data.
	ReasonWipedOut = "WipedOut"
	// ReasonWipeOutFailed is the Warning Event (and the condition's reason)
	// of an attempt that failed; another follows with backoff.
	ReasonWipeOutFailed = "WipeOutFailed"
	// ReasonDataLeft is the Warning Event of an object let go without
	// deleting its data, because the operator cannot or must not.
	ReasonDataLeft = "DataLeft"
	// AnnotationAllowDeleteLast, set to "true" on a Snapshot, lets it be
	// deleted (and its data forgotten) although it is the last Succeeded
	// Snapshot of its Repository. Without it, such a Snapshot being deleted
	// stays, with condition Forgotten False and reason
	// ReasonLastSnapshotProtected, until the annotation is set or a newer
	// Snapshot succeeds.
	AnnotationAllowDeleteLast = "keepsake.dev/allow-delete-last"
	// ReasonLastSnapshotProtected: the Snapshot being deleted is the last
	// Succeeded one of its Repository; its data is kept until the user
	// sets AnnotationAllowDeleteLast.
	ReasonLastSnapshotProtected = "LastSnapshotProtected"
	// AnnotationForgotten, set to "true", says the restic snapshots are
	// already gone (retention forgot them), so deleting the Snapshot needs
	// no forget Job.
	AnnotationForgotten = "storage.keepsake.dev/forgotten"
	// LabelDiscovered marks, with value "true", a Snapshot that repository
	// sync created for restic snapshots no Snapshot object held.
	LabelDiscovered = "storage.keepsake.dev/discovered"
	// AnnotationDiscoveredSession holds the backupsession= tag of the
	// restic snapshots of a discovered Snapshot: the BackupSession that
	// took them.
	AnnotationDiscoveredSession = "storage.keepsake.dev/discovered-session"
	// ConditionDiscovered is True on a Snapshot that repository sync
	// created, with reason ReasonFoundInRepository.
	ConditionDiscovered = "Discovered"
	// ReasonFoundInRepository: the restic snapshots were found in the
	// repository with no Snapshot object holding them.
	ReasonFoundInRepository = "FoundInRepository"
)

// SnapshotSpec identifies one backup taken into one Repository.
// +kubebuilder:validation:XValidation:rule="self.repository == oldSelf.repository && has(self.backupSession) == has(oldSelf.backupSession) && (!has(self.backupSession) || self.backupSession == oldSelf.backupSession)",message="repository and backupSession are immutable"
type SnapshotSpec struct {
	// Repository is the Repository, in this namespace, holding the data.
	// +kubebuilder:validation:MinLength=1
	Repository string `json:"repository"`
	// BackupSession is the BackupSession that took this Snapshot.
	// +optional
	BackupSession string `json:"backupSession,omitempty"`
	// Session is the session of the BackupConfiguration that ran.
	// +optional
	Session string `json:"session,omitempty"`
	// AppRef is the application the data was taken from.
	// +optional
	AppRef *TypedObjectReference `json:"appRef,omitempty"`
	// Addon is the Addon and backup task that took the data: verification
	// runs that task's Function image and driver to count the dump again.
	// Empty on Snapshots taken before it was recorded, and on discovered
	// ones; those are verified by their bytes only.
	// +optional
	Addon *AddonTaskReference `json:"addon,omitempty"`
	// Type is Full for the first Snapshot of a Repository, Incremental for
	// one taken when the Repository already held a Succeeded Snapshot
	// (Parent). Both restore on their own; an Incremental one uploaded only
	// what deduplication found new (status.components[].dataAdded).
	// +kubebuilder:default=Full
	// +optional
	Type SnapshotType `json:"type,omitempty"`
	// Parent is the Snapshot of the same Repository that was the newest
	// Succeeded one when this one was created; empty for a Full Snapshot.
	// It is a record, not a dependency: deleting the parent loses nothing
	// of this Snapshot.
	// +optional
	Parent string `json:"parent,omitempty"`
	// DeletionPolicy is WipeOut (the default: deleting this object forgets
	// its restic snapshots at once, and the space is freed at the next
	// prune) or Retain (deleting the object keeps the data; repository sync
	// finds it again). Delete, the former name of WipeOut, is still
	// accepted and forgets the data. The last Succeeded Snapshot of a
	// Repository is not forgotten unless annotated
	// keepsake.dev/allow-delete-last: "true".
	// +kubebuilder:default=WipeOut
	// +optional
	DeletionPolicy SnapshotDeletionPolicy `json:"deletionPolicy,omitempty"`
}

// AddonTaskReference names a task of a cluster-scoped Addon.
type AddonTaskReference struct {
	// Name of the Addon.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Task is the name of the Addon's backup task.
	// +kubebuilder:validation:MinLength=1
	Task string `json:"task"`
}

// SnapshotPhase is where a Snapshot is in its life.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type SnapshotPhase string

const (
	SnapshotPending   SnapshotPhase = "Pending"
	SnapshotRunning   SnapshotPhase = "Running"
	SnapshotSucceeded SnapshotPhase = "Succeeded"
	SnapshotFailed    SnapshotPhase = "Failed"
)

// ComponentPhase is where one component of a Snapshot or a restore is.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type ComponentPhase string

const (
	ComponentPending   ComponentPhase = "Pending"
	ComponentRunning   ComponentPhase = "Running"
	ComponentSucceeded ComponentPhase = "Succeeded"
	ComponentFailed    ComponentPhase = "Failed"
)

// VerificationStatus is the result of verifying a Snapshot can be restored.
// +kubebuilder:validation:Enum=NotVerified;Verified;VerificationFailed
type VerificationStatus string

const (
	NotVerified        VerificationStatus = "NotVerified"
	Verified           VerificationStatus = "Verified"
	VerificationFailed VerificationStatus = "VerificationFailed"
)

// Condition types and reasons of a Snapshot.
const (
	// ConditionBackupCompleted is True once every component succeeded and
	// False with a reason once one failed.
	ConditionBackupCompleted = "BackupCompleted"

	ReasonDumpFailed      = "DumpFailed"
	ReasonUploadFailed    = "UploadFailed"
	ReasonBackupSucceeded = "BackupSucceeded"

	// ConditionWaitingForLock is True while a Job working on the Snapshot
	// (its backup, or the forget of a Snapshot being deleted) waits for a
	// repository lock another restic holds; the message names the holder
	// (a pod) and since when. It goes away once the Job's result is in.
	ConditionWaitingForLock = "WaitingForLock"
	// ReasonRepositoryLocked is the reason of ConditionWaitingForLock.
	ReasonRepositoryLocked = "RepositoryLocked"

	// ConditionStorageUnreachable is True while restic, working for a Job
	// on the Snapshot (or RestoreSession), retries storage requests that
	// failed; the message is restic's last error and since when. It goes
	// away when a retried request succeeds or the Job's result is in.
	ConditionStorageUnreachable = "StorageUnreachable"
	// ReasonStorageRetrying is the reason of ConditionStorageUnreachable.
	ReasonStorageRetrying = "StorageRetrying"

	// ConditionVerified says how the latest verification of the Snapshot
	// ended: True when every component was read back whole and matched
	// what the backup recorded.
	ConditionVerified = "Verified"
	// ReasonVerificationPassed: the latest verification passed.
	ReasonVerificationPassed = "VerificationPassed"
	// ReasonVerificationFailed: the data could not be read back, or did not
	// match what the backup recorded (also the Warning Event's reason).
	ReasonVerificationFailed = "VerificationFailed"
)

// AnnotationVerify on a Snapshot asks for its verification: a Job reads
// every component back from the repository and compares it with what the
// backup recorded. Its value (any string) identifies the request;
// status.verification.request echoes it once a verification answered.
const AnnotationVerify = "keepsake.dev/verify"

// SnapshotVerification is the latest verification of a Snapshot.
type SnapshotVerification struct {
	// LastVerifyTime is when it ended.
	// +optional
	LastVerifyTime *metav1.Time `json:"lastVerifyTime,omitempty"`
	// Message says what was read and compared, or what did not match.
	// +optional
	Message string `json:"message,omitempty"`
	// Request is the value of the keepsake.dev/verify annotation it
	// answered, or "verifyEvery" when the BackupConfiguration asked.
	// +optional
	Request string `json:"request,omitempty"`
	// Job names the verify Job's run: <job>@<start time>.
	// +optional
	Job string `json:"job,omitempty"`
}

// SnapshotStatus is the observed state of a Snapshot.
type SnapshotStatus struct {
	// Phase is Pending, Running, Succeeded or Failed.
	// +optional
	Phase SnapshotPhase `json:"phase,omitempty"`
	// SnapshotTime is when the data was taken.
	// +optional
	SnapshotTime *metav1.Time `json:"snapshotTime,omitempty"`
	// Size is the size of the data, e.g. 1.2 GiB.
	// +optional
	Size string `json:"size,omitempty"`
	// SizeBytes is Size in bytes.
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// TotalComponents is the number of components in this Snapshot.
	// +optional
	TotalComponents int32 `json:"totalComponents,omitempty"`
	// Components holds the result of each component (e.g. one database dump),
	// keyed by component name.
	// +optional
	Components map[string]ComponentStatus `json:"components,omitempty"`
	// Integrity is true once the stored data was checked and found whole.
	// +optional
	Integrity *bool `json:"integrity,omitempty"`
	// VerificationStatus says whether this Snapshot was read back and found
	// to match what the backup recorded: Verified or VerificationFailed;
	// unset (or NotVerified) until a verification ran.
	// +optional
	VerificationStatus VerificationStatus `json:"verificationStatus,omitempty"`
	// Verification is the latest verification: when, and what it found.
	// +optional
	Verification *SnapshotVerification `json:"verification,omitempty"`
	// Progress sums the components' progress: while the backup runs, how
	// much is read and how fast; once it ended, the totals.
	// +optional
	Progress *TransferProgress `json:"progress,omitempty"`
	// Conditions are the detailed state: BackupCompleted; on a Snapshot
	// being deleted, Forgotten (False while a Job forgets its data, after
	// that Job failed, or with reason LastSnapshotProtected).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ComponentStatus is the result of one component of a Snapshot.
type ComponentStatus struct {
	// Phase of this component.
	// +optional
	Phase ComponentPhase `json:"phase,omitempty"`
	// ResticSnapshotID is the restic snapshot holding this component.
	// +optional
	ResticSnapshotID string `json:"resticSnapshotID,omitempty"`
	// Path is the file name of the component inside the restic snapshot.
	// +optional
	Path string `json:"path,omitempty"`
	// Size of the component's data, e.g. 12 MiB.
	// +optional
	Size string `json:"size,omitempty"`
	// SizeBytes is Size in bytes.
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// DataAdded is how much new data this backup added to the repository
	// after deduplication, e.g. 1.1 MiB.
	// +optional
	DataAdded string `json:"dataAdded,omitempty"`
	// Duration is how long the component took, e.g. 12.5s.
	// +optional
	Duration string `json:"duration,omitempty"`
	// Error says why the component failed.
	// +optional
	Error string `json:"error,omitempty"`
	// Driver names the driver and version that produced the data.
	// +optional
	Driver string `json:"driver,omitempty"`
	// Counts are what the driver said the dump holds, by unit, e.g.
	// points and series for HyperbyteDB. Verification counts the stored
	// dump again with the driver and compares; empty when the driver
	// counts nothing (or predates counting), and then only the bytes are
	// verified.
	// +optional
	Counts map[string]int64 `json:"counts,omitempty"`
	// Progress is how far the component's backup has got, updated every
	// few seconds while it runs.
	// +optional
	Progress *TransferProgress `json:"progress,omitempty"`
}

// TransferProgress is how far a running backup or restore has got: the
// bytes of the dump read (backup) or written into the application
// (restore), the rate, and the total where it is known. The numbers come
// with a human form for kubectl's columns.
type TransferProgress struct {
	// BytesDone is how much of the dump is processed.
	BytesDone int64 `json:"bytesDone"`
	// Done is BytesDone for people, e.g. 1.2 GiB.
	// +optional
	Done string `json:"done,omitempty"`
	// BytesPerSecond is the average rate since the transfer started.
	// +optional
	BytesPerSecond int64 `json:"bytesPerSecond,omitempty"`
	// Rate is BytesPerSecond for people, e.g. 12 MiB/s.
	// +optional
	Rate string `json:"rate,omitempty"`
	// TotalBytes is the size of the whole dump, when known: a restore's is
	// the Snapshot's size; a backup's is not known before it ends, so
	// while it runs this is the size of the same component in the parent
	// Snapshot, with TotalEstimated true. Zero when nothing is known.
	// +optional
	TotalBytes int64 `json:"totalBytes,omitempty"`
	// TotalEstimated is true when TotalBytes is an estimate (the parent
	// Snapshot's size): the dump may turn out larger or smaller.
	// +optional
	TotalEstimated bool `json:"totalEstimated,omitempty"`
	// Total is TotalBytes for people, e.g. "3.4 GiB", or "3.4 GiB
	// (estimate)".
	// +optional
	Total string `json:"total,omitempty"`
	// UpdateTime is when these numbers were taken.
	// +optional
	UpdateTime *metav1.Time `json:"updateTime,omitempty"`
}

// Snapshot is one backup of an application taken into one Repository.
// Deleting it with deletionPolicy WipeOut (the default) forgets its data in
// the repository; the last Succeeded Snapshot of a Repository is kept
// until it is annotated keepsake.dev/allow-delete-last: "true".
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=snap,categories=keepsake
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository`
// +kubebuilder:printcolumn:name="Session",type=string,JSONPath=`.spec.session`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Parent",type=string,JSONPath=`.spec.parent`,priority=1
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.status.size`
// +kubebuilder:printcolumn:name="Snapshot-Time",type=date,JSONPath=`.status.snapshotTime`
// +kubebuilder:printcolumn:name="Backup-Session",type=string,JSONPath=`.spec.backupSession`,priority=1
// +kubebuilder:printcolumn:name="Done",type=string,JSONPath=`.status.progress.done`,priority=1
// +kubebuilder:printcolumn:name="Total",type=string,JSONPath=`.status.progress.total`,priority=1
// +kubebuilder:printcolumn:name="Rate",type=string,JSONPath=`.status.progress.rate`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Snapshot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec identifies the backup.
	Spec SnapshotSpec `json:"spec"`
	// Status is the result of the backup.
	// +optional
	Status SnapshotStatus `json:"status,omitempty"`
}

// SnapshotList is a list of Snapshot.
//
// +kubebuilder:object:root=true
type SnapshotList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Snapshot `json:"items"`
}

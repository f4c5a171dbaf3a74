package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// BackupSessionSpec names the session of a BackupConfiguration to run once.
// +kubebuilder:validation:XValidation:rule="self.backupConfiguration == oldSelf.backupConfiguration && self.session == oldSelf.session",message="backupConfiguration and session are immutable"
type BackupSessionSpec struct {
	// BackupConfiguration, in this namespace, whose session runs.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	BackupConfiguration string `json:"backupConfiguration"`
	// Session is the name of the session in the BackupConfiguration.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	Session string `json:"session"`
	// RetryLeft is how many retries remain after this run; set by the
	// operator when it retries a failed run.
	// +kubebuilder:validation:Minimum=0
	// +optional
	RetryLeft int32 `json:"retryLeft,omitempty"`
}

// BackupSessionPhase is where a BackupSession is in its life.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Skipped
type BackupSessionPhase string

const (
	BackupSessionPending   BackupSessionPhase = "Pending"
	BackupSessionRunning   BackupSessionPhase = "Running"
	BackupSessionSucceeded BackupSessionPhase = "Succeeded"
	BackupSessionFailed    BackupSessionPhase = "Failed"
	BackupSessionSkipped   BackupSessionPhase = "Skipped"
)

// Condition types of a BackupSession.
const (
	ConditionSnapshotsEnsured = "SnapshotsEnsured"
	ConditionBackupJobCreated = "BackupJobCreated"
	ConditionBackupSucceeded  = "BackupSucceeded"
	ConditionRetentionApplied = "RetentionApplied"
	ConditionDeadlineExceeded = "DeadlineExceeded"
	ConditionSessionSkipped   = "Skipped"
)

// Reasons of a BackupSession's conditions.
const (
	ReasonSnapshotsCreated  = "SnapshotsCreated"
	ReasonJobCreated        = "JobCreated"
	ReasonJobCreationFailed = "JobCreationFailed"
	ReasonBackupCompleted   = "BackupCompleted"
	ReasonBackupFailed      = "BackupFailed"
	ReasonBackupTimeout     = "BackupTimeout"
	// ReasonStorageUnreachable: the session's Job reached its deadline
	// while restic was retrying requests the storage did not answer; the
	// message carries restic's last error. Also a RestoreSession's reason.
	ReasonStorageUnreachable     = "StorageUnreachable"
	ReasonConfigurationNotFound  = "BackupConfigurationNotFound"
	ReasonSessionNotFound        = "SessionNotFound"
	ReasonConfigurationNotReady  = "BackupConfigurationNotReady"
	ReasonPreviousSessionRunning = "PreviousSessionRunning"
	// ReasonConfigurationPaused: the BackupConfiguration is paused, so
	// the session is Skipped instead of waiting.
	ReasonConfigurationPaused = "BackupConfigurationPaused"
	ReasonRetentionSucceeded  = "RetentionSucceeded"
	ReasonRetentionFailed     = "RetentionFailed"
	ReasonRetentionRunning    = "RetentionRunning"
	// ReasonRetentionJobCreated is the Event of a retention Job created.
	ReasonRetentionJobCreated = "RetentionJobCreated"
	// ReasonResultMissing: the Job ended without recording a snapshot
	// for every repository, so the backup cannot be trusted.
	ReasonResultMissing = "ResultMissing"
	// ReasonTargetVolumeUnavailable: a backup task that mounts the
	// target's volume (mountsTargetVolume) found none to mount: the
	// target is no StatefulSet with exactly one volumeClaimTemplate (nor
	// a HyperbytedbCluster of one), its pod 0 is missing or not on a node,
	// its PVC is missing, or it is in another namespace than the session.
	ReasonTargetVolumeUnavailable = "TargetVolumeUnavailable"
)

// BackupSessionStatus is the observed state of a BackupSession.
type BackupSessionStatus struct {
	// Phase is Pending, Running, Succeeded, Failed or Skipped.
	// +optional
	Phase BackupSessionPhase `json:"phase,omitempty"`
	// StartTime is when the backup Job started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// CompletionTime is when the session ended.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Duration is how long the session ran, e.g. 1m12s.
	// +optional
	Duration string `json:"duration,omitempty"`
	// TotalSnapshots is the number of Snapshots this session takes.
	// +optional
	TotalSnapshots int32 `json:"totalSnapshots,omitempty"`
	// Snapshots lists the Snapshots this session takes, one per repository.
	// +optional
	Snapshots []SnapshotReference `json:"snapshots,omitempty"`
	// Retention lists the result of applying retention to each repository.
	// +optional
	Retention []RetentionResult `json:"retention,omitempty"`
	// Job is the name of the backup Job.
	// +optional
	Job string `json:"job,omitempty"`
	// NextRetry is when a failed session is retried.
	// +optional
	NextRetry *metav1.Time `json:"nextRetry,omitempty"`
	// Conditions are the detailed state: SnapshotsEnsured, BackupJobCreated,
	// BackupSucceeded, RetentionApplied, DeadlineExceeded, Skipped.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// SnapshotReference is a Snapshot taken by a BackupSession.
type SnapshotReference struct {
	// Name of the Snapshot.
	Name string `json:"name"`
	// Repository the Snapshot is taken into.
	Repository string `json:"repository"`
	// Phase of the Snapshot.
	// +optional
	Phase storagev1alpha1.SnapshotPhase `json:"phase,omitempty"`
}

// RetentionResult is the outcome of applying a RetentionPolicy to one
// repository after a backup.
type RetentionResult struct {
	// Repository the policy was applied to.
	Repository string `json:"repository"`
	// RetentionPolicy that was applied.
	// +optional
	RetentionPolicy string `json:"retentionPolicy,omitempty"`
	// Phase is Running, Succeeded or Failed.
	// +optional
	Phase string `json:"phase,omitempty"`
	// Error says why applying the policy failed.
	// +optional
	Error string `json:"error,omitempty"`
}

// BackupSession is one run of one session of a BackupConfiguration. The
// session's CronJob creates one on schedule; users create one to back up now.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bks,categories=keepsake
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="name must be at most 63 characters: it labels the session's Job and Snapshots"
// +kubebuilder:printcolumn:name="Configuration",type=string,JSONPath=`.spec.backupConfiguration`
// +kubebuilder:printcolumn:name="Session",type=string,JSONPath=`.spec.session`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.duration`
// +kubebuilder:printcolumn:name="Snapshots",type=integer,JSONPath=`.status.totalSnapshots`,priority=1
// +kubebuilder:printcolumn:name="Job",type=string,JSONPath=`.status.job`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupSession struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec names the session to run.
	Spec BackupSessionSpec `json:"spec"`
	// Status is the run's progress and result.
	// +optional
	Status BackupSessionStatus `json:"status,omitempty"`
}

// BackupSessionList is a list of BackupSession.
//
// +kubebuilder:object:root=true
type BackupSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupSession `json:"items"`
}

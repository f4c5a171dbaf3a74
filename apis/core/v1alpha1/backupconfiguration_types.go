package v1alpha1

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// BackupConfigurationSpec says what to back up, where, and when.
// +kubebuilder:validation:XValidation:rule="self.sessions.all(s, s.repositories.all(r, self.backends.exists(b, b.name == r.backend)))",message="every session repository must name a backend listed in spec.backends"
type BackupConfigurationSpec struct {
	// Target is the application to back up, e.g. a HyperbytedbCluster, a
	// StatefulSet or a Service; it may live in another namespace.
	Target storagev1alpha1.TypedObjectReference `json:"target"`
	// Backends are the storages backups go to, each with its retention.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	Backends []BackendReference `json:"backends"`
	// Sessions are the backups to take, each on its own schedule.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	Sessions []Session `json:"sessions"`
	// Paused stops every session from being scheduled; running backups finish.
	// +optional
	Paused bool `json:"paused,omitempty"`
	// VerifyEvery asks for the verification of every Nth successful backup
	// of this configuration in each repository (1: every backup): a Job
	// reads the Snapshot back and compares it with what the backup
	// recorded (see docs/verification.md). Unset verifies none unless a
	// Snapshot is annotated keepsake.dev/verify.
	// +kubebuilder:validation:Minimum=1
	// +optional
	VerifyEvery *int32 `json:"verifyEvery,omitempty"`
}

// BackendReference is a storage that sessions may back up into.
type BackendReference struct {
	// Name of the backend, referred to by session repositories.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="a backend name must be lower-case letters, digits and dashes, starting and ending with a letter or digit, e.g. main"
	Name string `json:"name"`
	// StorageRef is the BackupStorage to use.
	StorageRef storagev1alpha1.ObjectReference `json:"storageRef"`
	// RetentionPolicy decides which Snapshots are kept after each backup.
	// Without one, every Snapshot is kept.
	// +optional
	RetentionPolicy *storagev1alpha1.ObjectReference `json:"retentionPolicy,omitempty"`
}

// Session is one scheduled backup of the target.
type Session struct {
	// Name of the session, e.g. frequent-backup.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="a session name must be lower-case letters, digits and dashes, starting and ending with a letter or digit, e.g. hourly"
	Name string `json:"name"`
	// Scheduler says when the session runs.
	Scheduler SchedulerSpec `json:"scheduler"`
	// Addon names the tasks that take the backup.
	Addon AddonInfo `json:"addon"`
	// Repositories receive the backup; each is created if absent.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	Repositories []RepositoryInfo `json:"repositories"`
	// BackupTimeout fails a BackupSession still running after this long,
	// e.g. 30m or 2h; 6h when unset (DefaultBackupTimeout).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="backupTimeout must be a duration such as 30m or 6h (units h, m, s, ms)"
	// +optional
	BackupTimeout *metav1.Duration `json:"backupTimeout,omitempty"`
	// RetryConfig retries a failed BackupSession.
	// +optional
	RetryConfig *RetryConfig `json:"retryConfig,omitempty"`
	// SessionHistoryLimit is how many finished BackupSessions of this
	// session to keep.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=3
	// +optional
	SessionHistoryLimit int32 `json:"sessionHistoryLimit,omitempty"`
}

// SchedulerSpec is the schedule of a session, run by a CronJob.
type SchedulerSpec struct {
	// Schedule in cron syntax (five fields, or a macro such as @daily or
	// @every 1h30m), e.g. "0 2 * * *" for every day at 02:00. Each field is
	// checked against its range (minute 0-59, hour 0-23, day of month 1-31,
	// month 1-12 or JAN-DEC, day of week 0-6 or SUN-SAT), steps included:
	// */61 in the minute field is refused, not run hourly.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every [0-9hms.]+|[0-9A-Za-z*?/,-]+( +[0-9A-Za-z*?/,-]+){4})$')",message="schedule must be five cron fields (minute hour day-of-month month day-of-week) or a macro such as @daily"
	// +kubebuilder:validation:XValidation:rule="self.startsWith('@') || !self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every [0-9hms.]+|[0-9A-Za-z*?/,-]+( +[0-9A-Za-z*?/,-]+){4})$') || self.matches('^([*?]|[0-5]?[0-9](-[0-5]?[0-9])?)(/([1-9]|[1-5][0-9]))?(,([*?]|[0-5]?[0-9](-[0-5]?[0-9])?)(/([1-9]|[1-5][0-9]))?)*( |$)')",message="the minute field (the first) must be * or 0-59, as values, ranges (a-b), lists (a,b) and steps (*/n) with n at most 59, e.g. */15"
	// +kubebuilder:validation:XValidation:rule="self.startsWith('@') || !self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every [0-9hms.]+|[0-9A-Za-z*?/,-]+( +[0-9A-Za-z*?/,-]+){4})$') || self.matches('^[^ ]+ +([*?]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/([1-9]|1[0-9]|2[0-3]))?(,([*?]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/([1-9]|1[0-9]|2[0-3]))?)*( |$)')",message="the hour field (the second) must be * or 0-23, as values, ranges (a-b), lists (a,b) and steps (*/n) with n at most 23, e.g. 2 or 8-18"
	// +kubebuilder:validation:XValidation:rule="self.startsWith('@') || !self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every [0-9hms.]+|[0-9A-Za-z*?/,-]+( +[0-9A-Za-z*?/,-]+){4})$') || self.matches('^[^ ]+ +[^ ]+ +([*?]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/([1-9]|[12][0-9]|3[01]))?(,([*?]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/([1-9]|[12][0-9]|3[01]))?)*( |$)')",message="the day of month field (the third) must be * or 1-31, as values, ranges (a-b), lists (a,b) and steps (*/n) with n at most 31, e.g. 1,15"
	// +kubebuilder:validation:XValidation:rule="self.startsWith('@') || !self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every [0-9hms.]+|[0-9A-Za-z*?/,-]+( +[0-9A-Za-z*?/,-]+){4})$') || self.matches('^[^ ]+ +[^ ]+ +[^ ]+ +([*?]|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/([1-9]|1[0-2]))?(,([*?]|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/([1-9]|1[0-2]))?)*( |$)')",message="the month field (the fourth) must be * or 1-12 or JAN-DEC, as values, ranges (a-b), lists (a,b) and steps (*/n) with n at most 12, e.g. */3 or JAN,JUL"
	// +kubebuilder:validation:XValidation:rule="self.startsWith('@') || !self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every [0-9hms.]+|[0-9A-Za-z*?/,-]+( +[0-9A-Za-z*?/,-]+){4})$') || self.matches('^[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +([*?]|(0?[0-6]|(?i:sun|mon|tue|wed|thu|fri|sat))(-(0?[0-6]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-6])?(,([*?]|(0?[0-6]|(?i:sun|mon|tue|wed|thu|fri|sat))(-(0?[0-6]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-6])?)*( |$)')",message="the day of week field (the fifth) must be * or 0-6 or SUN-SAT, as values, ranges (a-b), lists (a,b) and steps (*/n) with n at most 6, e.g. 1-5 or MON-FRI"
	Schedule string `json:"schedule"`
	// TimeZone of the schedule, an IANA name such as Europe/Paris; the
	// kube-controller-manager's time zone when empty.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	TimeZone *string `json:"timeZone,omitempty"`
	// Suspend stops scheduling this session; running backups finish.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// ConcurrencyPolicy is what to do when a run is due while the previous
	// one still runs: Forbid (skip the new one), Allow, or Replace.
	// +kubebuilder:validation:Enum=Allow;Forbid;Replace
	// +kubebuilder:default=Forbid
	// +optional
	ConcurrencyPolicy batchv1.ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`
	// StartingDeadlineSeconds skips a run that could not start within this
	// many seconds of its time.
	// +kubebuilder:validation:Minimum=0
	// +optional
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`
	// SuccessfulJobsHistoryLimit is how many finished trigger Jobs to keep.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=1
	// +optional
	SuccessfulJobsHistoryLimit *int32 `json:"successfulJobsHistoryLimit,omitempty"`
	// FailedJobsHistoryLimit is how many failed trigger Jobs to keep.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=1
	// +optional
	FailedJobsHistoryLimit *int32 `json:"failedJobsHistoryLimit,omitempty"`
}

// RepositoryInfo is a Repository a session backs up into.
type RepositoryInfo struct {
	// Name of the Repository object, created in this namespace if absent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="a repository name must be lower-case letters, digits and dashes, starting and ending with a letter or digit, e.g. db-logical"
	Name string `json:"name"`
	// Backend is the name of an entry of spec.backends.
	// +kubebuilder:validation:MinLength=1
	Backend string `json:"backend"`
	// Directory of the repository inside the backend, below its
	// <prefix>/<namespace>/.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$')",message="directory must be a relative path of letters, digits, dots, dashes and underscores, e.g. db/logical (no leading or trailing /, no //)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)[.][.]?(/|$)')",message="directory must not contain . or .. segments: write it plainly, e.g. db/logical rather than ./db/logical"
	Directory string `json:"directory"`
	// EncryptionSecret is the Secret whose RESTIC_PASSWORD key encrypts the
	// repository.
	EncryptionSecret storagev1alpha1.ObjectReference `json:"encryptionSecret"`
}

// RetryConfig retries failed backups.
type RetryConfig struct {
	// MaxRetry is how many times a failed BackupSession is retried.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	MaxRetry int32 `json:"maxRetry"`
	// Delay between a failure and the retry, e.g. 5m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="retryConfig.delay must be a duration such as 1m or 90s (units h, m, s, ms)"
	// +kubebuilder:default="1m"
	// +optional
	Delay metav1.Duration `json:"delay,omitempty"`
}

// BackupConfigurationPhase summarises a BackupConfiguration's state.
// +kubebuilder:validation:Enum=Ready;NotReady;Invalid;Paused
type BackupConfigurationPhase string

const (
	// BackupConfigurationReady means every session is scheduled.
	BackupConfigurationReady BackupConfigurationPhase = "Ready"
	// BackupConfigurationNotReady means something it needs is missing for
	// now (storage not ready, target not found); it retries.
	BackupConfigurationNotReady BackupConfigurationPhase = "NotReady"
	// BackupConfigurationInvalid means the spec itself must change.
	BackupConfigurationInvalid BackupConfigurationPhase = "Invalid"
	// BackupConfigurationPaused means spec.paused is set.
	BackupConfigurationPaused BackupConfigurationPhase = "Paused"
)

// Condition types of a BackupConfiguration; ConditionReady sums them up.
const (
	ConditionReady           = "Ready"
	ConditionTargetFound     = "TargetFound"
	ConditionStorageReady    = "StorageReady"
	ConditionAddonResolved   = "AddonResolved"
	ConditionScheduleReady   = "ScheduleReady"
	ConditionRepositoryReady = "RepositoriesReady"
	// ConditionSecretsFound is True when every Secret the configuration
	// names (each repository's encryptionSecret, each secret-typed task
	// parameter) exists with the keys it needs.
	ConditionSecretsFound = "SecretsFound"
)

// Reasons of a BackupConfiguration's conditions.
const (
	ReasonTargetFound              = "TargetFound"
	ReasonTargetNotFound           = "TargetNotFound"
	ReasonTargetNotAccessible      = "TargetNotAccessible"
	ReasonStorageReady             = "StorageReady"
	ReasonStorageNotReady          = "StorageNotReady"
	ReasonStorageNotFound          = "StorageNotFound"
	ReasonStorageNotAllowed        = "StorageNotAllowed"
	ReasonRetentionPolicyNotFound  = "RetentionPolicyNotFound"
	ReasonAddonResolved            = "AddonResolved"
	ReasonAddonNotFound            = "AddonNotFound"
	ReasonTaskNotFound             = "TaskNotFound"
	ReasonFunctionNotFound         = "FunctionNotFound"
	ReasonMissingRequiredParameter = "MissingRequiredParameter"
	ReasonUnknownParameter         = "UnknownParameter"
	ReasonScheduleReady            = "CronJobsReady"
	ReasonInvalidSchedule          = "InvalidSchedule"
	ReasonInvalidTimeZone          = "InvalidTimeZone"
	ReasonRepositoriesReady        = "RepositoriesReady"
	ReasonRepositoryConflict       = "RepositoryConflict"
	// ReasonRepositoryCreated is the Event of a Repository created.
	ReasonRepositoryCreated = "RepositoryCreated"
	// ReasonRepositoryNotReady: a Repository the configuration backs up
	// into is NotReady; the message carries the Repository's own reason.
	ReasonRepositoryNotReady = "RepositoryNotReady"
	// ReasonRepositoryPending: a Repository was just created and the
	// operator has not checked it yet. Not a problem: it passes in seconds.
	ReasonRepositoryPending = "RepositoryPending"
	// ReasonSecretsFound: every Secret named exists with its keys.
	ReasonSecretsFound = "SecretsFound"
	// ReasonSecretNotFound: a Secret the configuration names does not
	// exist; the message names it, e.g. "Secret team-a/db-auth not found".
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretKeyMissing: a Secret exists but lacks a key it needs,
	// e.g. "Secret team-a/restic-password has no key RESTIC_PASSWORD".
	ReasonSecretKeyMissing = "SecretKeyMissing"
	ReasonPaused           = "Paused"
	ReasonAllReady         = "AllReady"
)

// BackupConfigurationStatus is the observed state of a BackupConfiguration.
type BackupConfigurationStatus struct {
	// Phase is Ready, NotReady, Invalid or Paused; the conditions say why.
	// +optional
	Phase BackupConfigurationPhase `json:"phase,omitempty"`
	// Sessions holds the state of each session.
	// +listType=map
	// +listMapKey=name
	// +optional
	Sessions []SessionStatus `json:"sessions,omitempty"`
	// Conditions are the detailed state: Ready, TargetFound, StorageReady,
	// AddonResolved, SecretsFound, ScheduleReady, RepositoriesReady. Ready
	// is True only when every other one is, including every Repository
	// being Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// SessionStatus is the state of one session.
type SessionStatus struct {
	// Name of the session.
	Name string `json:"name"`
	// NextSchedule is when the session runs next.
	// +optional
	NextSchedule *metav1.Time `json:"nextSchedule,omitempty"`
	// LastSuccessfulBackup is when the latest successful BackupSession ended.
	// +optional
	LastSuccessfulBackup *metav1.Time `json:"lastSuccessfulBackup,omitempty"`
	// RecentBackups lists the newest BackupSessions, newest first.
	// +kubebuilder:validation:MaxItems=10
	// +optional
	RecentBackups []BackupSessionSummary `json:"recentBackups,omitempty"`
}

// BackupSessionSummary is a short line about one BackupSession.
type BackupSessionSummary struct {
	// Name of the BackupSession.
	Name string `json:"name"`
	// Phase of the BackupSession.
	Phase BackupSessionPhase `json:"phase"`
	// StartTime is when it was created.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// Duration is how long it ran, e.g. 42s.
	// +optional
	Duration string `json:"duration,omitempty"`
}

// BackupConfiguration says what to back up (target), where (backends) and
// when (sessions). The operator turns it into Repositories, one CronJob per
// session and an immediate first BackupSession.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bc,categories=keepsake
// +kubebuilder:printcolumn:name="Target-Kind",type=string,JSONPath=`.spec.target.kind`,priority=1
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.target.name`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.sessions[0].scheduler.schedule`
// +kubebuilder:printcolumn:name="Paused",type=boolean,JSONPath=`.spec.paused`,priority=1
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Addon",type=string,JSONPath=`.spec.sessions[0].addon.name`,priority=1
// +kubebuilder:printcolumn:name="Next-Backup",type=string,JSONPath=`.status.sessions[0].nextSchedule`
// +kubebuilder:printcolumn:name="Last-Success",type=date,JSONPath=`.status.sessions[0].lastSuccessfulBackup`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is what to back up, where and when.
	Spec BackupConfigurationSpec `json:"spec"`
	// Status is the configuration as the operator last saw it.
	// +optional
	Status BackupConfigurationStatus `json:"status,omitempty"`
}

// BackupConfigurationList is a list of BackupConfiguration.
//
// +kubebuilder:object:root=true
type BackupConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupConfiguration `json:"items"`
}

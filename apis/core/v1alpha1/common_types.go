package v1alpha1

import "time"

// AddonInfo selects the Addon and the tasks of it that a session runs.
type AddonInfo struct {
	// Name of the Addon, e.g. hyperbytedb.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Tasks of the Addon to run: exactly one. A session (or restore) runs
	// one task in one Job; back up with several tasks by giving each its
	// own session (see docs/backupsession-lifecycle.md).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1
	// +listType=map
	// +listMapKey=name
	Tasks []TaskReference `json:"tasks"`
}

// TaskReference is one task of an Addon with its parameters.
type TaskReference struct {
	// Name of the task in the Addon, e.g. logical-backup.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Params are the task's parameters (see the Addon for each task's list);
	// they replace ${name} in the Function's command and args.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Params map[string]string `json:"params,omitempty"`
}

// Labels and annotations the operator and the trigger put on the objects
// they create, so they can be found from their BackupConfiguration.
const (
	// LabelBackupConfiguration names the BackupConfiguration an object
	// (BackupSession, CronJob, Job) belongs to.
	LabelBackupConfiguration = "core.keepsake.dev/backup-configuration"
	// LabelSession names the session of that BackupConfiguration.
	LabelSession = "core.keepsake.dev/session"
	// LabelBackupSession names the BackupSession a Snapshot, Job or
	// ConfigMap belongs to.
	LabelBackupSession = "core.keepsake.dev/backup-session"
	// LabelRestoreSession names the RestoreSession a Job belongs to.
	LabelRestoreSession = "core.keepsake.dev/restore-session"
	// AnnotationFirstBackupSession, on a session's CronJob, names the
	// immediate first BackupSession the operator created for the session,
	// so that it is created once only.
	AnnotationFirstBackupSession = "core.keepsake.dev/first-backup-session"
)

// Reasons a BackupSession or RestoreSession fails with when its Job's pods
// cannot be created or cannot start (see operator/internal/jobs.Stuck), or
// were lost (jobs.LostPod).
const (
	// ReasonPodCreationFailed: the API server refused the Job's pods (the
	// Job controller's FailedCreate Event), e.g. a missing ServiceAccount.
	ReasonPodCreationFailed = "PodCreationFailed"
	// ReasonVolumeMountFailed: a volume of the pod, such as a Secret or a
	// PVC, could not be mounted (FailedMount) for longer than the grace time.
	ReasonVolumeMountFailed = "VolumeMountFailed"
	// ReasonImagePullFailed: an image of the pod could not be pulled
	// (ErrImagePull, ImagePullBackOff) for longer than the grace time.
	ReasonImagePullFailed = "ImagePullFailed"
	// ReasonContainerConfigError: a container could not be created from
	// its spec (CreateContainerConfigError, e.g. a missing Secret key).
	ReasonContainerConfigError = "ContainerConfigError"
	// ReasonUnschedulable: no node can run the pod.
	ReasonUnschedulable = "Unschedulable"
	// ReasonPodDeleted: the Job's pod was deleted or evicted before it
	// ended (kubectl delete, a drained or lost node), rather than failing
	// by itself; the Job controller reports only BackoffLimitExceeded.
	ReasonPodDeleted = "PodDeleted"
	// ReasonReplaced: a newer run of the same session replaced this one
	// (concurrencyPolicy Replace).
	ReasonReplaced = "ReplacedByNewerSession"
	// ReasonTooManyTasks is kept for objects created before tasks were
	// limited to one by the schema.
	ReasonTooManyTasks = "TooManyTasks"
)

// Default deadlines of sessions that set none. Every session ends in a
// bounded time: a Job that hangs (a stuck S3 endpoint, a database that
// never answers) fails with a Timeout reason instead of blocking later runs.
const (
	// DefaultBackupTimeout is a session's backupTimeout when unset.
	DefaultBackupTimeout = 6 * time.Hour
	// DefaultRestoreTimeout is a RestoreSession's restoreTimeout when unset.
	DefaultRestoreTimeout = 6 * time.Hour
)

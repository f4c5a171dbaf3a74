package v1alpha1

// AddonInfo selects the Addon and the tasks of it that a session runs.
type AddonInfo struct {
	// Name of the Addon, e.g. hyperbytedb.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Tasks of the Addon to run, in order.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
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

package v1alpha1

// Cross-namespace consent. A BackupConfiguration or RestoreSession may
// target an application in another namespace only when that namespace says
// so, because the Job then reads (backup) or overwrites (restore) its data
// with credentials the operator hands it. The value of each annotation is a
// comma-separated list of namespaces allowed, or "*" for every namespace.
const (
	// AnnotationAllowBackupFrom on a namespace lists the namespaces whose
	// BackupConfigurations may back up targets in it.
	AnnotationAllowBackupFrom = "keepsake.dev/allow-backup-from"
	// AnnotationAllowRestoreFrom on a namespace lists the namespaces whose
	// RestoreSessions may restore into targets in it (restores can drop
	// databases, so it is asked for separately).
	AnnotationAllowRestoreFrom = "keepsake.dev/allow-restore-from"
	// AnnotationAllowFrom on a Secret lists the namespaces whose
	// Repositories and RestoreSessions may use it as their encryption
	// Secret.
	AnnotationAllowFrom = "keepsake.dev/allow-from"
	// AnnotationCopyOf on a Secret a Job owns names the Secret
	// (namespace/name) it is a copy of.
	AnnotationCopyOf = "keepsake.dev/copy-of"

	// ReasonNamespaceNotAllowed: the target's namespace (or a shared
	// Secret) does not consent to use from the object's namespace.
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
)

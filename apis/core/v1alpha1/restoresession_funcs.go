package v1alpha1

// IsFinished reports whether the restore reached a phase it never leaves.
func (r *RestoreSession) IsFinished() bool {
	switch r.Status.Phase {
	case RestoreSucceeded, RestoreFailed, RestoreInvalid:
		return true
	}
	return false
}

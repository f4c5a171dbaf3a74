package v1alpha1

import "time"

// IsFinished reports whether the restore reached a phase it never leaves.
func (r *RestoreSession) IsFinished() bool {
	switch r.Status.Phase {
	case RestoreSucceeded, RestoreFailed, RestoreInvalid:
		return true
	}
	return false
}

// Timeout is the restoreTimeout, DefaultRestoreTimeout when unset.
func (r *RestoreSession) Timeout() time.Duration {
	if r.Spec.RestoreTimeout == nil || r.Spec.RestoreTimeout.Duration <= 0 {
		return DefaultRestoreTimeout
	}
	return r.Spec.RestoreTimeout.Duration
}

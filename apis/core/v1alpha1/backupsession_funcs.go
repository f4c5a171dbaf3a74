package v1alpha1

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IsFinished reports whether the session reached a phase it never leaves.
func (s *BackupSession) IsFinished() bool {
	switch s.Status.Phase {
	case BackupSessionSucceeded, BackupSessionFailed, BackupSessionSkipped:
		return true
	}
	return false
}

// SetFailed marks the session Failed with a reason users read in
// `kubectl describe`, and records when it ended.
func (s *BackupSession) SetFailed(reason string, err error, now metav1.Time) {
	s.Status.Phase = BackupSessionFailed
	s.Status.CompletionTime = &now
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{
		Type:               ConditionBackupSucceeded,
		Status:             metav1.ConditionFalse,
		Reason:             reason,
		Message:            err.Error(),
		ObservedGeneration: s.Generation,
	})
}

// SetSucceeded marks the session Succeeded and records when it ended.
func (s *BackupSession) SetSucceeded(now metav1.Time) {
	s.Status.Phase = BackupSessionSucceeded
	s.Status.CompletionTime = &now
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{
		Type:               ConditionBackupSucceeded,
		Status:             metav1.ConditionTrue,
		Reason:             ReasonBackupCompleted,
		Message:            "every snapshot succeeded",
		ObservedGeneration: s.Generation,
	})
}

// Timeout is the session's backupTimeout, DefaultBackupTimeout when unset.
func (s *Session) Timeout() time.Duration {
	if s.BackupTimeout == nil || s.BackupTimeout.Duration <= 0 {
		return DefaultBackupTimeout
	}
	return s.BackupTimeout.Duration
}

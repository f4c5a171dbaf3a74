package v1alpha1

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBackupSessionIsFinished(t *testing.T) {
	cases := map[BackupSessionPhase]bool{
		"": false, BackupSessionPending: false, BackupSessionRunning: false,
		BackupSessionSucceeded: true, BackupSessionFailed: true, BackupSessionSkipped: true,
	}
	for phase, want := range cases {
		s := &BackupSession{Status: BackupSessionStatus{Phase: phase}}
		if got := s.IsFinished(); got != want {
			t.Errorf("phase %q: IsFinished = %v, want %v", phase, got, want)
		}
	}
}

func TestBackupSessionSetFailedThenSucceeded(t *testing.T) {
	s := &BackupSession{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
	now := metav1.Now()
	s.SetFailed(ReasonBackupTimeout, errors.New("no progress for 30m"), now)
	c := meta.FindStatusCondition(s.Status.Conditions, ConditionBackupSucceeded)
	if s.Status.Phase != BackupSessionFailed || c == nil || c.Status != metav1.ConditionFalse ||
		c.Reason != ReasonBackupTimeout || c.Message != "no progress for 30m" || c.ObservedGeneration != 2 {
		t.Fatalf("after SetFailed: phase %q condition %+v", s.Status.Phase, c)
	}
	if s.Status.CompletionTime == nil || !s.Status.CompletionTime.Equal(&now) {
		t.Fatalf("completion time %v, want %v", s.Status.CompletionTime, now)
	}
	s.SetSucceeded(now)
	if c := meta.FindStatusCondition(s.Status.Conditions, ConditionBackupSucceeded); c.Status != metav1.ConditionTrue || len(s.Status.Conditions) != 1 {
		t.Fatalf("SetSucceeded must replace the condition, got %+v", s.Status.Conditions)
	}
}

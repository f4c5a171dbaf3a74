package backupsession_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestLostPodSaysSo checks the reason of a session whose backup pod did
// not fail by itself. The Job controller says BackoffLimitExceeded in
// every case; the user must read that the pod was deleted or evicted, and
// a pod that failed by itself must still read as a failed backup.
func TestLostPodSaysSo(t *testing.T) {
	cases := map[string]struct {
		// pod is the Job's pod phase and condition as the test leaves it;
		// no pod at all when phase is empty (deleted with --force).
		phase     corev1.PodPhase
		condition *corev1.PodCondition
		// runtimeErr is what the runtime recorded, if anything.
		runtimeErr string
		// reason and message are what the session must say.
		reason, message string
	}{
		"force-deleted": {
			reason: corev1alpha1.ReasonPodDeleted, message: "was deleted before it finished",
		},
		"evicted": {
			phase: corev1.PodFailed, runtimeErr: "backup: context canceled",
			condition: &corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting"},
			reason: corev1alpha1.ReasonPodDeleted, message: "EvictionByEvictionAPI: Eviction API: evicting",
		},
		"failed by itself": {
			phase:  corev1.PodFailed,
			reason: corev1alpha1.ReasonBackupFailed, message: "BackoffLimitExceeded",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := testenv.Default
			ns := fixtures(t)
			env.Create(t, config(ns, addonName, nil))
			bks := firstSession(ns)
			job := getJob(t, bks)
			if tc.phase != "" {
				testenv.JobPod(t, job, tc.phase, tc.condition)
			}
			if tc.runtimeErr != "" {
				recordResult(t, bks, tc.runtimeErr)
			}
			testenv.FinishJob(t, job, "BackoffLimitExceeded")
			c := waitPhase(t, bks, corev1alpha1.BackupSessionFailed, corev1alpha1.ConditionBackupSucceeded, tc.reason)
			if !strings.Contains(c.Message, tc.message) {
				t.Errorf("message %q, want it to say %q", c.Message, tc.message)
			}
		})
	}
}

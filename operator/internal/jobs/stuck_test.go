package jobs

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

// TestWaitingCause maps container waiting states to the session's reason.
// Stuck itself, with its Events and pods, is tested against a real API
// server in operator/backupsession and operator/restoresession.
func TestWaitingCause(t *testing.T) {
	tests := map[string]struct {
		init, main string // waiting reasons of the init and task containers; "" is running
		want       string // the reason, "" for not stuck
	}{
		"pulling normally":        {init: "", main: "ContainerCreating", want: ""},
		"task image not pulled":   {main: "ImagePullBackOff", want: corev1alpha1.ReasonImagePullFailed},
		"runtime image not found": {init: "ErrImagePull", want: corev1alpha1.ReasonImagePullFailed},
		"missing Secret key":      {main: "CreateContainerConfigError", want: corev1alpha1.ReasonContainerConfigError},
		"waiting for init":        {init: "", main: "PodInitializing", want: ""},
	}
	status := func(name, reason string) []corev1.ContainerStatus {
		if reason == "" {
			return []corev1.ContainerStatus{{Name: name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		}
		return []corev1.ContainerStatus{{Name: name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := &corev1.Pod{Status: corev1.PodStatus{
				InitContainerStatuses: status("install", tc.init),
				ContainerStatuses:     status("task", tc.main),
			}}
			got := ""
			if p := waitingCause(pod); p != nil {
				got = p.Reason
			}
			if got != tc.want {
				t.Errorf("reason = %q, want %q", got, tc.want)
			}
		})
	}
}

package backupsession_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupsession"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestRefusedPodsFailAtOnce checks that a Job whose pods the API server
// refuses (the Job controller's FailedCreate Event, as when the Job's
// ServiceAccount is missing) fails its session with the API's message,
// rather than leaving it Running with no reason until its deadline.
func TestRefusedPodsFailAtOnce(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, config(ns, addonName, nil))
	bks := firstSession(ns)
	job := getJob(t, bks)
	// %2F as in an escaped S3 key: the Event must carry it verbatim, not
	// as a format verb.
	msg := `Error creating: pods "` + job.Name + `-x" is forbidden: error looking up service account ` + ns +
		`/keepsake-job: serviceaccount "keepsake-job" not found (a%2Fb)`
	testenv.RefusePods(t, job, msg)
	c := waitPhase(t, bks, corev1alpha1.BackupSessionFailed, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonPodCreationFailed)
	if !strings.Contains(c.Message, `serviceaccount "keepsake-job" not found`) {
		t.Errorf("message %q does not carry the API server's", c.Message)
	}
	if snap := getSnapshot(t, bks); snap.Status.Phase != storagev1alpha1.SnapshotFailed {
		t.Errorf("Snapshot phase = %s, want Failed", snap.Status.Phase)
	}
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := testenv.Default.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var notes []string
		for _, ev := range list.Items {
			if ev.Regarding.Name == bks.Name && ev.Reason == corev1alpha1.ReasonPodCreationFailed {
				notes = append(notes, ev.Note)
				if strings.Contains(ev.Note, "(a%2Fb)") {
					return true, ""
				}
			}
		}
		return false, fmt.Sprintf("no %s Event carries the message verbatim: %q", corev1alpha1.ReasonPodCreationFailed, notes)
	})
}

// TestStuckPodsFail checks that a pod that cannot start fails its session
// once it has waited the grace time, with a reason naming the cause.
func TestStuckPodsFail(t *testing.T) {
	waiting := func(reason, msg string) corev1.PodStatus {
		return corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "backup", Image: "db-tools:1", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}},
		}}}
	}
	tests := map[string]struct {
		status corev1.PodStatus // what the kubelet or scheduler reports
		event  string           // the kubelet's Event about the pod, if any
		msg    string           // the message of the status or Event
		reason string           // the session's reason
	}{
		"secret volume missing": {
			status: corev1.PodStatus{Phase: corev1.PodPending},
			event:  "FailedMount", msg: `MountVolume.SetUp failed for volume "secret-0" : secret "restic-password" not found`,
			reason: corev1alpha1.ReasonVolumeMountFailed,
		},
		"image not pulled": {
			status: waiting("ImagePullBackOff", `Back-off pulling image "db-tools:1"`),
			msg:    `Back-off pulling image "db-tools:1"`,
			reason: corev1alpha1.ReasonImagePullFailed,
		},
		"secret key missing": {
			status: waiting("CreateContainerConfigError", `couldn't find key url in Secret db-auth`),
			msg:    `couldn't find key url in Secret db-auth`,
			reason: corev1alpha1.ReasonContainerConfigError,
		},
		"no node fits": {
			status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
				Message: "0/3 nodes are available: 3 Insufficient memory.", LastTransitionTime: metav1.Now(),
			}}},
			msg:    "3 Insufficient memory",
			reason: corev1alpha1.ReasonUnschedulable,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env := testenv.Default
			ns := fixtures(t)
			env.Create(t, config(ns, addonName, nil))
			bks := firstSession(ns)
			pod := testenv.StuckPod(t, getJob(t, bks), tc.status, tc.event, tc.msg)
			c := waitPhase(t, bks, corev1alpha1.BackupSessionFailed, corev1alpha1.ConditionBackupSucceeded, tc.reason)
			if !strings.Contains(c.Message, tc.msg) || !strings.Contains(c.Message, pod.Name) {
				t.Errorf("message %q does not name pod %s and the cause %q", c.Message, pod.Name, tc.msg)
			}
			if waited := c.LastTransitionTime.Sub(pod.CreationTimestamp.Time); waited < stuckGrace-time.Second {
				t.Errorf("failed %s after the pod was created, before the grace time %s", waited, stuckGrace)
			}
		})
	}
}

// TestDefaultDeadline checks that a session without backupTimeout still
// gets a deadline, so its Job cannot run (and block Forbid) forever.
func TestDefaultDeadline(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, config(ns, addonName, func(s *corev1alpha1.Session) { s.BackupTimeout = nil }))
	job := getJob(t, firstSession(ns))
	want := int64(corev1alpha1.DefaultBackupTimeout.Seconds())
	if d := job.Spec.ActiveDeadlineSeconds; d == nil || *d != want {
		t.Errorf("activeDeadlineSeconds = %v, want %d (the default backupTimeout)", d, want)
	}
}

// TestForeignJobIsNotAdopted checks that a Job of the session's Job name
// that the session does not control fails the session instead of being
// followed (its outcome would be taken as the backup's).
func TestForeignJobIsNotAdopted(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := suspendedConfig(t, ns, nil)
	foreign := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: backupsession.JobName("adopt-me")},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "x", Image: "busybox"}},
		}}},
	}
	env.Create(t, foreign)
	bks := newSession(ns, "adopt-me", bc.Name)
	env.Create(t, bks)
	c := waitPhase(t, bks, corev1alpha1.BackupSessionFailed, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonJobCreationFailed)
	if !strings.Contains(c.Message, "does not belong to this BackupSession") {
		t.Errorf("message %q does not say the Job is someone else's", c.Message)
	}
	if bks.Status.Job != "" {
		t.Errorf("status.job = %q: the foreign Job was adopted", bks.Status.Job)
	}
}

// TestOneTaskPerSession checks that the API server refuses a session with
// more than one task, which used to run the first and silently skip the
// rest.
func TestOneTaskPerSession(t *testing.T) {
	ns := fixtures(t)
	bc := config(ns, addonName, func(s *corev1alpha1.Session) {
		s.Addon.Tasks = append(s.Addon.Tasks, corev1alpha1.TaskReference{Name: "manifest-backup"})
	})
	err := testenv.Default.Client.Create(context.Background(), bc)
	if err == nil || !strings.Contains(err.Error(), "tasks") {
		t.Fatalf("create with two tasks: err = %v, want the schema's refusal naming tasks", err)
	}
}

// suspendedConfig creates the fixtures' configuration with its session's
// schedule suspended (so no first session runs) and waits until it is
// Ready: BackupSessions the test creates then start at once.
func suspendedConfig(t *testing.T, ns string, mutate func(*corev1alpha1.Session)) *corev1alpha1.BackupConfiguration {
	t.Helper()
	bc := config(ns, addonName, func(s *corev1alpha1.Session) {
		s.Scheduler.Suspend = true
		if mutate != nil {
			mutate(s)
		}
	})
	testenv.Default.Create(t, bc)
	testenv.Default.WaitCondition(t, bc, func() []metav1.Condition { return bc.Status.Conditions },
		corev1alpha1.ConditionReady, metav1.ConditionTrue, corev1alpha1.ReasonAllReady)
	return bc
}

package restoresession_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/operator/restoresession"
)

// offlinePhases are the phases of an offline restore, in order.
var offlinePhases = []corev1alpha1.RestoreSessionPhase{
	corev1alpha1.RestoreScalingDown, corev1alpha1.RestoreRestoring, corev1alpha1.RestoreScalingUp,
}

// TestOfflineRestore restores a StatefulSet of two replicas offline: it is
// scaled to 0 with its replica count recorded, each PVC gets one Job that
// mounts it, and it is scaled back to two once the Jobs completed.
func TestOfflineRestore(t *testing.T) {
	ns, sts := offlineFixtures(t, 2)
	rs := offlineRestore(ns, "offline", stsTarget)
	phases := watchPhases(t, ns, rs.Name)
	testenv.Default.Create(t, rs)

	waitPhase(t, rs, corev1alpha1.RestoreScalingDown, corev1alpha1.ConditionTargetStopped, corev1alpha1.ReasonScalingDown)
	if off := rs.Status.Offline; off == nil || ptr.Deref(off.Replicas, 0) != 2 || off.StatefulSet != tsdbName ||
		strings.Join(off.PVCs, ",") != "data-tsdb-0,data-tsdb-1" {
		t.Fatalf("offline status %s, want 2 replicas of tsdb and PVCs data-tsdb-0,data-tsdb-1", testenv.JSON(rs.Status.Offline))
	}
	stopPods(t, sts)
	waitPhase(t, rs, corev1alpha1.RestoreRestoring, corev1alpha1.ConditionTargetStopped, corev1alpha1.ReasonStopped)
	jobs := pvcJobs(t, rs, 2)
	for i, job := range jobs {
		checkPVCJob(t, rs, job, fmt.Sprintf("data-tsdb-%d", i))
	}
	if n := len(jobsOf(t, rs)); n != 2 {
		t.Errorf("%d Jobs, want one per PVC, 2", n)
	}
	for _, job := range jobs {
		testenv.FinishJob(t, job, "")
	}
	waitPhase(t, rs, corev1alpha1.RestoreScalingUp, corev1alpha1.ConditionTargetRestarted, corev1alpha1.ReasonScalingUp)
	waitReplicas(t, sts, 2)
	setReady(t, sts, 2)
	c := waitPhase(t, rs, corev1alpha1.RestoreSucceeded, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonRestoreCompleted)
	if c.Status != metav1.ConditionTrue {
		t.Errorf("RestoreSucceeded = %s, want True", c.Status)
	}
	if got := rs.Status.Offline.RestoredPVCs; got != 2 {
		t.Errorf("restoredPVCs = %d, want 2", got)
	}
	phases.check(t, append(offlinePhases, corev1alpha1.RestoreSucceeded)...)
}

// checkPVCJob checks that the Job mounts pvc at the fixed path and hands
// that path to the Function and the driver.
func checkPVCJob(t *testing.T, rs *corev1alpha1.RestoreSession, job *batchv1.Job, pvc string) {
	t.Helper()
	if !metav1.IsControlledBy(job, rs) {
		t.Errorf("Job %s is not controlled by the RestoreSession", job.Name)
	}
	pod := job.Spec.Template.Spec
	var claim string
	for _, v := range pod.Volumes {
		if v.Name == "target" && v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim != pvc {
		t.Errorf("Job %s mounts PVC %q, want %q", job.Name, claim, pvc)
	}
	c := pod.Containers[0]
	if !slicesContainMount(c.VolumeMounts, restoresession.TargetDir) {
		t.Errorf("Job %s mounts %+v, want the PVC at %s", job.Name, c.VolumeMounts, restoresession.TargetDir)
	}
	if !strings.Contains(strings.Join(c.Args, " "), "--param=datadir="+restoresession.TargetDir) {
		t.Errorf("Job %s args %v, want ${targetDir} replaced by %s", job.Name, c.Args, restoresession.TargetDir)
	}
}

func slicesContainMount(mounts []corev1.VolumeMount, path string) bool {
	for _, m := range mounts {
		if m.Name == "target" && m.MountPath == path {
			return true
		}
	}
	return false
}

// TestOfflineRestoreRestart kills the operator while the PVC Jobs run: the
// new one makes no second set of Jobs, completes the restore once and gives
// the StatefulSet back its original replica count, not the 0 it finds.
func TestOfflineRestoreRestart(t *testing.T) {
	ns, sts := offlineFixtures(t, 3)
	rs := offlineRestore(ns, "offline-restart", stsTarget)
	phases := watchPhases(t, ns, rs.Name)
	testenv.Default.Create(t, rs)
	waitPhase(t, rs, corev1alpha1.RestoreScalingDown, corev1alpha1.ConditionTargetStopped, corev1alpha1.ReasonScalingDown)
	stopPods(t, sts)
	jobs := pvcJobs(t, rs, 3)

	testenv.Default.RestartManager(t)
	for _, job := range jobs {
		testenv.FinishJob(t, job, "")
	}
	waitReplicas(t, sts, 3)
	setReady(t, sts, 3)
	waitPhase(t, rs, corev1alpha1.RestoreSucceeded, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonRestoreCompleted)
	if n := len(jobsOf(t, rs)); n != 3 {
		t.Errorf("%d Jobs after the restart, want 3", n)
	}
	for _, job := range jobs {
		if err := testenv.Default.Client.Get(context.Background(), client.ObjectKeyFromObject(job), job); err != nil || job.Status.Succeeded != 1 {
			t.Errorf("Job %s: %v, succeeded %d: want the Job made before the restart, completed", job.Name, err, job.Status.Succeeded)
		}
	}
	if got := rs.Status.Offline.RestoredPVCs; got != 3 {
		t.Errorf("restoredPVCs = %d, want 3", got)
	}
	phases.check(t, append(offlinePhases, corev1alpha1.RestoreSucceeded)...)
}

// TestOfflineRestoreJobFails fails one of two PVC Jobs: the other is
// stopped, the StatefulSet is scaled back up all the same, and the
// RestoreSession ends Failed with the Job's reason and says the target is
// back.
func TestOfflineRestoreJobFails(t *testing.T) {
	ns, sts := offlineFixtures(t, 2)
	rs := offlineRestore(ns, "offline-fails", stsTarget)
	phases := watchPhases(t, ns, rs.Name)
	testenv.Default.Create(t, rs)
	waitPhase(t, rs, corev1alpha1.RestoreScalingDown, corev1alpha1.ConditionTargetStopped, corev1alpha1.ReasonScalingDown)
	stopPods(t, sts)
	jobs := pvcJobs(t, rs, 2)
	testenv.FinishJob(t, jobs[1], batchv1.JobReasonBackoffLimitExceeded)

	waitPhase(t, rs, corev1alpha1.RestoreScalingUp, corev1alpha1.ConditionTargetRestarted, corev1alpha1.ReasonScalingUp)
	waitReplicas(t, sts, 2)
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(jobs[0]), jobs[0])
		return err != nil, "the unfinished Job of PVC data-tsdb-0 still exists"
	})
	setReady(t, sts, 2)
	c := waitPhase(t, rs, corev1alpha1.RestoreFailed, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonRestoreFailed)
	if rs.Status.Duration == "" {
		t.Errorf("the Failed RestoreSession has no duration (kubectl's Duration column is empty); a Succeeded one has")
	}
	for _, want := range []string{jobs[1].Name, "data-tsdb-1", batchv1.JobReasonBackoffLimitExceeded, "back at 2 replicas"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("RestoreSucceeded message %q does not say %q", c.Message, want)
		}
	}
	if tr := meta.FindStatusCondition(rs.Status.Conditions, corev1alpha1.ConditionTargetRestarted); tr == nil || tr.Status != metav1.ConditionTrue {
		t.Errorf("TargetRestarted = %+v, want True", tr)
	}
	waitEvent(t, rs, corev1.EventTypeWarning, corev1alpha1.ReasonRestoreFailed)
	phases.check(t, append(offlinePhases, corev1alpha1.RestoreFailed)...)
}

// TestOfflineRestoreStopTimeout keeps the StatefulSet's pods running after
// the scale-down: past StopTimeout the restore gives up without restoring,
// scales back up, and fails saying which pods did not stop.
func TestOfflineRestoreStopTimeout(t *testing.T) {
	ns, sts := offlineFixtures(t, 2)
	rs := offlineRestore(ns, "offline-stuck", stsTarget)
	testenv.Default.Create(t, rs)
	waitReplicas(t, sts, 0)
	waitPhase(t, rs, corev1alpha1.RestoreScalingUp, corev1alpha1.ConditionTargetRestarted, corev1alpha1.ReasonScalingUp)
	waitReplicas(t, sts, 2)
	setReady(t, sts, 2)
	c := waitPhase(t, rs, corev1alpha1.RestoreFailed, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonStopTimeout)
	for _, want := range []string{"tsdb-0, tsdb-1", "back at 2 replicas"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message %q does not say %q", c.Message, want)
		}
	}
	if n := len(jobsOf(t, rs)); n != 0 {
		t.Errorf("%d Jobs, want none: nothing is restored into a running database", n)
	}
}

// TestOfflineRestoreHyperbytedbCluster restores through a HyperbytedbCluster:
// its operator is paused before the StatefulSet of the same name is
// scaled down, and unpaused after it is scaled back up.
func TestOfflineRestoreHyperbytedbCluster(t *testing.T) {
	installCRD(t)
	ns, sts := offlineFixtures(t, 2)
	testenv.Default.Create(t, hyperbytedbCluster(ns, 2, false))
	target := storagev1alpha1.TypedObjectReference{APIGroup: "hyperbytedb.hyperbyte.cloud", Kind: "HyperbytedbCluster", Name: tsdbName}
	rs := offlineRestore(ns, "offline-cluster", target)
	testenv.Default.Create(t, rs)
	waitPhase(t, rs, corev1alpha1.RestoreScalingDown, corev1alpha1.ConditionTargetStopped, corev1alpha1.ReasonScalingDown)
	if !rs.Status.Offline.PausedOwner {
		t.Errorf("pausedOwner false, want true: the cluster was not paused by its user")
	}
	stopPods(t, sts)
	jobs := pvcJobs(t, rs, 2)
	if !paused(t, ns) {
		t.Errorf("HyperbytedbCluster not paused while its PVCs are restored")
	}
	for _, job := range jobs {
		testenv.FinishJob(t, job, "")
	}
	waitReplicas(t, sts, 2)
	setReady(t, sts, 2)
	waitPhase(t, rs, corev1alpha1.RestoreSucceeded, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonRestoreCompleted)
	if paused(t, ns) {
		t.Errorf("HyperbytedbCluster still paused after the restore")
	}
}

// TestOfflineRestoreBadTargets checks the targets an offline restore
// refuses before it scales anything down.
func TestOfflineRestoreBadTargets(t *testing.T) {
	tests := map[string]struct {
		// target is the RestoreSession's target, in the fixtures' namespace.
		target storagev1alpha1.TypedObjectReference
		// mutate changes the StatefulSet tsdb before the restore.
		mutate func(*appsv1.StatefulSet)
		// wantReason and wantMessage are the RestoreSucceeded condition's.
		wantReason, wantMessage string
	}{
		"a Service": {
			target:     storagev1alpha1.TypedObjectReference{Kind: "Service", Name: "tsdb"},
			wantReason: corev1alpha1.ReasonTargetNotStoppable, wantMessage: "not a Service",
		},
		"a StatefulSet without volumeClaimTemplates": {
			target:     storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: targetName},
			wantReason: corev1alpha1.ReasonTargetNotStoppable, wantMessage: "no volumeClaimTemplates",
		},
		"a PVC missing": {
			target:     stsTarget,
			mutate:     func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To[int32](3) },
			wantReason: corev1alpha1.ReasonTargetNotStoppable, wantMessage: "PVC data-tsdb-2 of StatefulSet tsdb not found",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ns, sts := offlineFixtures(t, 2)
			testenv.Default.Create(t, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tsdb"},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8086}}},
			})
			if tc.mutate != nil {
				tc.mutate(sts)
				if err := testenv.Default.Client.Update(context.Background(), sts); err != nil {
					t.Fatal(err)
				}
			}
			rs := offlineRestore(ns, "bad", tc.target)
			testenv.Default.Create(t, rs)
			c := waitPhase(t, rs, corev1alpha1.RestoreInvalid, corev1alpha1.ConditionRestoreSucceeded, tc.wantReason)
			if !strings.Contains(c.Message, tc.wantMessage) {
				t.Errorf("message %q, want it to say %q", c.Message, tc.wantMessage)
			}
			if rs.Status.Offline != nil || len(jobsOf(t, rs)) != 0 {
				t.Errorf("offline %s, %d Jobs: want nothing started", testenv.JSON(rs.Status.Offline), len(jobsOf(t, rs)))
			}
			waitReplicas(t, sts, *sts.Spec.Replicas)
		})
	}
}

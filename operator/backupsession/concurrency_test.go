package backupsession_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupsession"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestForbidBurst checks that, under Forbid, five BackupSessions of one
// session created at once start one Job, and so do five created while the
// operator is down, once it is back.
func TestForbidBurst(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	// Keep every run: the history limit would prune the Skipped ones.
	bc := suspendedConfig(t, ns, func(s *corev1alpha1.Session) { s.SessionHistoryLimit = 20 })
	burst := func(prefix string) []*corev1alpha1.BackupSession {
		var runs []*corev1alpha1.BackupSession
		for i := range 5 {
			bks := newSession(ns, fmt.Sprintf("%s-%d", prefix, i), bc.Name)
			env.Create(t, bks)
			runs = append(runs, bks)
		}
		return runs
	}
	running := waitOneRunning(t, burst("burst"))
	recordResult(t, running, "")
	testenv.FinishJob(t, getJob(t, running), "")
	waitPhase(t, running, corev1alpha1.BackupSessionSucceeded, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonBackupCompleted)

	if err := env.StopManager(); err != nil {
		t.Fatal(err)
	}
	runs := burst("restart")
	if err := env.StartManager(); err != nil {
		t.Fatal(err)
	}
	waitOneRunning(t, runs)
}

// waitOneRunning waits until every run has started or been Skipped, checks
// that exactly one runs, with the only Job among them, and returns it.
func waitOneRunning(t *testing.T, runs []*corev1alpha1.BackupSession) *corev1alpha1.BackupSession {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var phases []string
		settled := true
		for _, bks := range runs {
			if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(bks), bks); err != nil {
				return false, err.Error()
			}
			phases = append(phases, bks.Name+"="+string(bks.Status.Phase))
			settled = settled && (bks.Status.Phase == corev1alpha1.BackupSessionRunning || bks.Status.Phase == corev1alpha1.BackupSessionSkipped)
		}
		return settled, "phases: " + strings.Join(phases, ", ")
	})
	var started []*corev1alpha1.BackupSession
	withJobs := 0
	for _, bks := range runs {
		if bks.Status.Phase == corev1alpha1.BackupSessionRunning {
			started = append(started, bks)
		}
		withJobs += len(jobsOf(t, bks))
	}
	if len(started) != 1 || withJobs != 1 {
		t.Fatalf("%d sessions Running and %d Jobs, want one of each under Forbid", len(started), withJobs)
	}
	return started[0]
}

// TestReplace checks that under Replace a new run stops the running one:
// its Job is deleted, it and its Snapshot end Failed with a reason naming
// the new run, and the new run starts its own Job.
func TestReplace(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := suspendedConfig(t, ns, func(s *corev1alpha1.Session) { s.Scheduler.ConcurrencyPolicy = batchv1.ReplaceConcurrent })
	old := newSession(ns, "old", bc.Name)
	env.Create(t, old)
	waitPhase(t, old, corev1alpha1.BackupSessionRunning, corev1alpha1.ConditionBackupJobCreated, corev1alpha1.ReasonJobCreated)
	getJob(t, old)
	replacing := newSession(ns, "replacing", bc.Name)
	env.Create(t, replacing)
	c := waitPhase(t, old, corev1alpha1.BackupSessionFailed, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonReplaced)
	if !strings.Contains(c.Message, replacing.Name) {
		t.Errorf("message %q does not name the replacing session", c.Message)
	}
	waitPhase(t, replacing, corev1alpha1.BackupSessionRunning, corev1alpha1.ConditionBackupJobCreated, corev1alpha1.ReasonJobCreated)
	getJob(t, replacing)
	testenv.Eventually(t, func(context.Context) (bool, string) {
		n := len(jobsOf(t, old))
		return n == 0, fmt.Sprintf("the replaced session still has %d Jobs", n)
	})
	if snap := getSnapshot(t, old); snap.Status.Phase != storagev1alpha1.SnapshotFailed {
		t.Errorf("replaced session's Snapshot phase = %s, want Failed", snap.Status.Phase)
	}
}

// TestHistoryKeepsRunningRetention checks that with sessionHistoryLimit 0
// a session is not pruned (with its retention Job) while its retention
// runs, and is pruned once it ended.
func TestHistoryKeepsRunningRetention(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := configKeepingTwo(t, ns, func(s *corev1alpha1.Session) { s.Scheduler.Suspend = true })
	// 0 is omitted from Go's JSON and would be defaulted to 3: patch it in
	// as a user's YAML would set it.
	zero := client.RawPatch(types.JSONPatchType, []byte(`[{"op":"add","path":"/spec/sessions/0/sessionHistoryLimit","value":0}]`))
	if err := env.Client.Patch(context.Background(), bc, zero); err != nil {
		t.Fatal(err)
	}
	env.WaitCondition(t, bc, func() []metav1.Condition { return bc.Status.Conditions },
		corev1alpha1.ConditionReady, metav1.ConditionTrue, corev1alpha1.ReasonAllReady)
	if bc.Spec.Sessions[0].SessionHistoryLimit != 0 {
		t.Fatalf("sessionHistoryLimit = %d, want 0", bc.Spec.Sessions[0].SessionHistoryLimit)
	}
	bks := newSession(ns, "only", bc.Name)
	env.Create(t, bks)
	recordResult(t, bks, "")
	testenv.FinishJob(t, getJob(t, bks), "")
	waitPhase(t, bks, corev1alpha1.BackupSessionSucceeded, corev1alpha1.ConditionRetentionApplied, corev1alpha1.ReasonRetentionRunning)
	retention := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: backupsession.RetentionJobName(bks.Name, repoName)}}
	testenv.WaitExists(t, retention)
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(bks), bks); err != nil || !bks.DeletionTimestamp.IsZero() {
		t.Fatalf("session pruned while its retention runs: err %v, deletion %v", err, bks.DeletionTimestamp)
	}
	testenv.FinishJob(t, retention, "")
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(bks), bks)
		gone := client.IgnoreNotFound(err) == nil && (err != nil || !bks.DeletionTimestamp.IsZero())
		return gone, "the session is kept after its retention ended, beyond sessionHistoryLimit 0"
	})
}

// TestForbidAcrossRestart checks Forbid when the operator restarts between
// creating a run's Job and recording it Running (the status patch was
// lost): a newer run, reconciled first after the restart, must see that
// the older one has not finished and skip, rather than start a second Job.
func TestForbidAcrossRestart(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := suspendedConfig(t, ns, func(s *corev1alpha1.Session) { s.SessionHistoryLimit = 20 })
	if err := env.StopManager(); err != nil {
		t.Fatal(err)
	}
	// The informer lists by name: "aa-newer" is reconciled before "zz-older".
	older := newSession(ns, "zz-older", bc.Name)
	env.Create(t, older)
	env.Create(t, orphanedJob(t, older))
	time.Sleep(1100 * time.Millisecond) // a later creation second
	newer := newSession(ns, "aa-newer", bc.Name)
	env.Create(t, newer)
	if err := env.StartManager(); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, newer, corev1alpha1.BackupSessionSkipped, corev1alpha1.ConditionSessionSkipped, corev1alpha1.ReasonPreviousSessionRunning)
	waitPhase(t, older, corev1alpha1.BackupSessionRunning, corev1alpha1.ConditionBackupJobCreated, corev1alpha1.ReasonJobCreated)
	if n := len(jobsOf(t, newer)); n != 0 {
		t.Errorf("the newer run started %d Jobs beside the older one's", n)
	}
}

// orphanedJob is the Job a previous operator created for bks before it
// could record it: controlled by bks, with its name and labels.
func orphanedJob(t *testing.T, bks *corev1alpha1.BackupSession) *batchv1.Job {
	t.Helper()
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: bks.Namespace, Name: backupsession.JobName(bks.Name),
			Labels: map[string]string{backupsession.LabelBackupSession: bks.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: corev1alpha1.GroupVersion.String(), Kind: "BackupSession",
				Name: bks.Name, UID: bks.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "backup", Image: "db-tools:1"}},
		}}},
	}
}

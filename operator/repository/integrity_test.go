package repository_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/access"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/operator/repository"
)

// requestCheck sets the check-requested annotation of repo to value.
func requestCheck(t *testing.T, repo *storagev1alpha1.Repository, value string) {
	t.Helper()
	patch := []byte(`{"metadata":{"annotations":{"` + storagev1alpha1.AnnotationCheckRequested + `":"` + value + `"}}}`)
	if err := testenv.Default.Client.Patch(context.Background(), repo, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
}

// reportCheck plays the check Job's runtime: it writes the verdict into
// the Repository's status, as `keepsake run check` does.
func reportCheck(t *testing.T, repo *storagev1alpha1.Repository, job *batchv1.Job, result storagev1alpha1.IntegrityResult, message, request string) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(repo), repo); err != nil {
			return false, err.Error()
		}
		before := repo.DeepCopy()
		ok := result == storagev1alpha1.IntegrityPassed
		repo.Status.Integrity = &ok
		repo.Status.IntegrityCheck = &storagev1alpha1.IntegrityCheckStatus{
			LastCheckTime: &metav1.Time{Time: time.Now()}, Result: result, Message: message,
			Job: job.Annotations[repository.AnnotationCheckRun], Request: request,
		}
		if err := testenv.Default.Client.Status().Patch(ctx, repo, client.MergeFrom(before)); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// waitCheckJob waits for the Repository's check Job and returns it.
func waitCheckJob(t *testing.T, repo *storagev1alpha1.Repository) *batchv1.Job {
	t.Helper()
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: repo.Namespace, Name: repository.CheckJobName(repo.Name)}}
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(job), job)
		if err != nil {
			return false, err.Error()
		}
		return job.DeletionTimestamp.IsZero(), "the check Job is being deleted"
	})
	return job
}

// waitJobGone waits until job is deleted.
func waitJobGone(t *testing.T, job *batchv1.Job) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var now batchv1.Job
		err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(job), &now)
		return apierrors.IsNotFound(err), "the finished check Job is still there: " + testenv.JSON(now.ObjectMeta) + testenv.JSON(now.Status)
	})
}

// TestIntegrityCheckJob checks the reconciler side of integrity checks: a
// requested check starts a check Job running `keepsake run check` with the
// configured --read-data-subset, as the sync ServiceAccount, bounded by a
// deadline; the verdict the Job writes becomes the IntegrityChecked
// condition, a failed one also a Warning Event; the finished Job is
// deleted and an answered request starts no other; a Job that ends
// without a verdict is an IntegrityCheckError naming the Job.
func TestIntegrityCheckJob(t *testing.T) {
	env := testenv.Default
	ns := env.Namespace(t, nil)
	repo := newRepository(ns, repoName, "local")
	repo.Spec.IntegrityCheck = &storagev1alpha1.IntegrityCheck{Schedule: "168h", ReadDataSubset: "5%"}
	env.Create(t, localStorage(ns), passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "x"}), repo)
	waitReady(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		_ = env.Client.Get(ctx, client.ObjectKeyFromObject(repo), repo)
		ic := repo.Status.IntegrityCheck
		return ic != nil && ic.NextCheckTime != nil && ic.NextCheckTime.Sub(repo.CreationTimestamp.Time) > 167*time.Hour,
			"status.integrityCheck.nextCheckTime is not a week after the creation: " + testenv.JSON(ic)
	})
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: repository.CheckJobName(repoName)}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a check Job before the schedule says so: %v", err)
	}

	// A failing check.
	requestCheck(t, repo, "r1")
	job := waitCheckJob(t, repo)
	pod := job.Spec.Template.Spec
	envs := map[string]string{}
	for _, e := range pod.Containers[0].Env {
		envs[e.Name] = e.Value
	}
	if pod.ServiceAccountName != access.Sync.Name || !slices.Equal(pod.Containers[0].Command[1:], []string{"run", "check"}) ||
		envs["KEEPSAKE_READ_DATA_SUBSET"] != "5%" || envs["KEEPSAKE_REQUEST"] != "r1" || envs["KEEPSAKE_REPOSITORY"] == "" ||
		job.Spec.ActiveDeadlineSeconds == nil || !metav1.IsControlledBy(job, repo) {
		t.Fatalf("check Job: service account %s, command %v, env %v, deadline %v", pod.ServiceAccountName, pod.Containers[0].Command, envs, job.Spec.ActiveDeadlineSeconds)
	}
	if run := job.Annotations[repository.AnnotationCheckRun]; envs["KEEPSAKE_JOB"] != run || !strings.HasPrefix(run, job.Name+"@") {
		t.Fatalf("check run %q, KEEPSAKE_JOB %q: want one <job>@<time> in both", run, envs["KEEPSAKE_JOB"])
	}
	damage := "restic check found damage: pack 560d907d contains 2 errors"
	reportCheck(t, repo, job, storagev1alpha1.IntegrityFailed, damage, "r1")
	testenv.FinishJob(t, job, "")
	c := env.WaitCondition(t, repo, func() []metav1.Condition { return repo.Status.Conditions },
		storagev1alpha1.ConditionIntegrityChecked, metav1.ConditionFalse, storagev1alpha1.ReasonIntegrityCheckFailed)
	if !strings.HasPrefix(c.Message, damage) {
		t.Errorf("IntegrityChecked message %q, want restic's account of the damage", c.Message)
	}
	if note := waitEvent(t, repo, corev1.EventTypeWarning, storagev1alpha1.ReasonIntegrityCheckFailed); !strings.Contains(note, damage) {
		t.Errorf("Warning Event %q does not say what is damaged", note)
	}
	waitJobGone(t, job)

	// A passing check, asked for again.
	requestCheck(t, repo, "r2")
	job = waitCheckJob(t, repo)
	reportCheck(t, repo, job, storagev1alpha1.IntegrityPassed, "no errors were found; 5% of the data was read and verified", "r2")
	testenv.FinishJob(t, job, "")
	env.WaitCondition(t, repo, func() []metav1.Condition { return repo.Status.Conditions },
		storagev1alpha1.ConditionIntegrityChecked, metav1.ConditionTrue, storagev1alpha1.ReasonIntegrityCheckPassed)
	waitJobGone(t, job)
	if repo.Status.Integrity == nil || !*repo.Status.Integrity {
		t.Errorf("status.integrity %v after a passing check", repo.Status.Integrity)
	}

	// A Job that fails without writing a verdict.
	requestCheck(t, repo, "r3")
	job = waitCheckJob(t, repo)
	testenv.FinishJob(t, job, "DeadlineExceeded")
	c = env.WaitCondition(t, repo, func() []metav1.Condition { return repo.Status.Conditions },
		storagev1alpha1.ConditionIntegrityChecked, metav1.ConditionFalse, storagev1alpha1.ReasonIntegrityCheckError)
	if !strings.Contains(c.Message, "check Job "+job.Name+" failed: DeadlineExceeded") {
		t.Errorf("IntegrityChecked message %q, want it to name the failed Job", c.Message)
	}
	if repo.Status.Integrity == nil || !*repo.Status.Integrity {
		t.Errorf("status.integrity %v: a check that could not run must leave it as it was", repo.Status.Integrity)
	}
	waitJobGone(t, job)
	if ic := repo.Status.IntegrityCheck; ic == nil || ic.Request != "r3" {
		t.Fatalf("status.integrityCheck %+v: want request r3 answered", ic)
	}
}

// TestVerifyJob checks the reconciler side of Snapshot verification: a
// Snapshot annotated keepsake.dev/verify gets a verify Job reading it
// (`keepsake run verify --snapshot-object`), bounded by a deadline; a
// failed verdict becomes a Warning Event on the Snapshot and the Job is
// deleted; an answered request starts no other Job; a Job that fails
// without a verdict is recorded on the Snapshot, and not started again.
func TestVerifyJob(t *testing.T) {
	env := testenv.Default
	ns := env.Namespace(t, nil)
	repo := newRepository(ns, repoName, "local")
	env.Create(t, localStorage(ns), passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "x"}), repo)
	waitReady(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
	newSnapshot(t, ns, "s1", repoName, storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotSucceeded,
		Components: map[string]storagev1alpha1.ComponentStatus{"dump": {Phase: storagev1alpha1.ComponentSucceeded, ResticSnapshotID: "abc"}}})
	snap := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s1"}}
	patch := []byte(`{"metadata":{"annotations":{"` + storagev1alpha1.AnnotationVerify + `":"r1"}}}`)
	if err := env.Client.Patch(context.Background(), snap, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}

	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: repository.VerifyJobName(repoName)}}
	testenv.WaitExists(t, job)
	envs := map[string]string{}
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		envs[e.Name] = e.Value
	}
	run := job.Annotations[repository.AnnotationCheckRun]
	if envs["KEEPSAKE_SNAPSHOT_OBJECT"] != "s1" || envs["KEEPSAKE_REQUEST"] != "r1" || envs["KEEPSAKE_JOB"] != run || run == "" ||
		!slices.Contains(job.Spec.Template.Spec.Containers[0].Command, "verify") || job.Spec.ActiveDeadlineSeconds == nil {
		t.Fatalf("verify Job: command %v env %v annotations %v", job.Spec.Template.Spec.Containers[0].Command, envs, job.Annotations)
	}

	// The runtime's verdict: the data did not read back as recorded.
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(snap), snap); err != nil {
			return false, err.Error()
		}
		snap.Status.VerificationStatus = storagev1alpha1.VerificationFailed
		snap.Status.Verification = &storagev1alpha1.SnapshotVerification{LastVerifyTime: &metav1.Time{Time: time.Now()},
			Message: "1 of 1 component(s) did not read back as recorded: dump: read back failed", Request: "r1", Job: run}
		if err := env.Client.Status().Update(ctx, snap); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	testenv.FinishJob(t, job, "")
	if note := waitSnapshotEvent(t, snap, storagev1alpha1.ReasonVerificationFailed); !strings.Contains(note, "dump: read back failed") {
		t.Errorf("Warning Event %q does not say what failed", note)
	}
	waitJobGone(t, job)

	// Asked again: a Job that fails without a verdict is recorded, once.
	patch = []byte(`{"metadata":{"annotations":{"` + storagev1alpha1.AnnotationVerify + `":"r2"}}}`)
	if err := env.Client.Patch(context.Background(), snap, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(job), job)
		return err == nil && job.Annotations[repository.AnnotationVerifyRequest] == "r2", "no verify Job for r2"
	})
	testenv.FinishJob(t, job, "BackoffLimitExceeded")
	waitJobGone(t, job)
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(snap), snap); err != nil {
		t.Fatal(err)
	}
	if v := snap.Status.Verification; v == nil || v.Request != "r2" || !strings.Contains(v.Message, "failed without a verdict: BackoffLimitExceeded") ||
		snap.Status.VerificationStatus != storagev1alpha1.VerificationFailed {
		t.Fatalf("Snapshot after a failed verify Job: %s %+v", snap.Status.VerificationStatus, v)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(job), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a verify Job again after the request was answered: %v", err)
	}
}

// waitSnapshotEvent waits for a Warning Event about snap with reason and
// returns its note.
func waitSnapshotEvent(t *testing.T, snap *storagev1alpha1.Snapshot, reason string) string {
	t.Helper()
	var note string
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := testenv.Default.Client.List(ctx, &list, client.InNamespace(snap.Namespace)); err != nil {
			return false, err.Error()
		}
		for _, ev := range list.Items {
			if ev.Regarding.Kind == "Snapshot" && ev.Regarding.Name == snap.Name && ev.Type == corev1.EventTypeWarning && ev.Reason == reason {
				note = ev.Note
				return true, ""
			}
		}
		return false, "no Warning " + reason + " about Snapshot " + snap.Name
	})
	return note
}

package repository

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

// LabelVerifyOf marks a verify Job with its Repository (shortened to fit).
const LabelVerifyOf = "storage.keepsake.dev/verify-of"

// AnnotationVerifySnapshot on a verify Job names the Snapshot it reads.
const AnnotationVerifySnapshot = "storage.keepsake.dev/verify-snapshot"

// AnnotationVerifyRequest on a verify Job is the request it answers.
const AnnotationVerifyRequest = "storage.keepsake.dev/verify-request"

// RequestVerifyEvery is the request a verification asked for by a
// BackupConfiguration's verifyEvery answers.
const RequestVerifyEvery = "verifyEvery"

// VerifyDeadline bounds a verify Job: it reads a whole Snapshot back.
const VerifyDeadline = 6 * time.Hour

// VerifyJobName is the name of the verify Job of Repository repo: one
// Snapshot at a time.
func VerifyJobName(repo string) string { return jobs.ShortName("verify-"+repo, jobs.MaxName) }

// verifySnapshots runs the verification of the Repository's Snapshots
// that ask for one: annotated keepsake.dev/verify with a request no
// verification answered yet, or every Nth successful backup of a
// BackupConfiguration with verifyEvery N that was never verified. A Job
// (`keepsake run verify`) reads one Snapshot back at a time and records
// the verdict in the Snapshot; this step tells the user when it failed
// and deletes the finished Job.
func (r *Reconciler) verifySnapshots(ctx context.Context, p *pass) (*ctrl.Result, error) {
	job, run, err := r.maintenanceJob(ctx, p, VerifyJobName(p.repo.Name))
	if !run {
		return nil, err
	}
	if job != nil {
		return nil, r.followVerify(ctx, p, job)
	}
	snap, request, err := r.nextToVerify(ctx, p)
	if snap == nil || err != nil {
		return nil, err
	}
	return nil, r.startVerify(ctx, p, snap, request)
}

// followVerify waits for a running verify Job. Once it finished and its
// verdict is in the Snapshot, a failed verdict, or a Job that failed,
// becomes a Warning Event on the Snapshot, and the Job is deleted. A Job
// that failed without a verdict gets its failure recorded first (the
// request counts as answered: the Job is not started again and again).
func (r *Reconciler) followVerify(ctx context.Context, p *pass, job *batchv1.Job) error {
	done, failed := jobs.Outcome(job)
	if done == nil && failed == nil {
		return nil
	}
	var snap storagev1alpha1.Snapshot
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: job.Annotations[AnnotationVerifySnapshot]}, &snap)
	if apierrors.IsNotFound(err) {
		return r.deleteSyncJob(ctx, job)
	}
	if err != nil {
		return err
	}
	if v := snap.Status.Verification; v == nil || v.Job != job.Annotations[AnnotationCheckRun] {
		if failed == nil {
			return nil // the verdict is not in the cache yet
		}
		return r.recordVerifyFailure(ctx, &snap, job, failed)
	}
	if failed != nil || snap.Status.VerificationStatus == storagev1alpha1.VerificationFailed {
		r.Events.Eventf(&snap, job, corev1.EventTypeWarning, storagev1alpha1.ReasonVerificationFailed, "Verify",
			"Snapshot %s/%s: %s", snap.Namespace, snap.Name, snap.Status.Verification.Message)
	}
	return r.deleteSyncJob(ctx, job)
}

// recordVerifyFailure records in snap that its verify Job failed without
// a verdict; verificationStatus keeps its value, since nothing was learnt
// about the data. Patched with optimistic locking: a Snapshot read from a
// cache that has not seen the Job's verdict must not overwrite it.
func (r *Reconciler) recordVerifyFailure(ctx context.Context, snap *storagev1alpha1.Snapshot, job *batchv1.Job, failed *batchv1.JobCondition) error {
	base := snap.DeepCopy()
	msg := fmt.Sprintf("verify Job %s failed without a verdict: %s: %s; see kubectl logs -n %s job/%s",
		job.Name, failed.Reason, failed.Message, job.Namespace, job.Name)
	snap.Status.Verification = &storagev1alpha1.SnapshotVerification{LastVerifyTime: &metav1.Time{Time: time.Now()}, Message: msg,
		Request: job.Annotations[AnnotationVerifyRequest], Job: job.Annotations[AnnotationCheckRun]}
	status.Set(&snap.Status.Conditions, snap.Generation, storagev1alpha1.ConditionVerified, false, storagev1alpha1.ReasonVerificationFailed, msg)
	if err := r.Client.Status().Patch(ctx, snap, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("record the failure of verify Job %s: %w", job.Name, err)
	}
	return nil
}

// nextToVerify picks the newest of the Repository's Snapshots that asks
// for a verification, and the request that asks.
func (r *Reconciler) nextToVerify(ctx context.Context, p *pass) (*storagev1alpha1.Snapshot, string, error) {
	every := map[string]int32{} // verifyEvery of each BackupConfiguration, 0 for none
	counts := map[string]int32{}
	var picked *storagev1alpha1.Snapshot
	var request string
	// p.snaps is newest first: count from the oldest.
	for i := len(p.snaps) - 1; i >= 0; i-- {
		snap := &p.snaps[i]
		if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded {
			continue
		}
		n, err := r.verifyEvery(ctx, snap, every)
		if err != nil {
			return nil, "", err
		}
		cfg := snap.Labels[corev1alpha1.LabelBackupConfiguration]
		counts[cfg]++
		if req := verifyRequest(snap, n, counts[cfg]); req != "" {
			picked, request = snap, req
		}
	}
	return picked, request, nil
}

// verifyRequest is the request for which snap, the count-th successful
// backup of its configuration (verifyEvery n), needs a verification, or
// "" when it needs none.
func verifyRequest(snap *storagev1alpha1.Snapshot, n, count int32) string {
	v := snap.Status.Verification
	if req := snap.Annotations[storagev1alpha1.AnnotationVerify]; req != "" && (v == nil || v.Request != req) {
		return req
	}
	if n > 0 && count%n == 0 && v == nil {
		return RequestVerifyEvery
	}
	return ""
}

// verifyEvery is the verifyEvery of snap's BackupConfiguration (0 when it
// has none, or the configuration is gone), looked up once per pass.
func (r *Reconciler) verifyEvery(ctx context.Context, snap *storagev1alpha1.Snapshot, seen map[string]int32) (int32, error) {
	name := snap.Labels[corev1alpha1.LabelBackupConfiguration]
	if name == "" {
		return 0, nil
	}
	if n, ok := seen[name]; ok {
		return n, nil
	}
	var bc corev1alpha1.BackupConfiguration
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: snap.Namespace, Name: name}, &bc)
	if client.IgnoreNotFound(err) != nil {
		return 0, fmt.Errorf("get BackupConfiguration %s/%s: %w", snap.Namespace, name, err)
	}
	seen[name] = ptr.Deref(bc.Spec.VerifyEvery, 0)
	return seen[name], nil
}

// startVerify creates the verify Job of snap, owned by the Repository.
func (r *Reconciler) startVerify(ctx context.Context, p *pass, snap *storagev1alpha1.Snapshot, request string) error {
	name := VerifyJobName(p.repo.Name)
	run := name + "@" + time.Now().UTC().Format(time.RFC3339Nano)
	fn, driverEnv, err := r.verifyDriver(ctx, snap)
	if err != nil {
		return err
	}
	job, err := r.repositoryJob(ctx, p, repositoryJob{
		name: name, label: LabelVerifyOf, command: "verify", function: fn,
		env: append([]corev1.EnvVar{
			{Name: "KEEPSAKE_SNAPSHOT_OBJECT", Value: snap.Name},
			{Name: "KEEPSAKE_JOB", Value: run},
			{Name: "KEEPSAKE_REQUEST", Value: request},
		}, driverEnv...),
		deadline: ptr.To(int64(VerifyDeadline / time.Second)),
	})
	if job == nil || err != nil {
		return err
	}
	job.Annotations = map[string]string{AnnotationVerifySnapshot: snap.Name, AnnotationVerifyRequest: request, AnnotationCheckRun: run}
	return r.createRepositoryJob(ctx, p, job, "Verify")
}

// verifyDriver is where the verify Job of snap finds the driver that
// counts its dumps again: when the backup recorded counts, the Job runs
// the image of the backup task's Function (with its runtime settings),
// which holds the driver, and KEEPSAKE_DRIVER is the task's driver path,
// as in the backup Job. Without counts the Job runs the keepsake image
// alone (fn nil). When the task cannot be found (a Snapshot from before
// spec.addon, an Addon or Function since deleted), the Job checks bytes
// only and KEEPSAKE_NO_DRIVER says why, for the verdict.
func (r *Reconciler) verifyDriver(ctx context.Context, snap *storagev1alpha1.Snapshot) (*addonsv1alpha1.Function, []corev1.EnvVar, error) {
	if !slices.ContainsFunc(slices.Collect(maps.Values(snap.Status.Components)),
		func(c storagev1alpha1.ComponentStatus) bool { return len(c.Counts) > 0 }) {
		return nil, nil, nil
	}
	noDriver := func(why string) []corev1.EnvVar { return []corev1.EnvVar{{Name: "KEEPSAKE_NO_DRIVER", Value: why}} }
	ref := snap.Spec.Addon
	if ref == nil {
		return nil, noDriver("the Snapshot does not name the Addon that took it"), nil
	}
	task, fn, err := jobs.ResolveTask(ctx, r.Client, ref.Name, ref.Task, false)
	var prob *jobs.Problem
	if errors.As(err, &prob) {
		return nil, noDriver(prob.Error()), nil
	}
	if err != nil {
		return nil, nil, err
	}
	verify := runtimeFunction(fn.Spec.Image, "verify")
	verify.Spec.RuntimeSettings = fn.Spec.RuntimeSettings
	return verify, []corev1.EnvVar{{Name: "KEEPSAKE_DRIVER", Value: task.Driver}}, nil
}

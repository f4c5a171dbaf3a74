package repository

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

// SyncInterval is how long after one sync Job finished the next starts.
const SyncInterval = time.Hour

// LabelSyncOf marks a sync Job with its Repository (shortened to fit).
const LabelSyncOf = "storage.keepsake.dev/sync-of"

// SyncJobName is the name of the sync Job of Repository repo: one at a
// time, found again by a restarted operator.
func SyncJobName(repo string) string { return jobs.ShortName("sync-"+repo, jobs.MaxName) }

// maintenanceJob finds the Repository's Job called name (sync, check or
// verify). run is false when none may run now: there is no runtime image,
// the Repository is paused, or its last such Job is still being deleted.
func (r *Reconciler) maintenanceJob(ctx context.Context, p *pass, name string) (job *batchv1.Job, run bool, err error) {
	if r.Options.Image == "" || p.repo.Spec.Paused {
		return nil, false, nil
	}
	job, err = jobs.Find(ctx, r.Client, r.APIReader, client.ObjectKey{Namespace: p.repo.Namespace, Name: name})
	if err != nil || (job != nil && !job.DeletionTimestamp.IsZero()) {
		return nil, false, err
	}
	return job, true, nil
}

// syncSnapshots keeps a sync Job running for a Ready Repository: when it
// becomes Ready, after each backup, and SyncInterval after each Job
// finished. The Job runs `keepsake run sync`, which creates a discovered
// Snapshot for every backup in the restic repository that has no Snapshot
// object and records the stored size. The operator never runs restic
// itself. One sync runs at a time: the backups that finish while it runs
// are all counted by the one sync after it.
func (r *Reconciler) syncSnapshots(ctx context.Context, p *pass) (*ctrl.Result, error) {
	job, run, err := r.maintenanceJob(ctx, p, SyncJobName(p.repo.Name))
	if !run {
		return nil, err
	}
	if job == nil {
		return nil, r.startSync(ctx, p)
	}
	r.recordSync(p, job)
	done, failed := jobs.Outcome(job)
	if (done != nil || failed != nil) && (finishedAt(job).Add(SyncInterval).Before(time.Now()) || backedUpSince(p.snaps, job)) {
		return nil, r.deleteSyncJob(ctx, job)
	}
	return nil, nil
}

// backedUpSince reports whether a backup of snaps succeeded after job was
// created: the size job recorded may not count it. Times are in seconds,
// so a backup of the same second counts as later (one sync too many, never
// one too few).
func backedUpSince(snaps []storagev1alpha1.Snapshot, job *batchv1.Job) bool {
	for _, s := range snaps {
		if s.Status.Phase == storagev1alpha1.SnapshotSucceeded && s.Status.SnapshotTime != nil &&
			!s.Status.SnapshotTime.Before(&job.CreationTimestamp) {
			return true
		}
	}
	return false
}

// deleteSyncJob deletes a finished sync Job, its pods and its settings
// ConfigMap, so that the next pass starts the next sync.
func (r *Reconciler) deleteSyncJob(ctx context.Context, job *batchv1.Job) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: job.Namespace, Name: jobs.SettingsConfigMap(job.Name)}}
	for _, o := range []client.Object{job, cm} {
		if err := r.Client.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete %s of the last sync: %w", o.GetName(), err)
		}
	}
	return nil
}

// SyncDeadline bounds a sync Job: restic's own deadlines for snapshots
// and stats are 10 minutes each, plus the wait for a lock.
const SyncDeadline = time.Hour

// startSync creates the sync Job of the Repository, owned by it.
func (r *Reconciler) startSync(ctx context.Context, p *pass) error {
	job, err := r.repositoryJob(ctx, p, repositoryJob{
		name: SyncJobName(p.repo.Name), label: LabelSyncOf, command: "sync",
		deadline: ptr.To(int64(SyncDeadline / time.Second)),
	})
	if job == nil || err != nil {
		return err
	}
	return r.createRepositoryJob(ctx, p, job, "Sync")
}

// repositoryJob describes a Job working on the whole repository.
type repositoryJob struct {
	// name of the Job; label marks it with the Repository.
	name, label string
	// command is the `keepsake run` operation.
	command string
	// env is added to the common variables.
	env []corev1.EnvVar
	// deadline is the Job's activeDeadlineSeconds.
	deadline *int64
	// function runs the command instead of the keepsake image alone (the
	// verify Job of a Snapshot with counts runs its backup's image, which
	// holds the driver); nil for the keepsake image.
	function *addonsv1alpha1.Function
}

// repositoryJob builds a Job of the Repository, owned by it, running as
// the sync ServiceAccount. It returns no Job when the repository cannot be
// resolved: the Repository's own checks report that.
func (r *Reconciler) repositoryJob(ctx context.Context, p *pass, spec repositoryJob) (*batchv1.Job, error) {
	ns := p.repo.Namespace
	repos, err := jobs.ResolveRepositories(ctx, r.Client, r.APIReader, ns, []string{p.repo.Name}, nil)
	var prob *jobs.Problem
	if errors.As(err, &prob) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := r.Options.Access.Ensure(ctx, ns, r.Options.Accounts.Sync); err != nil {
		return nil, err
	}
	fn := spec.function
	if fn == nil {
		fn = runtimeFunction(r.Options.Image, spec.command)
	}
	job, err := jobs.Build(jobs.Spec{
		Name: spec.name, Namespace: ns,
		Labels:       map[string]string{spec.label: jobs.ShortName(p.repo.Name, jobs.MaxName)},
		Function:     fn,
		RuntimeImage: r.Options.Image, InstallCommand: jobs.InstallCommand,
		ServiceAccount: r.Options.Accounts.Sync.Name,
		Secrets:        repos.Secrets,
		Env: append([]corev1.EnvVar{
			{Name: "KEEPSAKE_REPOSITORY", Value: repos.FlagValue()},
			{Name: "KEEPSAKE_REPORT_TO", Value: "kubernetes"},
			{Name: "KEEPSAKE_NAMESPACE", Value: ns},
			{Name: "KEEPSAKE_CACHE_DIR", Value: jobs.ScratchDir + "/restic-cache"},
		}, spec.env...),
		ActiveDeadlineSeconds: spec.deadline,
	})
	if err != nil {
		return nil, fmt.Errorf("build %s Job: %w", spec.command, err)
	}
	if err := controllerutil.SetControllerReference(p.repo, job, r.Client.Scheme()); err != nil {
		return nil, fmt.Errorf("own %s Job: %w", spec.command, err)
	}
	p.jobRepos = repos
	return job, nil
}

// createRepositoryJob creates job with the settings and Secret copies the
// repository needs; a refusal becomes a Warning Event of action.
func (r *Reconciler) createRepositoryJob(ctx context.Context, p *pass, job *batchv1.Job, action string) error {
	repos := p.jobRepos
	if err := repos.Attach(ctx, r.Client, p.repo, job); err != nil {
		return err
	}
	_, err := jobs.Create(ctx, r.Client, job, repos)
	var prob *jobs.Problem
	if errors.As(err, &prob) {
		r.Events.Eventf(p.repo, nil, corev1.EventTypeWarning, prob.Reason, action, "%s", prob.Error())
		return nil
	}
	return err
}

// recordSync sets the Synced condition from the sync Job's state.
func (r *Reconciler) recordSync(p *pass, job *batchv1.Job) {
	repo := p.repo
	done, failed := jobs.Outcome(job)
	ok, reason, msg := false, storagev1alpha1.ReasonSyncRunning, fmt.Sprintf("Job %s lists the restic snapshots", job.Name)
	switch {
	case failed != nil:
		reason, msg = storagev1alpha1.ReasonSyncFailed, fmt.Sprintf("Job %s failed: %s: %s; the next sync runs %s after it",
			job.Name, failed.Reason, failed.Message, SyncInterval)
	case done != nil:
		ok, reason, msg = true, storagev1alpha1.ReasonSyncSucceeded, fmt.Sprintf("Job %s created a Snapshot for every backup that had none", job.Name)
	}
	if status.Set(&repo.Status.Conditions, repo.Generation, storagev1alpha1.ConditionSynced, ok, reason, msg) && failed != nil {
		r.Events.Eventf(repo, job, corev1.EventTypeWarning, reason, "Sync", msg)
	}
}

// finishedAt is when job completed or failed.
func finishedAt(job *batchv1.Job) time.Time {
	if job.Status.CompletionTime != nil {
		return job.Status.CompletionTime.Time
	}
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed || c.Type == batchv1.JobComplete {
			return c.LastTransitionTime.Time
		}
	}
	return job.CreationTimestamp.Time
}

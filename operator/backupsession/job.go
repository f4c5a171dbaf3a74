package backupsession

import (
	"context"
	"errors"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
)

// ensureJob finds the session's Job or creates it. The name is
// deterministic and the Job is looked up past the cache first, so a
// session has one Job whatever restarts happen.
func (r *Reconciler) ensureJob(ctx context.Context, p *pass) (*ctrl.Result, error) {
	found, err := r.findJob(ctx, p.bks)
	if err != nil {
		return nil, err
	}
	if found != nil {
		return r.adoptJob(p, found), nil
	}
	job, repos, err := r.buildJob(ctx, p)
	if err == nil {
		// A Job the API server refuses is a *jobs.Problem too.
		_, err = jobs.Create(ctx, r.Client, job, repos)
	}
	var prob *jobs.Problem
	if errors.As(err, &prob) {
		r.setCondition(p, corev1alpha1.ConditionBackupJobCreated, false, prob.Reason, prob.Error())
		return r.fail(p, prob.Reason, prob.Err), nil
	}
	if err != nil {
		return nil, err
	}
	p.job = job
	r.markRunning(p)
	return nil, nil
}

// adoptJob follows the session's existing Job, which a pass whose status
// patch was lost may have created. A Job of that name that belongs to
// something else (e.g. a RestoreSession or a user's Job of the same name)
// fails the session rather than being followed, as restoresession does.
func (r *Reconciler) adoptJob(p *pass, job *batchv1.Job) *ctrl.Result {
	if !metav1.IsControlledBy(job, p.bks) {
		err := fmt.Errorf("job %s already exists and does not belong to this BackupSession: create the BackupSession under another name", job.Name)
		r.setCondition(p, corev1alpha1.ConditionBackupJobCreated, false, corev1alpha1.ReasonJobCreationFailed, err.Error())
		return r.fail(p, corev1alpha1.ReasonJobCreationFailed, err)
	}
	p.job = job
	r.markRunning(p)
	return nil
}

// findJob returns the session's Job, or nil when there is none yet.
func (r *Reconciler) findJob(ctx context.Context, bks *corev1alpha1.BackupSession) (*batchv1.Job, error) {
	return r.getJob(ctx, bks.Namespace, JobName(bks.Name))
}

// getJob returns a Job, or nil when there is none. It looks past the cache
// too, which may not hold a Job created just before a restart.
func (r *Reconciler) getJob(ctx context.Context, ns, name string) (*batchv1.Job, error) {
	return jobs.Find(ctx, r.Client, r.APIReader, client.ObjectKey{Namespace: ns, Name: name})
}

// markRunning records the Job in the status.
func (r *Reconciler) markRunning(p *pass) {
	bks := p.bks
	bks.Status.Phase = corev1alpha1.BackupSessionRunning
	bks.Status.Job = p.job.Name
	if bks.Status.StartTime == nil {
		bks.Status.StartTime = &p.now
	}
	r.setCondition(p, corev1alpha1.ConditionBackupJobCreated, true, corev1alpha1.ReasonJobCreated,
		fmt.Sprintf("Job %s runs the backup", p.job.Name))
}

// buildJob assembles the Job of the session's task. A *problem error is
// the user's to fix.
func (r *Reconciler) buildJob(ctx context.Context, p *pass) (*batchv1.Job, *jobs.Repositories, error) {
	if len(p.session.Addon.Tasks) == 0 {
		return nil, nil, jobs.NewProblem(corev1alpha1.ReasonTaskNotFound, "session %s names no addon task", p.session.Name)
	}
	if n := len(p.session.Addon.Tasks); n > 1 {
		// The schema allows one task since tasks beyond the first were
		// silently skipped; an object stored before says so, not skips.
		return nil, nil, jobs.NewProblem(corev1alpha1.ReasonTooManyTasks,
			"session %s names %d addon tasks, but a session runs exactly one: give each task its own session", p.session.Name, n)
	}
	ref := p.session.Addon.Tasks[0]
	task, fn, err := jobs.ResolveTask(ctx, r.Client, p.session.Addon.Name, ref.Name, false)
	if err != nil {
		return nil, nil, err
	}
	repos, err := jobs.ResolveRepositories(ctx, r.Client, r.APIReader, p.bks.Namespace, p.repos, nil)
	if err != nil {
		return nil, nil, err
	}
	vars := jobs.TaskVars(task, ref.Params)
	var volume *targetVolume
	if task.MountsTargetVolume {
		if volume, err = r.resolveTargetVolume(ctx, p); err != nil {
			return nil, nil, err
		}
		vars["targetDir"] = jobs.TargetDir
	}
	secrets, secretEnv := jobs.SecretParams(task, vars)
	if err := r.Options.Access.Ensure(ctx, p.bks.Namespace, r.Options.Accounts.Backup); err != nil {
		return nil, nil, err
	}
	job, err := jobs.Build(jobs.Spec{
		Name:                  JobName(p.bks.Name),
		Namespace:             p.bks.Namespace,
		Labels:                labels(p.bks),
		Function:              fn,
		Vars:                  vars,
		RuntimeImage:          r.Options.Image,
		InstallCommand:        jobs.InstallCommand,
		ServiceAccount:        r.Options.Accounts.Backup.Name,
		Secrets:               append(repos.Secrets, secrets...),
		Env:                   append(runtimeEnv(p, ref.Name, repos), secretEnv...),
		ActiveDeadlineSeconds: deadline(p.session),
	})
	if err != nil {
		return nil, nil, jobs.NewProblem(corev1alpha1.ReasonJobCreationFailed, "build Job: %v", err)
	}
	if volume != nil {
		jobs.MountTargetVolume(job, volume.PVC, volume.Node)
	}
	if err := repos.Attach(ctx, r.Client, p.bks, job); err != nil {
		return nil, nil, err
	}
	if err := controllerutil.SetControllerReference(p.bks, job, r.Client.Scheme()); err != nil {
		return nil, nil, fmt.Errorf("own Job %s: %w", job.Name, err)
	}
	return job, repos, nil
}

// deadline is the Job's activeDeadlineSeconds: the session's backupTimeout,
// DefaultBackupTimeout when unset, so no backup Job runs forever.
func deadline(s *corev1alpha1.Session) *int64 {
	return ptr.To(int64(max(s.Timeout().Seconds(), 1)))
}

// runtimeEnv is the KEEPSAKE_* environment `keepsake run backup` reads: the
// component, session, target and repositories. No value is secret: secrets
// are files the repository specs point at.
func runtimeEnv(p *pass, component string, repos *jobs.Repositories) []corev1.EnvVar {
	target := p.bc.Spec.Target
	if target.Namespace == "" {
		target.Namespace = p.bc.Namespace
	}
	return []corev1.EnvVar{
		{Name: "KEEPSAKE_COMPONENT", Value: component},
		{Name: "KEEPSAKE_SESSION", Value: p.bks.Spec.Session},
		{Name: "KEEPSAKE_CONFIGURATION", Value: p.bks.Spec.BackupConfiguration},
		{Name: "KEEPSAKE_TARGET_GROUP", Value: target.APIGroup},
		{Name: "KEEPSAKE_TARGET_KIND", Value: target.Kind},
		{Name: "KEEPSAKE_TARGET_NAME", Value: target.Name},
		{Name: "KEEPSAKE_TARGET_NAMESPACE", Value: target.Namespace},
		{Name: "KEEPSAKE_REPOSITORY", Value: repos.FlagValue()},
		{Name: "KEEPSAKE_CACHE_DIR", Value: jobs.ScratchDir + "/restic-cache"},
		{Name: "KEEPSAKE_REPORT_TO", Value: "kubernetes"},
		{Name: "KEEPSAKE_NAMESPACE", Value: p.bks.Namespace},
		{Name: "KEEPSAKE_BACKUP_SESSION", Value: p.bks.Name},
	}
}

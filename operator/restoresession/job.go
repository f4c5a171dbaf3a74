package restoresession

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
)

// annotationSnapshot on a restore Job names the Snapshot it restores, so a
// restarted operator that adopts the Job can still fill in the status.
const annotationSnapshot = "core.keepsake.dev/snapshot"

// JobName is the name of a RestoreSession's Job. It is deterministic, so a
// restarted operator finds the Job instead of starting a second one.
func JobName(rs string) string { return jobs.ShortName(rs, jobs.MaxName) }

// labelValue is the value of the LabelRestoreSession label of the objects
// of RestoreSession rs: its name, shortened as JobName shortens it when it
// is longer than a label value may be.
func labelValue(rs string) string { return JobName(rs) }

// findJob returns the RestoreSession's Job, or nil when there is none yet.
func (r *Reconciler) findJob(ctx context.Context, rs *corev1alpha1.RestoreSession) (*batchv1.Job, error) {
	return jobs.Find(ctx, r.Client, r.APIReader, client.ObjectKey{Namespace: rs.Namespace, Name: JobName(rs.Name)})
}

// adoptJob takes over the RestoreSession's existing Job, which may have been
// created by a pass whose status patch was lost. A Job of that name that
// belongs to something else (e.g. a BackupSession of the same name) fails
// the restore rather than being followed.
func (r *Reconciler) adoptJob(job *batchv1.Job) step {
	return func(_ context.Context, p *pass) (*ctrl.Result, error) {
		if !metav1.IsControlledBy(job, p.rs) {
			return r.fail(p, corev1alpha1.ReasonJobCreationFailed,
				fmt.Errorf("job %s already exists and does not belong to this RestoreSession: create the RestoreSession under another name", job.Name)), nil
		}
		p.job = job
		p.component = envValue(job, "KEEPSAKE_COMPONENT")
		if p.rs.Status.Snapshot == "" {
			p.rs.Status.Snapshot = job.Annotations[annotationSnapshot]
		}
		r.markRunning(p)
		return nil, nil
	}
}

// ensureJob creates the RestoreSession's Job.
func (r *Reconciler) ensureJob(ctx context.Context, p *pass) (*ctrl.Result, error) {
	job, repos, err := r.buildJob(ctx, p, JobName(p.rs.Name), "")
	var prob *jobs.Problem
	if errors.As(err, &prob) {
		return r.invalid(p, corev1alpha1.ConditionRestoreJobCreated, prob.Reason, prob.Err), nil
	}
	if err != nil {
		return nil, err
	}
	exists, err := jobs.Create(ctx, r.Client, job, repos)
	if errors.As(err, &prob) {
		// Retrying cannot help a Job the API server refuses: say why.
		return r.fail(p, prob.Reason, prob.Err), nil
	}
	if err != nil {
		return nil, err
	}
	if exists {
		// Created meanwhile, or not ours: the next pass reads it and
		// adopts it only if it is this RestoreSession's.
		return &ctrl.Result{RequeueAfter: time.Second}, nil
	}
	p.job = job
	r.markRunning(p)
	return nil, nil
}

// markRunning records the Job and the component in the status.
func (r *Reconciler) markRunning(p *pass) {
	st := &p.rs.Status
	st.Phase = corev1alpha1.RestoreRunning
	st.Job = p.job.Name
	if p.component != "" {
		st.TotalComponents = 1
		if _, ok := st.Components[p.component]; !ok {
			if st.Components == nil {
				st.Components = map[string]corev1alpha1.RestoreComponentStatus{}
			}
			st.Components[p.component] = corev1alpha1.RestoreComponentStatus{Phase: storagev1alpha1.ComponentPending}
		}
	}
	r.setCondition(p, corev1alpha1.ConditionRestoreJobCreated, true, corev1alpha1.ReasonJobCreated,
		fmt.Sprintf("Job %s restores component %s of Snapshot %s", p.job.Name, p.component, st.Snapshot))
}

// buildJob assembles Job name of the RestoreSession's first task; an
// offline restore's Job mounts pvc at TargetDir. A *jobs.Problem error is
// the user's to fix.
func (r *Reconciler) buildJob(ctx context.Context, p *pass, name, pvc string) (*batchv1.Job, *jobs.Repositories, error) {
	rs := p.rs
	if len(rs.Spec.Addon.Tasks) == 0 {
		return nil, nil, jobs.NewProblem(corev1alpha1.ReasonTaskNotFound, "addon.tasks names no restore task")
	}
	ref := rs.Spec.Addon.Tasks[0]
	task, fn, err := jobs.ResolveTask(ctx, r.Client, rs.Spec.Addon.Name, ref.Name, true)
	if err != nil {
		return nil, nil, err
	}
	vars := jobs.TaskVars(task, ref.Params)
	if pvc != "" {
		vars["targetDir"] = TargetDir
	}
	if err := checkParams(task, ref.Params, vars); err != nil {
		return nil, nil, err
	}
	repos, err := jobs.ResolveRepositories(ctx, r.Client, r.APIReader, rs.Namespace,
		[]string{rs.Spec.DataSource.Repository.Name}, rs.Spec.DataSource.EncryptionSecret)
	if err != nil {
		return nil, nil, err
	}
	secrets, secretEnv := jobs.SecretParams(task, vars)
	if err := r.Options.Access.Ensure(ctx, rs.Namespace, r.Options.Accounts.Restore); err != nil {
		return nil, nil, err
	}
	job, err := jobs.Build(jobs.Spec{
		Name:                  name,
		Namespace:             rs.Namespace,
		Labels:                map[string]string{corev1alpha1.LabelRestoreSession: labelValue(rs.Name)},
		Function:              fn,
		Vars:                  vars,
		RuntimeImage:          r.Options.Image,
		InstallCommand:        jobs.InstallCommand,
		ServiceAccount:        r.Options.Accounts.Restore.Name,
		Secrets:               append(repos.Secrets, secrets...),
		Env:                   append(runtimeEnv(p, repos), secretEnv...),
		ActiveDeadlineSeconds: deadline(rs),
	})
	if err != nil {
		return nil, nil, jobs.NewProblem(corev1alpha1.ReasonJobCreationFailed, "build Job: %v", err)
	}
	job.Annotations = map[string]string{annotationSnapshot: p.snapshot.Name}
	if pvc != "" {
		mountPVC(job, pvc)
	}
	if err := repos.Attach(ctx, r.Client, rs, job); err != nil {
		return nil, nil, err
	}
	if err := controllerutil.SetControllerReference(rs, job, r.Client.Scheme()); err != nil {
		return nil, nil, fmt.Errorf("own Job %s: %w", job.Name, err)
	}
	return job, repos, nil
}

// checkParams rejects params the task does not define (most likely a typo
// that would silently do nothing) and required parameters with no value.
func checkParams(task *addonsv1alpha1.Task, params, vars map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if !slices.ContainsFunc(task.Parameters, func(d addonsv1alpha1.ParameterDefinition) bool { return d.Name == name }) {
			valid := make([]string, 0, len(task.Parameters))
			for _, d := range task.Parameters {
				valid = append(valid, d.Name)
			}
			return jobs.NewProblem(corev1alpha1.ReasonUnknownParameter, "restore task %s has no parameter %s; its parameters are: %s",
				task.Name, name, listOrNone(valid))
		}
	}
	for _, def := range task.Parameters {
		if def.Required && vars[def.Name] == "" {
			return jobs.NewProblem(corev1alpha1.ReasonMissingRequiredParameter,
				"restore task %s needs parameter %s: set it in addon.tasks[0].params", task.Name, def.Name)
		}
	}
	return nil
}

// deadline is the Job's activeDeadlineSeconds: the restoreTimeout,
// DefaultRestoreTimeout when unset, so no restore Job runs forever.
func deadline(rs *corev1alpha1.RestoreSession) *int64 {
	return ptr.To(int64(max(rs.Timeout().Seconds(), 1)))
}

// runtimeEnv is the KEEPSAKE_* environment `keepsake run restore` reads:
// the component and restic snapshot, the target, the repository and where
// to report. No value is secret: secrets are files the repository spec
// points at.
func runtimeEnv(p *pass, repos *jobs.Repositories) []corev1.EnvVar {
	target := p.rs.Spec.Target
	if target.Namespace == "" {
		target.Namespace = p.rs.Namespace
	}
	return []corev1.EnvVar{
		{Name: "KEEPSAKE_COMPONENT", Value: p.component},
		{Name: "KEEPSAKE_SNAPSHOT", Value: p.resticID},
		{Name: "KEEPSAKE_TARGET_GROUP", Value: target.APIGroup},
		{Name: "KEEPSAKE_TARGET_KIND", Value: target.Kind},
		{Name: "KEEPSAKE_TARGET_NAME", Value: target.Name},
		{Name: "KEEPSAKE_TARGET_NAMESPACE", Value: target.Namespace},
		{Name: "KEEPSAKE_REPOSITORY", Value: repos.FlagValue()},
		{Name: "KEEPSAKE_CACHE_DIR", Value: jobs.ScratchDir + "/restic-cache"},
		{Name: "KEEPSAKE_REPORT_TO", Value: "kubernetes"},
		{Name: "KEEPSAKE_NAMESPACE", Value: p.rs.Namespace},
		{Name: "KEEPSAKE_RESTORE_SESSION", Value: p.rs.Name},
	}
}

// envValue is the value of variable name in the Job's task container.
func envValue(job *batchv1.Job, name string) string {
	for _, c := range job.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == name {
				return e.Value
			}
		}
	}
	return ""
}

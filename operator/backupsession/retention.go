package backupsession

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/sessionrepo"
)

// LabelRetentionOf names the BackupSession after which a retention Job runs.
const LabelRetentionOf = "core.keepsake.dev/retention-of"

// RetentionCommand is what a retention Job runs, in the keepsake image.
var RetentionCommand = []string{"/usr/local/bin/keepsake", "run", "retention"}

// RetentionJobName is the name of the retention Job of session bks for
// repository repo.
func RetentionJobName(bks, repo string) string {
	return jobs.ShortName(bks+"-retention-"+repo, jobs.MaxName)
}

// resolveFinished finds the configuration and session of a finished
// BackupSession; without them there is no retention to apply.
func (r *Reconciler) resolveFinished(ctx context.Context, p *pass) (*ctrl.Result, error) {
	var bc corev1alpha1.BackupConfiguration
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.bks.Namespace, Name: p.bks.Spec.BackupConfiguration}, &bc)
	if apierrors.IsNotFound(err) {
		return &ctrl.Result{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get BackupConfiguration %s: %w", p.bks.Spec.BackupConfiguration, err)
	}
	p.bc = &bc
	for i := range bc.Spec.Sessions {
		if bc.Spec.Sessions[i].Name == p.bks.Spec.Session {
			p.session = &bc.Spec.Sessions[i]
		}
	}
	if p.session == nil {
		return &ctrl.Result{}, nil
	}
	names, err := r.sessionRepositories(ctx, p)
	var conflict *sessionrepo.ConflictError
	if errors.As(err, &conflict) {
		// The configuration reports it; a finished session stays as it ended.
		return &ctrl.Result{}, nil
	}
	if err != nil {
		return nil, err
	}
	p.repos = names
	return nil, nil
}

// applyRetention applies each repository's RetentionPolicy once the
// session ended: Failed Snapshot objects beyond failedSnapshots.last are
// deleted (they hold no data), and after a success one Job per repository
// runs `keepsake run retention`, which forgets and prunes restic snapshots
// and deletes the Snapshot objects of those it forgot. The RetentionApplied
// condition follows the Jobs.
func (r *Reconciler) applyRetention(ctx context.Context, p *pass) (*ctrl.Result, error) {
	if p.bks.Status.Phase == corev1alpha1.BackupSessionSkipped {
		return nil, nil
	}
	var running, failed, done []string
	for i, ri := range p.session.Repositories {
		repo := p.repos[i]
		policy, err := r.retentionPolicy(ctx, p, ri.Backend)
		if err != nil {
			failed = append(failed, fmt.Sprintf("repository %s: %v", repo, err))
			continue
		}
		if policy == nil {
			continue
		}
		if err := r.pruneFailedSnapshots(ctx, p, repo, policy.Spec.FailedSnapshots); err != nil {
			return nil, err
		}
		if p.bks.Status.Phase != corev1alpha1.BackupSessionSucceeded || len(keepEnv(&policy.Spec)) == 0 {
			continue
		}
		job, err := r.ensureRetentionJob(ctx, p, repo, &policy.Spec)
		var prob *jobs.Problem
		if errors.As(err, &prob) {
			failed = append(failed, fmt.Sprintf("repository %s: %v", repo, prob))
			continue
		}
		if err != nil {
			return nil, err
		}
		switch complete, fail := jobs.Outcome(job); {
		case fail != nil:
			failed = append(failed, fmt.Sprintf("repository %s: Job %s failed: %s", repo, job.Name, fail.Message))
		case complete != nil:
			done = append(done, repo)
		default:
			running = append(running, repo)
		}
	}
	switch {
	case len(failed) > 0:
		r.setCondition(p, corev1alpha1.ConditionRetentionApplied, false, corev1alpha1.ReasonRetentionFailed, strings.Join(failed, "; "))
	case len(running) > 0:
		r.setCondition(p, corev1alpha1.ConditionRetentionApplied, false, corev1alpha1.ReasonRetentionRunning,
			"retention Jobs are running for "+strings.Join(running, ", "))
	case len(done) > 0:
		r.setCondition(p, corev1alpha1.ConditionRetentionApplied, true, corev1alpha1.ReasonRetentionSucceeded,
			"retention applied to "+strings.Join(done, ", "))
	}
	return nil, nil
}

// retentionPolicy returns the RetentionPolicy of a backend, nil when it
// names none.
func (r *Reconciler) retentionPolicy(ctx context.Context, p *pass, backend string) (*storagev1alpha1.RetentionPolicy, error) {
	var ref *storagev1alpha1.ObjectReference
	for _, b := range p.bc.Spec.Backends {
		if b.Name == backend {
			ref = b.RetentionPolicy
		}
	}
	if ref == nil {
		return nil, nil
	}
	ns := ref.Namespace
	if ns == "" {
		ns = p.bc.Namespace
	}
	var policy storagev1alpha1.RetentionPolicy
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, &policy); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("RetentionPolicy %s/%s not found", ns, ref.Name)
		}
		return nil, fmt.Errorf("get RetentionPolicy %s/%s: %w", ns, ref.Name, err)
	}
	return &policy, nil
}

// pruneFailedSnapshots deletes the oldest Failed Snapshots of a repository
// beyond keep.last. They hold no restic data, so nothing is forgotten.
func (r *Reconciler) pruneFailedSnapshots(ctx context.Context, p *pass, repo string, keep *storagev1alpha1.FailedSnapshotsKeepPolicy) error {
	if keep == nil || keep.Last == nil {
		return nil
	}
	var list storagev1alpha1.SnapshotList
	if err := r.Client.List(ctx, &list, client.InNamespace(p.bks.Namespace)); err != nil {
		return fmt.Errorf("list Snapshots: %w", err)
	}
	var failed []storagev1alpha1.Snapshot
	for _, s := range list.Items {
		if s.Spec.Repository == repo && s.Status.Phase == storagev1alpha1.SnapshotFailed && s.DeletionTimestamp.IsZero() {
			failed = append(failed, s)
		}
	}
	sort.Slice(failed, func(i, j int) bool {
		a, b := failed[i].CreationTimestamp, failed[j].CreationTimestamp
		if a.Equal(&b) {
			return failed[i].Name > failed[j].Name
		}
		return b.Before(&a)
	})
	for i := int(*keep.Last); i < len(failed); i++ {
		if err := r.Client.Delete(ctx, &failed[i]); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete Failed Snapshot %s: %w", failed[i].Name, err)
		}
	}
	return nil
}

// keepEnv turns a policy's successful-snapshot rules into the retention
// runtime's KEEPSAKE_KEEP_* variables; none means keep everything.
func keepEnv(spec *storagev1alpha1.RetentionPolicySpec) []corev1.EnvVar {
	var env []corev1.EnvVar
	if s := spec.SuccessfulSnapshots; s != nil {
		for _, k := range []struct {
			name string
			n    *int32
		}{
			{"KEEPSAKE_KEEP_LAST", s.Last}, {"KEEPSAKE_KEEP_HOURLY", s.Hourly}, {"KEEPSAKE_KEEP_DAILY", s.Daily},
			{"KEEPSAKE_KEEP_WEEKLY", s.Weekly}, {"KEEPSAKE_KEEP_MONTHLY", s.Monthly}, {"KEEPSAKE_KEEP_YEARLY", s.Yearly},
		} {
			// 0 keeps nothing by that rule: leave it to the others.
			if k.n != nil && *k.n > 0 {
				env = append(env, corev1.EnvVar{Name: k.name, Value: strconv.Itoa(int(*k.n))})
			}
		}
	}
	if spec.MaxRetentionPeriod != "" {
		env = append(env, corev1.EnvVar{Name: "KEEPSAKE_KEEP_WITHIN", Value: spec.MaxRetentionPeriod})
	}
	return env
}

// ensureRetentionJob finds or creates the retention Job of one repository.
func (r *Reconciler) ensureRetentionJob(ctx context.Context, p *pass, repo string, spec *storagev1alpha1.RetentionPolicySpec) (*batchv1.Job, error) {
	name := RetentionJobName(p.bks.Name, repo)
	found, err := r.getJob(ctx, p.bks.Namespace, name)
	if err != nil || found != nil {
		return found, err
	}
	repos, err := jobs.ResolveRepositories(ctx, r.Client, r.APIReader, p.bks.Namespace, []string{repo}, nil)
	if err != nil {
		return nil, err
	}
	if err := r.Options.Access.Ensure(ctx, p.bks.Namespace, r.Options.Accounts.Retention); err != nil {
		return nil, err
	}
	env := append([]corev1.EnvVar{
		{Name: "KEEPSAKE_REPOSITORY", Value: repos.FlagValue()},
		{Name: "KEEPSAKE_CACHE_DIR", Value: jobs.ScratchDir + "/restic-cache"},
		{Name: "KEEPSAKE_REPORT_TO", Value: "kubernetes"},
		{Name: "KEEPSAKE_NAMESPACE", Value: p.bks.Namespace},
		// The policy applies to this session's snapshots only.
		{Name: "KEEPSAKE_SESSION", Value: p.bks.Spec.Session},
		{Name: "KEEPSAKE_CONFIGURATION", Value: p.bks.Spec.BackupConfiguration},
	}, keepEnv(spec)...)
	job, err := jobs.Build(jobs.Spec{
		Name:      name,
		Namespace: p.bks.Namespace,
		Labels: map[string]string{
			corev1alpha1.LabelBackupConfiguration: p.bks.Spec.BackupConfiguration,
			corev1alpha1.LabelSession:             p.bks.Spec.Session,
			LabelRetentionOf:                      p.bks.Name,
		},
		Function: &addonsv1alpha1.Function{
			ObjectMeta: metav1.ObjectMeta{Name: "keepsake-retention"},
			Spec:       addonsv1alpha1.FunctionSpec{Image: r.Options.Image, Command: RetentionCommand},
		},
		RuntimeImage:   r.Options.Image,
		InstallCommand: jobs.InstallCommand,
		ServiceAccount: r.Options.Accounts.Retention.Name,
		Secrets:        repos.Secrets,
		Env:            env,
		// A hung storage endpoint must not hold the repository (and the
		// session's history) forever: retention gets the session's
		// deadline, backupTimeout or its default.
		ActiveDeadlineSeconds: deadline(p.session),
	})
	if err != nil {
		return nil, fmt.Errorf("build retention Job: %w", err)
	}
	if err := repos.Attach(ctx, r.Client, p.bks, job); err != nil {
		return nil, err
	}
	if err := controllerutil.SetControllerReference(p.bks, job, r.Client.Scheme()); err != nil {
		return nil, fmt.Errorf("own Job %s: %w", job.Name, err)
	}
	if _, err := jobs.Create(ctx, r.Client, job, repos); err != nil {
		return nil, err
	}
	r.Events.Eventf(p.bks, job, corev1.EventTypeNormal, corev1alpha1.ReasonRetentionJobCreated, "Retention",
		"Job %s applies the retention policy to repository %s", job.Name, repo)
	return job, nil
}

package snapshot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

const (
	// LabelForgetOf marks a forget Job and its pod with the Snapshot it
	// forgets (its name, shortened like JobName when longer than a label
	// value may be).
	LabelForgetOf = "storage.keepsake.dev/forget-of"
	// AnnotationForgetOf holds the full name of that Snapshot.
	AnnotationForgetOf = "storage.keepsake.dev/forget-of"

	// maxLabel is the longest label value, and Job name: the Job
	// controller copies the name into a label of the pods.
	maxLabel = 63
)

// JobName is the name of the Job forgetting Snapshot snap. It is
// deterministic, so a restarted operator finds the Job instead of starting
// a second one, and differs from the BackupSession Jobs' names.
func JobName(snap string) string {
	return jobs.ShortName("forget-"+snap, maxLabel)
}

// ensureJob finds the Snapshot's forget Job or creates it.
//
// When the Snapshot's Repository or BackupStorage cannot be resolved (a
// jobs.Problem, such as a deleted BackupStorage), the Snapshot is released
// with a Warning Event and its restic snapshots stay where they are. Waiting
// instead would block the deletion of the Snapshot, and of its namespace,
// until a user recreated the storage: a few unreferenced snapshots in a
// bucket are the lesser harm, and the Event says which.
// ForgetDeadline bounds a forget Job: restic's own deadlines are 10
// minutes for forget and 3 hours for prune, plus the wait for a lock.
const ForgetDeadline = 4 * time.Hour

func (r *Reconciler) ensureJob(ctx context.Context, p *pass) (*ctrl.Result, error) {
	found, err := r.findJob(ctx, p.snap.Namespace, JobName(p.snap.Name))
	if err != nil {
		return nil, err
	}
	if found != nil {
		if !found.DeletionTimestamp.IsZero() {
			// The failed attempt is still going away.
			return &ctrl.Result{RequeueAfter: time.Second}, nil
		}
		p.job = found
		return nil, nil
	}
	job, repos, err := r.buildJob(ctx, p)
	exists := false
	if err == nil {
		exists, err = jobs.Create(ctx, r.Client, job, repos)
	}
	var prob *jobs.Problem
	if errors.As(err, &prob) {
		p.release = true
		r.Events.Eventf(p.snap, nil, corev1.EventTypeWarning, prob.Reason, "Forget",
			"cannot forget restic snapshot(s) %v, so they stay in the storage: %v", p.ids, prob.Err)
		return &ctrl.Result{}, nil
	}
	if err != nil {
		return nil, err
	}
	if exists {
		// Made by a pass the cache and the API reader had not seen yet.
		return &ctrl.Result{RequeueAfter: time.Second}, nil
	}
	p.job = job
	return nil, nil
}

// findJob returns Job name, or nil when there is none.
func (r *Reconciler) findJob(ctx context.Context, ns, name string) (*batchv1.Job, error) {
	return jobs.Find(ctx, r.Client, r.APIReader, client.ObjectKey{Namespace: ns, Name: name})
}

// buildJob assembles the forget Job: the keepsake runtime itself is the
// task, given the repository and the restic snapshot IDs. A *jobs.Problem
// is the user's to fix.
func (r *Reconciler) buildJob(ctx context.Context, p *pass) (*batchv1.Job, *jobs.Repositories, error) {
	ns := p.snap.Namespace
	repos, err := jobs.ResolveRepositories(ctx, r.Client, r.APIReader, ns, []string{p.snap.Spec.Repository}, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := r.Options.Access.Ensure(ctx, ns, r.Options.Accounts.Forget); err != nil {
		return nil, nil, err
	}
	job, err := jobs.Build(jobs.Spec{
		Name:           JobName(p.snap.Name),
		Namespace:      ns,
		Labels:         map[string]string{LabelForgetOf: jobs.ShortName(p.snap.Name, maxLabel)},
		Function:       forgetFunction(r.Options.Image),
		RuntimeImage:   r.Options.Image,
		InstallCommand: jobs.InstallCommand,
		ServiceAccount: r.Options.Accounts.Forget.Name,
		NoToken:        !r.Options.Accounts.Forget.NeedsToken(),
		// A hung storage endpoint must not hold the Snapshot's deletion
		// forever: the Job ends, failed, and the Snapshot says so.
		ActiveDeadlineSeconds: ptr.To(int64(ForgetDeadline / time.Second)),
		Secrets:               repos.Secrets,
		Env: []corev1.EnvVar{
			{Name: "KEEPSAKE_REPOSITORY", Value: repos.FlagValue()},
			{Name: "KEEPSAKE_SNAPSHOT_ID", Value: strings.Join(p.ids, "\n")},
			{Name: "KEEPSAKE_CACHE_DIR", Value: jobs.ScratchDir + "/restic-cache"},
			// Reports a wait for a lock on the Snapshot, and asks about
			// the pods that locks name.
			{Name: "KEEPSAKE_REPORT_TO", Value: "kubernetes"},
			{Name: "KEEPSAKE_NAMESPACE", Value: ns},
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("build forget Job: %w", err)
	}
	// The Snapshot being deleted does not own the Job: a foreground
	// deletion of the Snapshot would delete the Job it waits for.
	job.Annotations = map[string]string{AnnotationForgetOf: p.snap.Name}
	// The settings belong to the Repository for the same reason; they are
	// deleted with the Job.
	if err := repos.Attach(ctx, r.Client, p.repo, job); err != nil {
		return nil, nil, err
	}
	return job, repos, nil
}

// forgetFunction is the container of a forget Job: the runtime the init
// container copied, from the keepsake image itself.
func forgetFunction(image string) *addonsv1alpha1.Function {
	return &addonsv1alpha1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: "keepsake-forget"},
		Spec: addonsv1alpha1.FunctionSpec{
			Image:   image,
			Command: []string{jobs.RuntimeDir + "/keepsake", "run", "forget"},
		},
	}
}

// trackJob releases the Snapshot once its Job completed, and retries a
// failed Job after a delay.
func (r *Reconciler) trackJob(ctx context.Context, p *pass) (*ctrl.Result, error) {
	done, failed := jobs.Outcome(p.job)
	if failed != nil {
		return r.retryLater(ctx, p, failed)
	}
	if done == nil {
		r.setCondition(p, ReasonForgetRunning,
			fmt.Sprintf("Job %s forgets restic snapshot(s) %v", p.job.Name, p.ids))
		return &ctrl.Result{}, nil
	}
	p.release = true
	r.Events.Eventf(p.snap, p.job, corev1.EventTypeNormal, ReasonForgotten, "Forget",
		"Job %s forgot restic snapshot(s) %v", p.job.Name, p.ids)
	return &ctrl.Result{}, nil
}

// retryLater records a failed attempt and, once its delay has passed,
// deletes the Job so that the next pass starts a new one. The failed Job
// stays meanwhile, so its pod's logs can be read.
func (r *Reconciler) retryLater(ctx context.Context, p *pass, failed *batchv1.JobCondition) (*ctrl.Result, error) {
	failedAt := failed.LastTransitionTime.Time
	if failedAt.IsZero() {
		failedAt = p.now
	}
	retryAt := failedAt.Add(retryDelay(p.snap.Status.Conditions, failedAt))
	r.setCondition(p, ReasonForgetFailed, fmt.Sprintf("forget Job %s failed: %s: %s; next attempt at %s",
		p.job.Name, failed.Reason, failed.Message, retryAt.UTC().Format(time.RFC3339)))
	if wait := retryAt.Sub(p.now); wait > 0 {
		return &ctrl.Result{RequeueAfter: wait}, nil
	}
	if err := r.deleteJob(ctx, p.snap.Namespace, p.job.Name); err != nil {
		return nil, err
	}
	return &ctrl.Result{RequeueAfter: time.Second}, nil
}

// retryDelay is how long to wait after an attempt that failed at failedAt:
// as long as forgetting has been failing (since the Forgotten condition
// turned False), kept between status.MinBackoff and maxRetryDelay, so that
// attempts thin out the longer a problem lasts and never stop.
func retryDelay(conds []metav1.Condition, failedAt time.Time) time.Duration {
	var failing time.Duration
	if c := meta.FindStatusCondition(conds, ConditionForgotten); c != nil {
		failing = failedAt.Sub(c.LastTransitionTime.Time)
	}
	return min(max(failing, status.MinBackoff), maxRetryDelay)
}

// deleteJob deletes forget Job name, its pods and its settings ConfigMap.
func (r *Reconciler) deleteJob(ctx context.Context, ns, name string) error {
	owned := []client.Object{
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: jobs.SettingsConfigMap(name)}},
	}
	for _, o := range owned {
		err := r.Client.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// cleanUp deletes the forget Job of a Snapshot that is gone, when one is
// left: the Snapshot was released before its Job could be deleted.
func (r *Reconciler) cleanUp(ctx context.Context, ns, snap string) error {
	var job batchv1.Job
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: JobName(snap)}, &job)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Job %s: %w", JobName(snap), err)
	}
	if job.Annotations[AnnotationForgetOf] != snap {
		return nil
	}
	return r.deleteJob(ctx, ns, job.Name)
}

package backupsession

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

// checkConcurrency decides, before a session starts, whether it may run
// beside the other unfinished runs of the same session, as the scheduler's
// concurrencyPolicy says. The siblings are read from the API server, not
// the cache, and the decision depends only on what is stored, so that it
// holds for a burst of sessions created at once and across restarts:
//   - Forbid: the oldest unfinished run wins; any other is Skipped.
//   - Replace: the newest run wins; older unfinished runs are stopped
//     (their Jobs deleted) and end Failed with ReasonReplaced.
//   - Allow: every run starts.
//
// It relies on one worker (see Setup): a pass that starts a Job has
// recorded Running before the next pass reads the siblings.
func (r *Reconciler) checkConcurrency(ctx context.Context, p *pass) (*ctrl.Result, error) {
	if p.bks.Status.Phase == corev1alpha1.BackupSessionRunning {
		return nil, nil
	}
	policy := p.session.Scheduler.ConcurrencyPolicy
	if policy == batchv1.AllowConcurrent {
		return nil, nil
	}
	active, err := r.activeSiblings(ctx, p.bks)
	if err != nil {
		return nil, err
	}
	if policy == batchv1.ReplaceConcurrent {
		return r.replaceOlder(ctx, p, active)
	}
	return r.forbid(p, active), nil
}

// forbid skips the session when another run is Running or was created
// before it and has not finished.
func (r *Reconciler) forbid(p *pass, active []corev1alpha1.BackupSession) *ctrl.Result {
	for _, s := range active {
		if s.Status.Phase == corev1alpha1.BackupSessionRunning {
			r.skip(p, corev1alpha1.ReasonPreviousSessionRunning,
				fmt.Sprintf("BackupSession %s of the same session is still running and concurrencyPolicy is Forbid", s.Name))
			return &ctrl.Result{}
		}
	}
	for _, s := range active {
		if older(&s, p.bks) {
			r.skip(p, corev1alpha1.ReasonPreviousSessionRunning,
				fmt.Sprintf("BackupSession %s of the same session was created first and has not finished, and concurrencyPolicy is Forbid", s.Name))
			return &ctrl.Result{}
		}
	}
	return nil
}

// replaceOlder skips the session when a newer run exists, and otherwise
// stops every older unfinished run before this one starts.
func (r *Reconciler) replaceOlder(ctx context.Context, p *pass, active []corev1alpha1.BackupSession) (*ctrl.Result, error) {
	for _, s := range active {
		if older(p.bks, &s) {
			r.skip(p, corev1alpha1.ReasonReplaced,
				fmt.Sprintf("BackupSession %s of the same session is newer and concurrencyPolicy is Replace", s.Name))
			return &ctrl.Result{}, nil
		}
	}
	for i := range active {
		if err := r.replace(ctx, &active[i], p); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// replace stops an older run: its Job is deleted with its pods, its
// unfinished Snapshots fail, and it ends Failed with ReasonReplaced.
func (r *Reconciler) replace(ctx context.Context, old *corev1alpha1.BackupSession, by *pass) error {
	job, err := r.getJob(ctx, old.Namespace, JobName(old.Name))
	if err != nil {
		return err
	}
	patcher := status.NewLockingPatcher(old)
	op := &pass{bks: old, bc: by.bc, session: by.session, now: by.now, job: job}
	msg := fmt.Errorf("replaced by BackupSession %s of the same session (concurrencyPolicy Replace)", by.bks.Name)
	if _, err := r.finishSnapshots(ctx, op, msg); err != nil {
		return err
	}
	old.SetFailed(corev1alpha1.ReasonReplaced, msg, by.now)
	setDuration(old)
	if _, err := patcher.Patch(ctx, r.Client, old); err != nil {
		return fmt.Errorf("mark BackupSession %s replaced: %w", old.Name, err)
	}
	// Stopped only once it is recorded Failed, so that no pass of the old
	// session makes its Job again (stopLeftoverJob retries a failed delete).
	if job != nil && metav1.IsControlledBy(job, old) {
		if err := r.stopJob(ctx, job); err != nil {
			return err
		}
	}
	r.Events.Eventf(old, by.bks, corev1.EventTypeWarning, corev1alpha1.ReasonReplaced, "Backup", "%s", msg.Error())
	return nil
}

// activeSiblings lists, from the API server, the other unfinished runs of
// the same configuration and session.
func (r *Reconciler) activeSiblings(ctx context.Context, bks *corev1alpha1.BackupSession) ([]corev1alpha1.BackupSession, error) {
	all, err := r.siblings(ctx, r.APIReader, bks)
	if err != nil {
		return nil, err
	}
	var out []corev1alpha1.BackupSession
	for _, s := range all {
		if !s.IsFinished() && s.DeletionTimestamp.IsZero() {
			out = append(out, s)
		}
	}
	return out, nil
}

// siblings lists the other BackupSessions of the same configuration and
// session, read through c.
func (r *Reconciler) siblings(ctx context.Context, c client.Reader, bks *corev1alpha1.BackupSession) ([]corev1alpha1.BackupSession, error) {
	var list corev1alpha1.BackupSessionList
	if err := c.List(ctx, &list, client.InNamespace(bks.Namespace)); err != nil {
		return nil, fmt.Errorf("list BackupSessions: %w", err)
	}
	var out []corev1alpha1.BackupSession
	for _, s := range list.Items {
		if s.Name != bks.Name && s.Spec.BackupConfiguration == bks.Spec.BackupConfiguration && s.Spec.Session == bks.Spec.Session {
			out = append(out, s)
		}
	}
	return out, nil
}

// older reports whether a was created before b; the name breaks ties of
// the API server's one-second timestamps, so every pass orders two runs
// the same way.
func older(a, b *corev1alpha1.BackupSession) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

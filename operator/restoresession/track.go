package restoresession

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

// trackJob ends the RestoreSession when its Job ends: Succeeded when it
// completed, Failed (RestoreTimeout past its deadline) when it failed. Until
// then the Job's changes and the status reports of its pods wake it, and
// it looks at the Job's pods every jobs.StuckRecheck: a Job whose pods
// cannot be created or started fails the restore with the cause.
func (r *Reconciler) trackJob(ctx context.Context, p *pass) (*ctrl.Result, error) {
	done, failed := jobs.Outcome(p.job)
	switch {
	case failed != nil:
		return r.finishFailed(ctx, p, failed)
	case done == nil:
		return r.checkStuck(ctx, p)
	}
	setDuration(p, done)
	if msg := componentErrors(p.rs); msg != "" {
		// The Job exited 0 yet the runtime reported a failed component:
		// the runtime's report wins over a success.
		return r.fail(p, corev1alpha1.ReasonRestoreFailed, fmt.Errorf("restore Job %s completed but %s", p.job.Name, msg)), nil
	}
	finishComponents(p.rs, storagev1alpha1.ComponentSucceeded, "")
	p.rs.Status.Phase = corev1alpha1.RestoreSucceeded
	p.rs.Status.Restored = p.rs.Status.RestoredSummary()
	msg := fmt.Sprintf("Job %s restored Snapshot %s in %s", p.job.Name, p.rs.Status.Snapshot, p.rs.Status.Duration)
	if p.rs.Status.Restored != "" {
		msg += ": " + p.rs.Status.Restored
	}
	status.Set(&p.rs.Status.Conditions, p.rs.Generation, corev1alpha1.ConditionRestoreSucceeded, true,
		corev1alpha1.ReasonRestoreCompleted, msg)
	p.events.Eventf(p.rs, p.job, corev1.EventTypeNormal, corev1alpha1.ReasonRestoreCompleted, "Restore", "%s", msg)
	return &ctrl.Result{}, nil
}

// checkStuck fails the restore when its Job's pods cannot be created or
// start (Reconcile then deletes the Job, which would not end by itself), and
// otherwise looks again later: pods are not watched.
func (r *Reconciler) checkStuck(ctx context.Context, p *pass) (*ctrl.Result, error) {
	prob, recheck, err := jobs.Stuck(ctx, r.APIReader, p.job, p.now.Time)
	if err != nil {
		return nil, err
	}
	if prob == nil {
		return &ctrl.Result{RequeueAfter: recheck}, nil
	}
	finishComponents(p.rs, storagev1alpha1.ComponentFailed, prob.Error())
	return r.fail(p, prob.Reason, prob.Err), nil
}

// finishFailed fails the RestoreSession with the most readable message:
// the components' errors the runtime reported, else the Job's condition;
// and it says so when the pod was deleted or evicted (jobs.LostPod): the
// Job controller's BackoffLimitExceeded tells a user nothing.
func (r *Reconciler) finishFailed(ctx context.Context, p *pass, cond *batchv1.JobCondition) (*ctrl.Result, error) {
	setDuration(p, cond)
	reason := corev1alpha1.ReasonRestoreFailed
	err := fmt.Errorf("restore Job %s failed: %s: %s", p.job.Name, cond.Reason, cond.Message)
	reported := componentErrors(p.rs)
	if reported != "" {
		err = fmt.Errorf("restore Job %s failed: %s", p.job.Name, reported)
	}
	if cond.Reason == batchv1.JobReasonDeadlineExceeded {
		reason = corev1alpha1.ReasonRestoreTimeout
		err = fmt.Errorf("restore Job %s ran longer than its activeDeadlineSeconds (restoreTimeout %s)",
			p.job.Name, timeoutString(p.rs))
		if c := meta.FindStatusCondition(p.rs.Status.Conditions, storagev1alpha1.ConditionStorageUnreachable); c != nil && c.Status == metav1.ConditionTrue {
			reason = corev1alpha1.ReasonStorageUnreachable
			err = fmt.Errorf("restore Job %s reached its restoreTimeout (%s) while the storage did not answer: %s",
				p.job.Name, timeoutString(p.rs), c.Message)
		}
	} else {
		lost, lerr := jobs.LostPod(ctx, r.APIReader, p.job)
		if lerr != nil {
			return nil, lerr
		}
		switch {
		case lost != nil && lost.Disrupted && reported != "":
			// What the runtime said as it was stopped is a consequence.
			reason, err = lost.Reason, fmt.Errorf("%w; %w", lost.Err, err)
		case lost != nil && (lost.Disrupted || reported == ""):
			reason, err = lost.Reason, lost.Err
		}
	}
	finishComponents(p.rs, storagev1alpha1.ComponentFailed, err.Error())
	meta.RemoveStatusCondition(&p.rs.Status.Conditions, storagev1alpha1.ConditionStorageUnreachable) // no restic retries any more
	return r.fail(p, reason, err), nil
}

// componentErrors joins the errors of the components the runtime reported
// Failed, e.g. "component db: connection refused"; "" when none did.
func componentErrors(rs *corev1alpha1.RestoreSession) string {
	var msgs []string
	for _, name := range slices.Sorted(maps.Keys(rs.Status.Components)) {
		c := rs.Status.Components[name]
		if c.Phase == storagev1alpha1.ComponentFailed && c.Error != "" {
			msgs = append(msgs, fmt.Sprintf("component %s: %s", name, c.Error))
		}
	}
	return strings.Join(msgs, "; ")
}

// finishComponents gives the components the runtime left unfinished the
// Job's outcome; what the runtime reported stands.
func finishComponents(rs *corev1alpha1.RestoreSession, phase storagev1alpha1.ComponentPhase, msg string) {
	for name, c := range rs.Status.Components {
		if c.Phase == storagev1alpha1.ComponentSucceeded || c.Phase == storagev1alpha1.ComponentFailed {
			continue
		}
		c.Phase = phase
		if phase == storagev1alpha1.ComponentFailed && c.Error == "" {
			c.Error = msg
		}
		rs.Status.Components[name] = c
	}
}

// setDuration records how long the Job ran: from its start to the
// transition of its final condition.
func setDuration(p *pass, end *batchv1.JobCondition) {
	start := p.job.CreationTimestamp.Time
	if p.job.Status.StartTime != nil {
		start = p.job.Status.StartTime.Time
	}
	stop := p.now.Time
	if !end.LastTransitionTime.IsZero() {
		stop = end.LastTransitionTime.Time
	}
	p.rs.Status.Duration = stop.Sub(start).Round(time.Second).String()
}

// timeoutString is the restoreTimeout for messages.
func timeoutString(rs *corev1alpha1.RestoreSession) string {
	if rs.Spec.RestoreTimeout == nil {
		return rs.Timeout().String() + ", the default"
	}
	return rs.Spec.RestoreTimeout.Duration.String()
}

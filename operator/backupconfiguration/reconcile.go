package backupconfiguration

import (
	"context"
	"errors"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
	"github.com/keepsake-dev/keepsake/operator/internal/steps"
)

// Options configure the Jobs (or CronJobs) the reconciler creates.
type Options = jobs.Options

// Reconciler turns BackupConfigurations into Repositories, CronJobs and a
// first BackupSession per session.
type Reconciler struct {
	// Client reads from the cache and writes to the API server.
	Client client.Client
	// APIReader reads targets and namespaces without caching them.
	APIReader client.Reader
	// RESTMapper maps a target's group and kind to its resource.
	RESTMapper meta.RESTMapper
	// Events records what users should see in `kubectl describe`.
	Events events.EventRecorder
	// Options are the image and ServiceAccount of the CronJobs.
	Options Options
}

// pass is one reconciliation of one BackupConfiguration, filled in step by
// step.
type pass struct {
	bc  *corev1alpha1.BackupConfiguration
	now time.Time
	// schedules and locations are the parsed schedule and time zone of
	// each session, by session name.
	schedules map[string]cron.Schedule
	locations map[string]*time.Location
	// cronJobs are the sessions' CronJobs as last written, by session name.
	cronJobs map[string]*batchv1.CronJob
	// events are the Events of condition changes, recorded once the
	// status that holds them is stored.
	events *status.PendingEvents
	// wasReady says the configuration was already recorded Ready, at its
	// generation, when this pass read it; firstPending that a first
	// BackupSession waits for that.
	wasReady, firstPending bool
}

// Reconcile validates the configuration, creates what it needs and records
// the outcome in its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var bc corev1alpha1.BackupConfiguration
	if err := r.Client.Get(ctx, req.NamespacedName, &bc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !bc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	// A pass that read a stale copy must not record, or write, again what
	// the previous one did: the patch carries the resourceVersion read.
	patcher := status.NewLockingPatcher(&bc)
	p := &pass{
		bc:        &bc,
		now:       time.Now(),
		schedules: map[string]cron.Schedule{},
		locations: map[string]*time.Location{},
		cronJobs:  map[string]*batchv1.CronJob{},
		events:    status.NewPendingEvents(r.Events),
		wasReady:  readyAt(&bc),
	}
	result, err := r.run(ctx, p)
	if _, perr := patcher.Patch(ctx, r.Client, &bc); perr != nil {
		if err == nil && apierrors.IsConflict(perr) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, errors.Join(err, perr)
	}
	p.events.Flush()
	return result, err
}

// run goes through the steps in the order of DESIGN.md's flow: validate,
// then Repositories, CronJobs, the first BackupSessions, and the summary.
func (r *Reconciler) run(ctx context.Context, p *pass) (ctrl.Result, error) {
	return steps.Run(ctx, p,
		r.validate,
		r.ensureRepositories,
		r.ensureCronJobs,
		r.ensureFirstSessions,
		r.summarizeSessions,
		r.setReady,
	)
}

// validate runs every check, so that each condition tells the truth even
// when an earlier one failed, and stops the pass at the first problem.
func (r *Reconciler) validate(ctx context.Context, p *pass) (*ctrl.Result, error) {
	var first *problem
	for _, c := range r.checks() {
		prob, err := c.run(ctx, p)
		if err != nil {
			return nil, err
		}
		if prob == nil {
			r.setCondition(p, c.condType, nil, c.okReason, c.okMessage)
			continue
		}
		r.setCondition(p, c.condType, prob, "", "")
		if first == nil || (prob.invalid && !first.invalid) {
			first = prob
		}
	}
	if first == nil {
		return nil, nil
	}
	return r.fail(p, first), nil
}

// fail records a problem in the phase and the Ready condition. A spec that
// must change waits for that change; a missing dependency is checked again
// with backoff.
func (r *Reconciler) fail(p *pass, prob *problem) *ctrl.Result {
	bc := p.bc
	bc.Status.Phase = corev1alpha1.BackupConfigurationNotReady
	if prob.invalid {
		bc.Status.Phase = corev1alpha1.BackupConfigurationInvalid
	}
	r.setCondition(p, corev1alpha1.ConditionReady, prob, "", "")
	if prob.invalid {
		return &ctrl.Result{}
	}
	return &ctrl.Result{RequeueAfter: status.Backoff(bc.Status.Conditions, corev1alpha1.ConditionReady, p.now)}
}

// setReady sums the conditions up: Ready, or Paused when spec.paused is set.
// It requeues at the next schedule so that status.sessions stays current.
func (r *Reconciler) setReady(_ context.Context, p *pass) (*ctrl.Result, error) {
	bc := p.bc
	if bc.Spec.Paused {
		// Paused is the user's choice, not a failure: a Normal Event.
		bc.Status.Phase = corev1alpha1.BackupConfigurationPaused
		msg := "spec.paused is set: no session is scheduled"
		if status.Set(&bc.Status.Conditions, bc.Generation, corev1alpha1.ConditionReady, false, corev1alpha1.ReasonPaused, msg) {
			p.events.Eventf(bc, nil, corev1.EventTypeNormal, corev1alpha1.ReasonPaused, "Reconcile", msg)
		}
		return &ctrl.Result{}, nil
	}
	bc.Status.Phase = corev1alpha1.BackupConfigurationReady
	r.setCondition(p, corev1alpha1.ConditionReady, nil, corev1alpha1.ReasonAllReady,
		"repositories, CronJobs and the first backups are in place")
	if p.firstPending {
		// The first BackupSessions come once Ready is stored.
		return &ctrl.Result{RequeueAfter: time.Second}, nil
	}
	return &ctrl.Result{RequeueAfter: untilNextSchedule(bc.Status.Sessions, p.now)}, nil
}

// readyAt reports whether bc is recorded Ready at its current generation.
func readyAt(bc *corev1alpha1.BackupConfiguration) bool {
	c := meta.FindStatusCondition(bc.Status.Conditions, corev1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == bc.Generation
}

// setCondition sets one condition, passed when prob is nil, and records an
// Event when its status or reason changes: a Warning for a problem and a
// Normal one for Ready and for a check that recovers from a problem. A
// check that passes the first time, or after a mere wait (a Repository not
// checked yet), records none, and neither does a wait: a first backup is
// not a page of Events saying all is well.
func (r *Reconciler) setCondition(p *pass, condType string, prob *problem, okReason, okMessage string) {
	reason, msg, evType := okReason, okMessage, corev1.EventTypeNormal
	if prob != nil {
		reason, msg, evType = prob.reason, prob.message, corev1.EventTypeWarning
	}
	recovers := false
	if old := meta.FindStatusCondition(p.bc.Status.Conditions, condType); old != nil {
		recovers = old.Status == metav1.ConditionFalse && !waitingReasons[old.Reason]
	}
	if !status.Set(&p.bc.Status.Conditions, p.bc.Generation, condType, prob == nil, reason, msg) {
		return
	}
	switch {
	case prob != nil && prob.waiting:
		return
	case prob == nil && !recovers && condType != corev1alpha1.ConditionReady:
		return
	}
	p.events.Eventf(p.bc, nil, evType, reason, "Reconcile", msg)
}

// waitingReasons are the reasons of problems that are only waits.
var waitingReasons = map[string]bool{corev1alpha1.ReasonRepositoryPending: true}

// untilNextSchedule is how long until the earliest next schedule, or zero
// (no requeue) when no session is scheduled.
func untilNextSchedule(sessions []corev1alpha1.SessionStatus, now time.Time) time.Duration {
	var d time.Duration
	for _, s := range sessions {
		if s.NextSchedule == nil {
			continue
		}
		if until := s.NextSchedule.Sub(now) + time.Second; d == 0 || until < d {
			d = max(until, time.Second)
		}
	}
	return d
}

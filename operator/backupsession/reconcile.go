package backupsession

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
	"github.com/keepsake-dev/keepsake/operator/internal/steps"
)

// notReadyTimeout is how long a session waits for its BackupConfiguration
// to become Ready when the session sets no backupTimeout.
const notReadyTimeout = 10 * time.Minute

// Options configure the Jobs (or CronJobs) the reconciler creates.
type Options = jobs.Options

// Reconciler drives BackupSessions to Succeeded, Failed or Skipped.
type Reconciler struct {
	// Client reads from the cache and writes to the API server.
	Client client.Client
	// APIReader reads Jobs past the cache, so a Job created just before a
	// restart is found rather than created twice.
	APIReader client.Reader
	// Events records what users should see in `kubectl describe`.
	Events events.EventRecorder
	// RESTMapper maps a target's group and kind to its resource, for the
	// tasks that mount the target's volume.
	RESTMapper meta.RESTMapper
	// Options are the image and ServiceAccount of the Jobs.
	Options Options
}

// pass is one reconciliation of one BackupSession, filled in step by step.
type pass struct {
	bks     *corev1alpha1.BackupSession
	bc      *corev1alpha1.BackupConfiguration
	session *corev1alpha1.Session
	// repos are the Repositories the session writes to, one per
	// repository of the session, in its order (resolveRepositories).
	repos []string
	now   metav1.Time
	job   *batchv1.Job
	// events are the Events of status changes, recorded once the status
	// that holds them is stored: a stale pass, whose patch conflicts,
	// records nothing.
	events *status.PendingEvents
}

// step is one stage of a pass (see package steps).
type step = steps.Step[*pass]

// Reconcile runs the session's steps and records the outcome in its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var bks corev1alpha1.BackupSession
	if err := r.Client.Get(ctx, req.NamespacedName, &bks); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !bks.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	// The status is patched only if nobody changed the session since it
	// was read: a stale pass must not turn a finished session back to
	// Running. On a conflict the session is read again.
	patcher := status.NewLockingPatcher(&bks)
	p := &pass{bks: &bks, now: metav1.Now(), events: status.NewPendingEvents(r.Events)}
	result, err := r.run(ctx, p)
	if _, perr := patcher.Patch(ctx, r.Client, &bks); perr != nil {
		if err == nil && apierrors.IsConflict(perr) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, errors.Join(err, perr)
	}
	p.events.Flush()
	return result, err
}

// run goes through the steps in the order of DESIGN.md's flow. A finished
// session is retried if it failed and may be, has retention applied, and
// has its history pruned.
func (r *Reconciler) run(ctx context.Context, p *pass) (ctrl.Result, error) {
	passSteps := []step{r.resolve, r.resolveRepositories, r.checkConcurrency, r.ensureSnapshots, r.ensureJob, r.trackJob}
	if p.bks.IsFinished() {
		passSteps = []step{r.stopLeftoverJob, r.resolveFinished, r.retry, r.applyRetention, r.pruneHistory}
	}
	return steps.Run(ctx, p, passSteps...)
}

// resolve finds the BackupConfiguration and the session, and waits, with
// backoff, for the configuration to be Ready before anything starts.
func (r *Reconciler) resolve(ctx context.Context, p *pass) (*ctrl.Result, error) {
	bks := p.bks
	var bc corev1alpha1.BackupConfiguration
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: bks.Namespace, Name: bks.Spec.BackupConfiguration}, &bc)
	if apierrors.IsNotFound(err) {
		return r.fail(p, corev1alpha1.ReasonConfigurationNotFound,
			fmt.Errorf("BackupConfiguration %s not found", bks.Spec.BackupConfiguration)), nil
	}
	if err != nil {
		return nil, fmt.Errorf("get BackupConfiguration %s: %w", bks.Spec.BackupConfiguration, err)
	}
	p.bc = &bc
	for i := range bc.Spec.Sessions {
		if bc.Spec.Sessions[i].Name == bks.Spec.Session {
			p.session = &bc.Spec.Sessions[i]
		}
	}
	if p.session == nil {
		return r.fail(p, corev1alpha1.ReasonSessionNotFound,
			fmt.Errorf("BackupConfiguration %s has no session %s", bc.Name, bks.Spec.Session)), nil
	}
	if bks.Status.Phase == corev1alpha1.BackupSessionRunning || readyNow(&bc) {
		return nil, nil
	}
	if bc.Spec.Paused {
		// Paused means no backups (as in KubeStash), not "later": a
		// session waiting for an unpause would run at a surprising time.
		r.skip(p, corev1alpha1.ReasonConfigurationPaused, fmt.Sprintf("BackupConfiguration %s is paused", bc.Name))
		return &ctrl.Result{}, nil
	}
	return r.waitForConfiguration(p), nil
}

// readyNow reports whether bc is Ready as its spec is now: a Ready
// condition observed at an older generation may predate, say, a moved
// repository whose new Repository does not exist yet.
func readyNow(bc *corev1alpha1.BackupConfiguration) bool {
	c := meta.FindStatusCondition(bc.Status.Conditions, corev1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == bc.Generation
}

// waitForConfiguration keeps the session Pending, creating no Job, while
// its configuration is not Ready, and fails it once it has waited longer
// than its timeout. The message carries the configuration's own reason
// and how long the session waits. Waiting is not a problem yet: its Event
// is Normal; the failure after the timeout is a Warning.
func (r *Reconciler) waitForConfiguration(p *pass) *ctrl.Result {
	bks := p.bks
	limit := notReadyTimeout
	if t := p.session.BackupTimeout; t != nil && t.Duration > 0 {
		limit = t.Duration
	}
	err := fmt.Errorf("BackupConfiguration %s is not Ready%s", p.bc.Name, configurationCause(p.bc))
	waited := p.now.Sub(bks.CreationTimestamp.Time)
	if waited > limit {
		return r.fail(p, corev1alpha1.ReasonConfigurationNotReady, fmt.Errorf("%w after %s", err, limit))
	}
	bks.Status.Phase = corev1alpha1.BackupSessionPending
	msg := fmt.Sprintf("%s: waiting up to %s for it, then the session fails", err, limit)
	if status.Set(&bks.Status.Conditions, bks.Generation, corev1alpha1.ConditionBackupJobCreated, false,
		corev1alpha1.ReasonConfigurationNotReady, msg) {
		p.events.Eventf(bks, nil, corev1.EventTypeNormal, corev1alpha1.ReasonConfigurationNotReady, "Backup", "%s", msg)
	}
	wait := status.Backoff(bks.Status.Conditions, corev1alpha1.ConditionBackupJobCreated, p.now.Time)
	return &ctrl.Result{RequeueAfter: min(wait, max(limit-waited, time.Second))}
}

// configurationCause is ": <reason>: <message>" of the configuration's
// Ready condition, or nothing when it has none yet.
func configurationCause(bc *corev1alpha1.BackupConfiguration) string {
	c := meta.FindStatusCondition(bc.Status.Conditions, corev1alpha1.ConditionReady)
	if c == nil {
		return " (not checked yet)"
	}
	return fmt.Sprintf(" (%s: %s)", c.Reason, c.Message)
}

// skip ends a session that did not start as Skipped, saying why.
func (r *Reconciler) skip(p *pass, reason, msg string) {
	p.bks.Status.Phase = corev1alpha1.BackupSessionSkipped
	p.bks.Status.CompletionTime = &p.now
	r.setCondition(p, corev1alpha1.ConditionSessionSkipped, true, reason, msg)
}

// fail marks the session Failed with reason and records a Warning Event.
// A failed session is not requeued: only a new BackupSession runs again.
func (r *Reconciler) fail(p *pass, reason string, err error) *ctrl.Result {
	p.bks.SetFailed(reason, err, p.now)
	setDuration(p.bks)
	// A nil *Job in the related interface would not be nil: pass none.
	var related runtime.Object
	if p.job != nil {
		related = p.job
	}
	p.events.Eventf(p.bks, related, corev1.EventTypeWarning, reason, "Backup", "%s", err.Error())
	return &ctrl.Result{}
}

// setCondition sets one condition and records an Event when its status or
// reason changes.
func (r *Reconciler) setCondition(p *pass, condType string, ok bool, reason, msg string) {
	evType := corev1.EventTypeNormal
	if !ok && !progress[reason] {
		evType = corev1.EventTypeWarning
	}
	if status.Set(&p.bks.Status.Conditions, p.bks.Generation, condType, ok, reason, msg) {
		p.events.Eventf(p.bks, nil, evType, reason, "Backup", "%s", msg)
	}
}

// progress are the reasons of conditions that are False on the way to
// True, not because anything is wrong: their Events are Normal.
var progress = map[string]bool{
	corev1alpha1.ReasonRetentionRunning:      true,
	corev1alpha1.ReasonConfigurationNotReady: true,
}

// setDuration records how long the session ran, from its Job's start (or
// its creation, when no Job started) to its completion.
func setDuration(bks *corev1alpha1.BackupSession) {
	if bks.Status.CompletionTime == nil {
		return
	}
	start := bks.CreationTimestamp.Time
	if bks.Status.StartTime != nil {
		start = bks.Status.StartTime.Time
	}
	bks.Status.Duration = bks.Status.CompletionTime.Sub(start).Round(time.Second).String()
}

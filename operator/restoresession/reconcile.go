package restoresession

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
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
	"github.com/keepsake-dev/keepsake/operator/internal/steps"
	"github.com/keepsake-dev/keepsake/operator/internal/targets"
)

// Reconciler drives RestoreSessions to Succeeded, Failed or Invalid.
type Reconciler struct {
	// Client reads from the cache and writes to the API server.
	Client client.Client
	// APIReader reads Jobs past the cache, so a Job created just before a
	// restart is found rather than created twice.
	APIReader client.Reader
	// RESTMapper maps a target's group and kind to its resource.
	RESTMapper meta.RESTMapper
	// Events records what users should see in `kubectl describe`.
	Events events.EventRecorder
	// Options are the image and ServiceAccount of the Jobs.
	Options Options
}

// pass is one reconciliation of one RestoreSession, filled in step by step.
type pass struct {
	rs  *corev1alpha1.RestoreSession
	now metav1.Time
	// snapshot is the resolved Snapshot; component and resticID what of it
	// the Job restores.
	snapshot  *storagev1alpha1.Snapshot
	component string
	resticID  string
	job       *batchv1.Job
	// workload is the target's StatefulSet (and owner) an offline restore
	// stops and starts.
	workload *targets.Workload
	// events are the Events of status changes, recorded once the status
	// that holds them is stored: a stale pass, whose patch conflicts,
	// records nothing.
	events *status.PendingEvents
}

// step is one stage of a pass (see package steps).
type step = steps.Step[*pass]

// Reconcile runs the RestoreSession's steps and records the outcome in its
// status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var rs corev1alpha1.RestoreSession
	if err := r.Client.Get(ctx, req.NamespacedName, &rs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !rs.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if rs.IsFinished() {
		return ctrl.Result{}, r.stopLeftoverJob(ctx, &rs)
	}
	// The status is patched only if nobody changed the RestoreSession since
	// it was read (the Job's pods write status.components): a stale pass
	// must neither undo their report nor turn a finished restore back to
	// Running. On a conflict the RestoreSession is read again.
	patcher := status.NewLockingPatcher(&rs)
	p := &pass{rs: &rs, now: metav1.Now(), events: status.NewPendingEvents(r.Events)}
	result, err := r.run(ctx, p)
	if _, perr := patcher.Patch(ctx, r.Client, &rs); perr != nil {
		if err == nil && apierrors.IsConflict(perr) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, errors.Join(err, perr)
	}
	p.events.Flush()
	if err == nil && rs.IsFinished() {
		err = r.stopLeftoverJob(ctx, &rs)
	}
	return result, err
}

// stopLeftoverJob deletes, with its pods, the Job of a finished restore
// that still runs (never a Job of the same name that is not its own) (its pods could not be created or start). It runs only
// once the restore is recorded finished: deleted before, a status patch lost
// to a conflict would have the next pass make the Job again.
func (r *Reconciler) stopLeftoverJob(ctx context.Context, rs *corev1alpha1.RestoreSession) error {
	job, err := r.findJob(ctx, rs)
	if err != nil || job == nil || !job.DeletionTimestamp.IsZero() || !metav1.IsControlledBy(job, rs) {
		return err
	}
	if done, failed := jobs.Outcome(job); done != nil || failed != nil {
		return nil
	}
	err = r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete Job %s: %w", job.Name, err)
	}
	return nil
}

// run goes through the steps in the order of DESIGN.md's restore flow. Once
// the Job exists only the Job is followed: resolving "latest" again could
// name a newer Snapshot than the one the Job restores.
func (r *Reconciler) run(ctx context.Context, p *pass) (ctrl.Result, error) {
	job, err := r.findJob(ctx, p.rs)
	if err != nil {
		return ctrl.Result{}, err
	}
	if job == nil && offlineStarted(p.rs) {
		return r.runOffline(ctx, p)
	}
	passSteps := []step{r.checkConsent, r.checkTarget, r.resolveSnapshot, r.selectComponent, r.chooseMode, r.ensureJob, r.trackJob}
	if job != nil {
		passSteps = []step{r.adoptJob(job), r.trackJob}
	}
	return steps.Run(ctx, p, passSteps...)
}

// checkConsent refuses a restore into a target of another namespace that
// does not allow restores from this one (annotation
// keepsake.dev/allow-restore-from on the target's namespace).
func (r *Reconciler) checkConsent(ctx context.Context, p *pass) (*ctrl.Result, error) {
	err := jobs.TargetConsent(ctx, r.APIReader, p.rs.Namespace, p.rs.Spec.Target.Namespace, corev1alpha1.AnnotationAllowRestoreFrom)
	var prob *jobs.Problem
	if errors.As(err, &prob) {
		return r.invalid(p, corev1alpha1.ConditionRestoreJobCreated, prob.Reason, prob.Err), nil
	}
	return nil, err
}

// checkTarget makes the RestoreSession Invalid, before any Job, when its
// target does not exist or the operator may not read it: a Job would only
// fail later on a DNS error. The restore does not wait for the target to
// appear: restoring into something that is not there yet is a mistake in
// the spec (or in the order of the user's steps), and a new RestoreSession
// is cheap.
func (r *Reconciler) checkTarget(ctx context.Context, p *pass) (*ctrl.Result, error) {
	t := p.rs.Spec.Target
	ns := t.Namespace
	if ns == "" {
		ns = p.rs.Namespace
	}
	err := targets.Find(ctx, r.APIReader, r.RESTMapper, t, ns)
	var prob *jobs.Problem
	if errors.As(err, &prob) {
		return r.invalid(p, corev1alpha1.ConditionTargetFound, prob.Reason, prob.Err), nil
	}
	if err != nil {
		return nil, err
	}
	status.Set(&p.rs.Status.Conditions, p.rs.Generation, corev1alpha1.ConditionTargetFound, true,
		corev1alpha1.ReasonTargetFound, fmt.Sprintf("%s %s/%s exists", t.Kind, ns, t.Name))
	return nil, nil
}

// invalid ends a RestoreSession whose spec cannot work: the user fixes it
// and creates a new one, so it is not requeued. condType, the condition of
// the step that found the problem, gets the reason too.
func (r *Reconciler) invalid(p *pass, condType, reason string, err error) *ctrl.Result {
	status.Set(&p.rs.Status.Conditions, p.rs.Generation, condType, false, reason, err.Error())
	return r.end(p, corev1alpha1.RestoreInvalid, reason, err)
}

// fail ends a RestoreSession whose restore failed.
func (r *Reconciler) fail(p *pass, reason string, err error) *ctrl.Result {
	return r.end(p, corev1alpha1.RestoreFailed, reason, err)
}

// snapshotFailed ends a RestoreSession that cannot start for a reason
// outside its spec: its Snapshot failed or never came.
func (r *Reconciler) snapshotFailed(p *pass, reason string, err error) *ctrl.Result {
	status.Set(&p.rs.Status.Conditions, p.rs.Generation, corev1alpha1.ConditionSnapshotResolved, false, reason, err.Error())
	return r.fail(p, reason, err)
}

// end records a final unsuccessful phase in the RestoreSucceeded condition
// and a Warning Event.
func (r *Reconciler) end(p *pass, phase corev1alpha1.RestoreSessionPhase, reason string, err error) *ctrl.Result {
	p.rs.Status.Phase = phase
	status.Set(&p.rs.Status.Conditions, p.rs.Generation, corev1alpha1.ConditionRestoreSucceeded, false, reason, err.Error())
	// A nil *Job in the related interface would not be nil: pass none.
	var related runtime.Object
	if p.job != nil {
		related = p.job
	}
	p.events.Eventf(p.rs, related, corev1.EventTypeWarning, reason, "Restore", "%s", err.Error())
	return &ctrl.Result{}
}

// setCondition sets one condition and records an Event when its status or
// reason changes.
func (r *Reconciler) setCondition(p *pass, condType string, ok bool, reason, msg string) {
	evType := corev1.EventTypeNormal
	if !ok {
		evType = corev1.EventTypeWarning
	}
	if status.Set(&p.rs.Status.Conditions, p.rs.Generation, condType, ok, reason, msg) {
		p.events.Eventf(p.rs, nil, evType, reason, "Restore", "%s", msg)
	}
}

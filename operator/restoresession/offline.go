package restoresession

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
	"github.com/keepsake-dev/keepsake/operator/internal/steps"
	"github.com/keepsake-dev/keepsake/operator/internal/targets"
)

// Deadlines and polling of an offline restore. Pods and StatefulSets are
// not watched (a cache of every StatefulSet of the cluster would cost more
// than a poll), so the steps that wait on them look again every
// OfflineRecheck. Tests shorten them before the manager starts.
var (
	// StopTimeout bounds ScalingDown: pods that still run after it (a
	// stuck terminating pod, an owner that scales back up) end the wait,
	// and the restore scales back up without restoring.
	StopTimeout = 10 * time.Minute
	// StartTimeout bounds ScalingUp: the StatefulSet's pods must all be
	// Ready by then.
	StartTimeout = 15 * time.Minute
	// OfflineRecheck is how often a waiting step looks again.
	OfflineRecheck = 5 * time.Second
)

// offlineStarted reports whether the RestoreSession is past Pending in the
// offline workflow: from then on it follows its recorded status only.
func offlineStarted(rs *corev1alpha1.RestoreSession) bool {
	switch rs.Status.Phase {
	case corev1alpha1.RestoreScalingDown, corev1alpha1.RestoreRestoring, corev1alpha1.RestoreScalingUp:
		return rs.Status.Offline != nil
	}
	return false
}

// runOffline runs the steps of the RestoreSession's offline phase.
func (r *Reconciler) runOffline(ctx context.Context, p *pass) (ctrl.Result, error) {
	switch p.rs.Status.Phase {
	case corev1alpha1.RestoreScalingDown:
		return steps.Run(ctx, p, r.loadWorkload, r.stopTarget)
	case corev1alpha1.RestoreRestoring:
		return steps.Run(ctx, p, r.loadWorkload, r.resumeSnapshot, r.selectComponent, r.restorePVCs)
	default:
		return steps.Run(ctx, p, r.loadWorkload, r.startTarget)
	}
}

// chooseMode goes on to the logical Job unless the restore task says the
// target must be stopped: then it starts the offline workflow.
func (r *Reconciler) chooseMode(ctx context.Context, p *pass) (*ctrl.Result, error) {
	ref, noTask := r.firstTask(p)
	if noTask != nil {
		return r.invalid(p, corev1alpha1.ConditionRestoreJobCreated, noTask.Reason, noTask.Err), nil
	}
	task, _, rerr := jobs.ResolveTask(ctx, r.Client, p.rs.Spec.Addon.Name, ref.Name, true)
	var prob *jobs.Problem
	if errors.As(rerr, &prob) {
		return r.invalid(p, corev1alpha1.ConditionRestoreJobCreated, prob.Reason, prob.Err), nil
	}
	if rerr != nil {
		return nil, rerr
	}
	if !task.TargetMustBeStopped {
		return nil, nil
	}
	// The logical Job is never made: the pass ends here.
	res, err := steps.Run(ctx, p, r.loadWorkload, r.beginOffline)
	return &res, err
}

// firstTask is the restore task the RestoreSession names.
func (r *Reconciler) firstTask(p *pass) (*corev1alpha1.TaskReference, *jobs.Problem) {
	if len(p.rs.Spec.Addon.Tasks) == 0 {
		return nil, jobs.NewProblem(corev1alpha1.ReasonTaskNotFound, "addon.tasks names no restore task")
	}
	return &p.rs.Spec.Addon.Tasks[0], nil
}

// loadWorkload reads the target's StatefulSet (and its owner) past the
// cache. A target gone or of a kind that cannot be stopped ends the
// restore: before ScalingDown it is Invalid; later there is nothing left to
// scale back up.
func (r *Reconciler) loadWorkload(ctx context.Context, p *pass) (*ctrl.Result, error) {
	t := p.rs.Spec.Target
	ns := targetNamespace(p.rs)
	w, err := targets.ResolveWorkload(ctx, r.APIReader, r.RESTMapper, t, ns)
	var prob *jobs.Problem
	if errors.As(err, &prob) {
		if p.rs.Status.Offline == nil {
			return r.invalid(p, corev1alpha1.ConditionTargetFound, prob.Reason, prob.Err), nil
		}
		return r.fail(p, prob.Reason, prob.Err), nil
	}
	if err != nil {
		return nil, err
	}
	p.workload = w
	return nil, nil
}

// beginOffline records what the restore will give back (the replica count,
// whether it pauses the owner, the PVCs) and enters ScalingDown. It changes
// nothing in the target yet: only once this record is stored does the next
// pass scale down, so a restart never reads the replica count of a
// StatefulSet already at 0.
func (r *Reconciler) beginOffline(ctx context.Context, p *pass) (*ctrl.Result, error) {
	sts := p.workload.StatefulSet
	if sts.Namespace != p.rs.Namespace {
		return r.invalid(p, corev1alpha1.ConditionRestoreJobCreated, corev1alpha1.ReasonTargetNotStoppable,
			fmt.Errorf("an offline restore mounts the target's PVCs in its Jobs, which run in the RestoreSession's namespace %s: create the RestoreSession in %s", p.rs.Namespace, sts.Namespace)), nil
	}
	replicas := targets.Replicas(sts)
	pvcs := targets.PVCs(sts, replicas)
	if len(pvcs) == 0 {
		return r.invalid(p, corev1alpha1.ConditionRestoreJobCreated, corev1alpha1.ReasonTargetNotStoppable,
			fmt.Errorf("StatefulSet %s has no volumeClaimTemplates (or 0 replicas): an offline restore writes the PVCs of its pods", sts.Name)), nil
	}
	for _, name := range pvcs {
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: sts.Namespace, Name: name}, &corev1.PersistentVolumeClaim{})
		if apierrors.IsNotFound(err) {
			return r.invalid(p, corev1alpha1.ConditionRestoreJobCreated, corev1alpha1.ReasonTargetNotStoppable,
				fmt.Errorf("PVC %s of StatefulSet %s not found: every pod's PVCs must exist before an offline restore", name, sts.Name)), nil
		}
		if err != nil {
			return nil, fmt.Errorf("get PVC %s: %w", name, err)
		}
	}
	owner := p.workload.Owner
	p.rs.Status.Offline = &corev1alpha1.OfflineRestoreStatus{
		StatefulSet: sts.Name,
		Replicas:    ptr.To(replicas),
		PausedOwner: owner != nil && !targets.Paused(owner),
		PVCs:        pvcs,
	}
	p.rs.Status.Phase = corev1alpha1.RestoreScalingDown
	r.setCondition(p, corev1alpha1.ConditionTargetStopped, false, corev1alpha1.ReasonScalingDown,
		fmt.Sprintf("scaling StatefulSet %s from %d replicas to 0%s", sts.Name, replicas, pauseNote(p)))
	// The status update wakes the next pass.
	return &ctrl.Result{}, nil
}

func pauseNote(p *pass) string {
	if p.rs.Status.Offline.PausedOwner {
		o := p.workload.Owner
		return fmt.Sprintf(", %s %s paused meanwhile", o.GetKind(), o.GetName())
	}
	return ""
}

// stopTarget pauses the owner, scales the StatefulSet to 0 and waits until
// none of its pods runs; then the restore goes on to Restoring. Past
// StopTimeout it gives up and scales back up.
func (r *Reconciler) stopTarget(ctx context.Context, p *pass) (*ctrl.Result, error) {
	off, w := p.rs.Status.Offline, p.workload
	if off.PausedOwner && !targets.Paused(w.Owner) {
		if err := targets.SetPaused(ctx, r.Client, w.Owner, true); err != nil {
			return nil, err
		}
	}
	if err := r.scale(ctx, w.StatefulSet, 0); err != nil {
		return nil, err
	}
	running, err := targets.Running(ctx, r.APIReader, w.StatefulSet)
	if err != nil {
		return nil, err
	}
	if len(running) > 0 {
		return r.waitOrGiveUp(p, corev1alpha1.ConditionTargetStopped, StopTimeout, func() *ctrl.Result {
			return r.restoreFailed(p, corev1alpha1.ReasonStopTimeout,
				fmt.Errorf("pods %s of StatefulSet %s still ran %s after it was scaled to 0", strings.Join(running, ", "), off.StatefulSet, StopTimeout))
		}), nil
	}
	r.setCondition(p, corev1alpha1.ConditionTargetStopped, true, corev1alpha1.ReasonStopped,
		fmt.Sprintf("no pod of StatefulSet %s runs", off.StatefulSet))
	p.rs.Status.Phase = corev1alpha1.RestoreRestoring
	return &ctrl.Result{}, nil
}

// scale sets the StatefulSet's replica count when it differs.
func (r *Reconciler) scale(ctx context.Context, sts *appsv1.StatefulSet, replicas int32) error {
	if sts.Spec.Replicas != nil && *sts.Spec.Replicas == replicas {
		return nil
	}
	base := sts.DeepCopy()
	sts.Spec.Replicas = ptr.To(replicas)
	if err := r.Client.Patch(ctx, sts, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("scale StatefulSet %s to %d: %w", sts.Name, replicas, err)
	}
	return nil
}

// waitOrGiveUp looks again after OfflineRecheck while condType has been
// False for less than limit, and calls giveUp after.
func (r *Reconciler) waitOrGiveUp(p *pass, condType string, limit time.Duration, giveUp func() *ctrl.Result) *ctrl.Result {
	since := p.now.Time
	if c := meta.FindStatusCondition(p.rs.Status.Conditions, condType); c != nil {
		since = c.LastTransitionTime.Time
	}
	left := since.Add(limit).Sub(p.now.Time)
	if left <= 0 {
		return giveUp()
	}
	return &ctrl.Result{RequeueAfter: min(OfflineRecheck, left)}
}

// restoreFailed records why the restore failed and goes on to ScalingUp:
// Keepsake never leaves a database at 0 replicas. The RestoreSession ends
// Failed with this reason once the StatefulSet is back.
func (r *Reconciler) restoreFailed(p *pass, reason string, err error) *ctrl.Result {
	status.Set(&p.rs.Status.Conditions, p.rs.Generation, corev1alpha1.ConditionRestoreSucceeded, false, reason, err.Error())
	p.events.Eventf(p.rs, nil, corev1.EventTypeWarning, reason, "Restore", "%s; scaling the target back up", err.Error())
	r.enterScalingUp(p)
	return &ctrl.Result{}
}

// enterScalingUp starts giving the StatefulSet its replicas back.
func (r *Reconciler) enterScalingUp(p *pass) {
	off := p.rs.Status.Offline
	p.rs.Status.Phase = corev1alpha1.RestoreScalingUp
	r.setCondition(p, corev1alpha1.ConditionTargetRestarted, false, corev1alpha1.ReasonScalingUp,
		fmt.Sprintf("scaling StatefulSet %s back to %d replicas", off.StatefulSet, *off.Replicas))
}

// startTarget gives the StatefulSet its replica count back, unpauses the
// owner and waits until every replica is Ready; then the restore ends,
// Failed if an earlier step recorded a failure.
func (r *Reconciler) startTarget(ctx context.Context, p *pass) (*ctrl.Result, error) {
	off, w := p.rs.Status.Offline, p.workload
	if err := r.stopPVCJobs(ctx, p); err != nil {
		return nil, err
	}
	if err := r.scale(ctx, w.StatefulSet, *off.Replicas); err != nil {
		return nil, err
	}
	if off.PausedOwner && targets.Paused(w.Owner) {
		if err := targets.SetPaused(ctx, r.Client, w.Owner, false); err != nil {
			return nil, err
		}
	}
	sts := w.StatefulSet
	back := fmt.Sprintf("StatefulSet %s is back at %d replicas", sts.Name, *off.Replicas)
	if sts.Status.ObservedGeneration < sts.Generation || sts.Status.ReadyReplicas < *off.Replicas {
		return r.waitOrGiveUp(p, corev1alpha1.ConditionTargetRestarted, StartTimeout, func() *ctrl.Result {
			setOfflineDuration(p)
			return r.fail(p, corev1alpha1.ReasonStartTimeout, fmt.Errorf("%s%s but only %d of them were Ready %s later",
				earlierFailure(p), back, sts.Status.ReadyReplicas, StartTimeout))
		}), nil
	}
	r.setCondition(p, corev1alpha1.ConditionTargetRestarted, true, corev1alpha1.ReasonRestarted, back+", all Ready")
	setOfflineDuration(p)
	if c := meta.FindStatusCondition(p.rs.Status.Conditions, corev1alpha1.ConditionRestoreSucceeded); c != nil && c.Status == metav1.ConditionFalse {
		return r.fail(p, c.Reason, fmt.Errorf("%s; %s", c.Message, back)), nil
	}
	return r.succeedOffline(p, back), nil
}

// setOfflineDuration records how long the offline restore took, from the
// RestoreSession's creation to its end, Succeeded or Failed: the target
// was down for most of it.
func setOfflineDuration(p *pass) {
	p.rs.Status.Duration = p.now.Sub(p.rs.CreationTimestamp.Time).Round(time.Second).String()
}

// earlierFailure is the failure an earlier step recorded, "" when none.
func earlierFailure(p *pass) string {
	if c := meta.FindStatusCondition(p.rs.Status.Conditions, corev1alpha1.ConditionRestoreSucceeded); c != nil && c.Status == metav1.ConditionFalse {
		return c.Message + "; "
	}
	return ""
}

// succeedOffline ends a restore whose every PVC Job completed.
func (r *Reconciler) succeedOffline(p *pass, back string) *ctrl.Result {
	off := p.rs.Status.Offline
	p.rs.Status.Phase = corev1alpha1.RestoreSucceeded
	msg := fmt.Sprintf("restored %d PVCs of StatefulSet %s from Snapshot %s; %s", off.RestoredPVCs, off.StatefulSet, p.rs.Status.Snapshot, back)
	status.Set(&p.rs.Status.Conditions, p.rs.Generation, corev1alpha1.ConditionRestoreSucceeded, true, corev1alpha1.ReasonRestoreCompleted, msg)
	p.events.Eventf(p.rs, nil, corev1.EventTypeNormal, corev1alpha1.ReasonRestoreCompleted, "Restore", "%s", msg)
	return &ctrl.Result{}
}

func targetNamespace(rs *corev1alpha1.RestoreSession) string {
	if ns := rs.Spec.Target.Namespace; ns != "" {
		return ns
	}
	return rs.Namespace
}

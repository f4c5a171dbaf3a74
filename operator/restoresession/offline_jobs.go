package restoresession

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
)

// TargetDir is where an offline restore Job mounts the PVC it writes; the
// Function gets it as ${targetDir} and the driver as KEEPSAKE_TARGET_DIR.
const TargetDir = jobs.TargetDir

// annotationPVC on an offline restore Job names the PVC it writes.
const annotationPVC = "core.keepsake.dev/pvc"

// PVCJobName is the name of the Job that restores the i-th PVC of an
// offline RestoreSession rs.
func PVCJobName(rs string, i int) string {
	return jobs.ShortName(fmt.Sprintf("%s-pvc-%d", rs, i), jobs.MaxName)
}

// resumeSnapshot reads the Snapshot ScalingDown resolved, by name: "latest"
// could meanwhile name a newer one.
func (r *Reconciler) resumeSnapshot(ctx context.Context, p *pass) (*ctrl.Result, error) {
	name := p.rs.Status.Snapshot
	var snap storagev1alpha1.Snapshot
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.rs.Namespace, Name: name}, &snap)
	if apierrors.IsNotFound(err) || (err == nil && !snap.DeletionTimestamp.IsZero()) {
		return r.restoreFailed(p, corev1alpha1.ReasonSnapshotNotReady,
			fmt.Errorf("snapshot %s was deleted during the restore", name)), nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Snapshot %s: %w", name, err)
	}
	p.snapshot = &snap
	return nil, nil
}

// restorePVCs runs one Job per PVC, all at once, and counts those that
// completed in restoredPVCs. When all completed the restore goes on to
// ScalingUp; when one failed, the others are stopped and it goes on to
// ScalingUp with the failure recorded.
func (r *Reconciler) restorePVCs(ctx context.Context, p *pass) (*ctrl.Result, error) {
	off := p.rs.Status.Offline
	r.markComponentPending(p)
	var done int32
	var failure *ctrl.Result
	var unfinished []*batchv1.Job
	recheck := OfflineRecheck
	for i, pvc := range off.PVCs {
		job, res, err := r.pvcJob(ctx, p, i, pvc)
		if res != nil || err != nil {
			return res, err
		}
		finished, failed := jobs.Outcome(job)
		switch {
		case failed != nil && failure == nil:
			failure = r.pvcJobFailed(p, job, pvc, failed)
		case finished != nil:
			done++
		case failed == nil:
			unfinished = append(unfinished, job)
			prob, next, err := jobs.Stuck(ctx, r.APIReader, job, p.now.Time)
			if err != nil {
				return nil, err
			}
			if prob != nil && failure == nil {
				failure = r.restoreFailed(p, prob.Reason, fmt.Errorf("restore Job %s of PVC %s: %w", job.Name, pvc, prob.Err))
			}
			recheck = min(recheck, next)
		}
	}
	off.RestoredPVCs = done
	if failure != nil {
		// ScalingUp stops the Jobs still running.
		return failure, nil
	}
	if len(unfinished) > 0 {
		return &ctrl.Result{RequeueAfter: recheck}, nil
	}
	if msg := componentErrors(p.rs); msg != "" {
		return r.restoreFailed(p, corev1alpha1.ReasonRestoreFailed, fmt.Errorf("restore Jobs completed but %s", msg)), nil
	}
	finishComponents(p.rs, storagev1alpha1.ComponentSucceeded, "")
	r.enterScalingUp(p)
	return &ctrl.Result{}, nil
}

// markComponentPending lists the restored component in the status, as the
// logical restore does.
func (r *Reconciler) markComponentPending(p *pass) {
	st := &p.rs.Status
	st.TotalComponents = 1
	if _, ok := st.Components[p.component]; !ok {
		if st.Components == nil {
			st.Components = map[string]corev1alpha1.RestoreComponentStatus{}
		}
		st.Components[p.component] = corev1alpha1.RestoreComponentStatus{Phase: storagev1alpha1.ComponentPending}
	}
}

// pvcJob returns the Job of the i-th PVC, creating it when there is none.
// A Job of that name that is not this RestoreSession's fails the restore.
func (r *Reconciler) pvcJob(ctx context.Context, p *pass, i int, pvc string) (*batchv1.Job, *ctrl.Result, error) {
	name := PVCJobName(p.rs.Name, i)
	job, err := jobs.Find(ctx, r.Client, r.APIReader, client.ObjectKey{Namespace: p.rs.Namespace, Name: name})
	if err != nil {
		return nil, nil, err
	}
	if job != nil {
		if !metav1.IsControlledBy(job, p.rs) {
			return nil, r.restoreFailed(p, corev1alpha1.ReasonJobCreationFailed,
				fmt.Errorf("job %s already exists and does not belong to this RestoreSession", name)), nil
		}
		return job, nil, nil
	}
	job, repos, err := r.buildJob(ctx, p, name, pvc)
	var prob *jobs.Problem
	if errors.As(err, &prob) {
		return nil, r.restoreFailed(p, prob.Reason, prob.Err), nil
	}
	if err != nil {
		return nil, nil, err
	}
	exists, err := jobs.Create(ctx, r.Client, job, repos)
	if errors.As(err, &prob) {
		return nil, r.restoreFailed(p, prob.Reason, prob.Err), nil
	}
	if err != nil {
		return nil, nil, err
	}
	if exists {
		return nil, &ctrl.Result{RequeueAfter: time.Second}, nil
	}
	r.setCondition(p, corev1alpha1.ConditionRestoreJobCreated, true, corev1alpha1.ReasonJobCreated,
		fmt.Sprintf("%d Jobs restore component %s of Snapshot %s into the PVCs of StatefulSet %s",
			len(p.rs.Status.Offline.PVCs), p.component, p.rs.Status.Snapshot, p.rs.Status.Offline.StatefulSet))
	return job, nil, nil
}

// pvcJobFailed records the failed Job's reason, as the logical restore
// does, and goes on to ScalingUp.
func (r *Reconciler) pvcJobFailed(p *pass, job *batchv1.Job, pvc string, cond *batchv1.JobCondition) *ctrl.Result {
	reason := corev1alpha1.ReasonRestoreFailed
	err := fmt.Errorf("restore Job %s of PVC %s failed: %s: %s", job.Name, pvc, cond.Reason, cond.Message)
	if msg := componentErrors(p.rs); msg != "" {
		err = fmt.Errorf("restore Job %s of PVC %s failed: %s", job.Name, pvc, msg)
	}
	if cond.Reason == batchv1.JobReasonDeadlineExceeded {
		reason = corev1alpha1.ReasonRestoreTimeout
		err = fmt.Errorf("restore Job %s of PVC %s ran longer than its activeDeadlineSeconds (restoreTimeout %s)",
			job.Name, pvc, timeoutString(p.rs))
	}
	finishComponents(p.rs, storagev1alpha1.ComponentFailed, err.Error())
	return r.restoreFailed(p, reason, err)
}

// stopPVCJobs deletes the restore's PVC Jobs that still run (after another
// failed, or past the stop deadline): their PVCs go back to the
// StatefulSet.
func (r *Reconciler) stopPVCJobs(ctx context.Context, p *pass) error {
	for i := range p.rs.Status.Offline.PVCs {
		job, err := jobs.Find(ctx, r.Client, r.APIReader, client.ObjectKey{Namespace: p.rs.Namespace, Name: PVCJobName(p.rs.Name, i)})
		if err != nil {
			return err
		}
		if job == nil || !job.DeletionTimestamp.IsZero() || !metav1.IsControlledBy(job, p.rs) {
			continue
		}
		if done, failed := jobs.Outcome(job); done != nil || failed != nil {
			continue
		}
		err = r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete Job %s: %w", job.Name, err)
		}
	}
	return nil
}

// mountPVC mounts the PVC the Job restores at TargetDir, writable, and
// names it in the Job's annotation.
func mountPVC(job *batchv1.Job, pvc string) {
	jobs.MountTargetPVC(job, pvc, false)
	job.Annotations[annotationPVC] = pvc
}

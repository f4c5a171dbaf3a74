package backupsession

import (
	"context"
	"errors"
	"fmt"
	"sort"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

// trackJob ends the session when its Job ends: Succeeded when it completed,
// Failed (BackupTimeout past its deadline) when it failed. Snapshots the
// runtime left unfinished get the Job's outcome.
func (r *Reconciler) trackJob(ctx context.Context, p *pass) (*ctrl.Result, error) {
	done, failed := jobOutcome(p.job)
	if done == nil && failed == nil {
		return &ctrl.Result{}, nil
	}
	if failed != nil {
		return r.finishFailed(ctx, p, failed)
	}
	if err := r.finishSnapshots(ctx, p, nil); err != nil {
		return nil, err
	}
	p.bks.SetSucceeded(p.now)
	setDuration(p.bks)
	r.Events.Eventf(p.bks, p.job, corev1.EventTypeNormal, corev1alpha1.ReasonBackupCompleted, "Backup",
		"Job %s completed: every snapshot succeeded", p.job.Name)
	return &ctrl.Result{}, nil
}

// finishFailed fails the session and its unfinished Snapshots.
func (r *Reconciler) finishFailed(ctx context.Context, p *pass, cond *batchv1.JobCondition) (*ctrl.Result, error) {
	reason := corev1alpha1.ReasonBackupFailed
	err := fmt.Errorf("backup Job %s failed: %s: %s", p.job.Name, cond.Reason, cond.Message)
	if cond.Reason == batchv1.JobReasonDeadlineExceeded {
		reason = corev1alpha1.ReasonBackupTimeout
		err = fmt.Errorf("backup Job %s ran longer than its activeDeadlineSeconds (backupTimeout %s)",
			p.job.Name, timeoutString(p.session))
		status.Set(&p.bks.Status.Conditions, p.bks.Generation, corev1alpha1.ConditionDeadlineExceeded, true,
			corev1alpha1.ReasonBackupTimeout, err.Error())
	}
	if serr := r.finishSnapshots(ctx, p, err); serr != nil {
		return nil, serr
	}
	return r.fail(p, reason, err), nil
}

// jobOutcome returns the Job's true Complete or Failed condition.
func jobOutcome(job *batchv1.Job) (done, failed *batchv1.JobCondition) {
	for i, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			done = &job.Status.Conditions[i]
		case batchv1.JobFailed:
			failed = &job.Status.Conditions[i]
		}
	}
	return done, failed
}

// finishSnapshots gives each Snapshot of the session the Job's outcome,
// failed when jobErr is set. The runtime's own result stands, except that a
// failed Job never leaves a Snapshot Succeeded.
func (r *Reconciler) finishSnapshots(ctx context.Context, p *pass, jobErr error) error {
	var errs []error
	for i, ref := range p.bks.Status.Snapshots {
		phase, err := r.finishSnapshot(ctx, p.bks.Namespace, ref.Name, jobErr)
		errs = append(errs, err)
		p.bks.Status.Snapshots[i].Phase = phase
	}
	return errors.Join(errs...)
}

func (r *Reconciler) finishSnapshot(ctx context.Context, ns, name string, jobErr error) (storagev1alpha1.SnapshotPhase, error) {
	var snap storagev1alpha1.Snapshot
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &snap); err != nil {
		return "", client.IgnoreNotFound(fmt.Errorf("get Snapshot %s: %w", name, err))
	}
	patcher := status.NewLockingPatcher(&snap)
	st := &snap.Status
	switch {
	case jobErr != nil && st.Phase != storagev1alpha1.SnapshotFailed:
		st.Phase = storagev1alpha1.SnapshotFailed
		status.Set(&st.Conditions, snap.Generation, storagev1alpha1.ConditionBackupCompleted, false,
			corev1alpha1.ReasonBackupFailed, jobErr.Error())
	case jobErr == nil && st.Phase != storagev1alpha1.SnapshotSucceeded && st.Phase != storagev1alpha1.SnapshotFailed:
		st.Phase = storagev1alpha1.SnapshotSucceeded
		status.Set(&st.Conditions, snap.Generation, storagev1alpha1.ConditionBackupCompleted, true,
			storagev1alpha1.ReasonBackupSucceeded, "the backup Job completed")
	}
	if st.SnapshotTime == nil && st.Phase == storagev1alpha1.SnapshotSucceeded {
		st.SnapshotTime = &metav1.Time{Time: snap.CreationTimestamp.Time}
	}
	_, err := patcher.Patch(ctx, r.Client, &snap)
	return st.Phase, err
}

// pruneHistory deletes the oldest finished BackupSessions of the same
// configuration and session beyond its sessionHistoryLimit; their Jobs and
// settings go with them; their Snapshots stay.
func (r *Reconciler) pruneHistory(ctx context.Context, p *pass) (*ctrl.Result, error) {
	var bc corev1alpha1.BackupConfiguration
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.bks.Namespace, Name: p.bks.Spec.BackupConfiguration}, &bc)
	if apierrors.IsNotFound(err) {
		return &ctrl.Result{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get BackupConfiguration %s: %w", p.bks.Spec.BackupConfiguration, err)
	}
	limit := -1
	for _, s := range bc.Spec.Sessions {
		if s.Name == p.bks.Spec.Session {
			limit = int(s.SessionHistoryLimit)
		}
	}
	if limit < 0 {
		return &ctrl.Result{}, nil
	}
	siblings, err := r.siblings(ctx, p.bks)
	if err != nil {
		return nil, err
	}
	finished := append([]corev1alpha1.BackupSession{*p.bks}, siblings...)
	return &ctrl.Result{}, r.deleteOldest(ctx, finished, limit)
}

// deleteOldest deletes the finished sessions of runs beyond the newest limit.
func (r *Reconciler) deleteOldest(ctx context.Context, runs []corev1alpha1.BackupSession, limit int) error {
	var finished []corev1alpha1.BackupSession
	for _, b := range runs {
		if b.IsFinished() && b.DeletionTimestamp.IsZero() {
			finished = append(finished, b)
		}
	}
	sort.Slice(finished, func(i, j int) bool {
		a, b := finished[i].CreationTimestamp, finished[j].CreationTimestamp
		if a.Equal(&b) {
			return finished[i].Name > finished[j].Name
		}
		return b.Before(&a)
	})
	for i := limit; i < len(finished); i++ {
		if err := r.deleteSession(ctx, &finished[i]); err != nil {
			return err
		}
	}
	return nil
}

// deleteSession deletes a finished session with its Job and settings. Its
// Snapshots belong to their Repository and stay: they hold backups, which
// only retention or a user may remove.
func (r *Reconciler) deleteSession(ctx context.Context, b *corev1alpha1.BackupSession) error {
	owned := []client.Object{
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: JobName(b.Name)}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: jobs.SettingsConfigMap(JobName(b.Name))}},
	}
	for _, o := range owned {
		err := r.Client.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete %T %s: %w", o, o.GetName(), err)
		}
	}
	err := r.Client.Delete(ctx, b, client.PropagationPolicy(metav1.DeletePropagationOrphan))
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete BackupSession %s: %w", b.Name, err)
	}
	return nil
}

// timeoutString is the session's backupTimeout for messages.
func timeoutString(s *corev1alpha1.Session) string {
	if s.BackupTimeout == nil {
		return "unset"
	}
	return s.BackupTimeout.Duration.String()
}

package backupsession

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

// trackJob ends the session when its Job ends. The runtime records each
// repository's result in its Snapshot; the session Succeeded only when the
// Job completed and every Snapshot holds a restic snapshot. A failed Job
// fails the session with the runtime's own error when it left one. While
// the Job runs, a Job whose pods cannot be created or started fails the
// session with the cause (see jobs.Stuck).
func (r *Reconciler) trackJob(ctx context.Context, p *pass) (*ctrl.Result, error) {
	done, failed := jobs.Outcome(p.job)
	if done == nil && failed == nil {
		return r.checkStuck(ctx, p)
	}
	if failed != nil {
		return r.finishFailed(ctx, p, failed)
	}
	problems, err := r.finishSnapshots(ctx, p, errors.New("the backup Job completed without recording a restic snapshot"))
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return r.fail(p, corev1alpha1.ReasonResultMissing,
			fmt.Errorf("backup Job %s completed, but %s", p.job.Name, strings.Join(problems, "; "))), nil
	}
	p.bks.SetSucceeded(p.now)
	setDuration(p.bks)
	p.events.Eventf(p.bks, p.job, corev1.EventTypeNormal, corev1alpha1.ReasonBackupCompleted, "Backup",
		"Job %s completed: every snapshot succeeded", p.job.Name)
	return &ctrl.Result{}, nil
}

// checkStuck fails the session when its Job's pods cannot be created or
// start, and otherwise looks again later: pods are not watched.
func (r *Reconciler) checkStuck(ctx context.Context, p *pass) (*ctrl.Result, error) {
	prob, recheck, err := jobs.Stuck(ctx, r.APIReader, p.job, p.now.Time)
	if err != nil {
		return nil, err
	}
	if prob == nil {
		return &ctrl.Result{RequeueAfter: recheck}, nil
	}
	// The Job is deleted once the session is recorded Failed (see
	// stopLeftoverJob): deleted first, a status patch lost to a conflict
	// would have the next pass create the Job again.
	if _, err := r.finishSnapshots(ctx, p, prob.Err); err != nil {
		return nil, err
	}
	return r.fail(p, prob.Reason, prob.Err), nil
}

// stopLeftoverJob deletes the Job of a finished session that still runs:
// the session failed while its pods could not be created or start, or was
// replaced. A finished session's Job must not go on writing.
func (r *Reconciler) stopLeftoverJob(ctx context.Context, p *pass) (*ctrl.Result, error) {
	if p.bks.Status.Job == "" {
		return nil, nil
	}
	job, err := r.getJob(ctx, p.bks.Namespace, p.bks.Status.Job)
	if err != nil || job == nil || !job.DeletionTimestamp.IsZero() || !metav1.IsControlledBy(job, p.bks) {
		return nil, err
	}
	if done, failed := jobs.Outcome(job); done != nil || failed != nil {
		return nil, nil
	}
	return nil, r.stopJob(ctx, job)
}

// stopJob deletes a Job that will not end by itself, with its pods.
func (r *Reconciler) stopJob(ctx context.Context, job *batchv1.Job) error {
	err := r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete Job %s: %w", job.Name, err)
	}
	return nil
}

// finishFailed fails the session and its unfinished Snapshots, saying why
// in the runtime's words when it recorded them, and saying so when the pod
// was deleted or evicted (see jobs.LostPod): the Job controller's
// BackoffLimitExceeded tells a user nothing.
func (r *Reconciler) finishFailed(ctx context.Context, p *pass, cond *batchv1.JobCondition) (*ctrl.Result, error) {
	reason := corev1alpha1.ReasonBackupFailed
	err := fmt.Errorf("backup Job %s failed: %s: %s", p.job.Name, cond.Reason, cond.Message)
	var lost *jobs.PodLoss
	if cond.Reason == batchv1.JobReasonDeadlineExceeded {
		reason = corev1alpha1.ReasonBackupTimeout
		err = fmt.Errorf("backup Job %s ran longer than its activeDeadlineSeconds (backupTimeout %s)",
			p.job.Name, timeoutString(p.session))
		trouble, terr := r.storageTrouble(ctx, p)
		if terr != nil {
			return nil, terr
		}
		if trouble != "" {
			reason = corev1alpha1.ReasonStorageUnreachable
			err = fmt.Errorf("backup Job %s reached its backupTimeout (%s) while the storage did not answer: %s",
				p.job.Name, timeoutString(p.session), trouble)
		}
		status.Set(&p.bks.Status.Conditions, p.bks.Generation, corev1alpha1.ConditionDeadlineExceeded, true,
			reason, err.Error())
	} else {
		var lerr error
		if lost, lerr = jobs.LostPod(ctx, r.APIReader, p.job); lerr != nil {
			return nil, lerr
		}
		if lost != nil {
			err = lost.Err
		}
	}
	problems, serr := r.finishSnapshots(ctx, p, err)
	if serr != nil {
		return nil, serr
	}
	if reason == corev1alpha1.ReasonBackupFailed && len(problems) > 0 {
		err = fmt.Errorf("backup Job %s failed: %s", p.job.Name, strings.Join(problems, "; "))
	}
	if lost != nil {
		recorded := runtimeRecorded(problems, lost.Err)
		if lost.Disrupted && recorded {
			err = fmt.Errorf("%w; %w", lost.Err, err)
		}
		if lost.Disrupted || !recorded {
			reason = lost.Reason
		}
	}
	return r.fail(p, reason, err), nil
}

// storageTrouble joins what the session's Snapshots say of a storage that
// restic was retrying (condition StorageUnreachable, set by the runtime),
// e.g. "repository s3: restic has been retrying ... connection refused";
// "" when none says so.
func (r *Reconciler) storageTrouble(ctx context.Context, p *pass) (string, error) {
	var lines []string
	for _, ref := range p.bks.Status.Snapshots {
		var snap storagev1alpha1.Snapshot
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.bks.Namespace, Name: ref.Name}, &snap)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("get Snapshot %s: %w", ref.Name, err)
		}
		if c := meta.FindStatusCondition(snap.Status.Conditions, storagev1alpha1.ConditionStorageUnreachable); c != nil && c.Status == metav1.ConditionTrue {
			lines = append(lines, fmt.Sprintf("repository %s: %s", ref.Repository, c.Message))
		}
	}
	return strings.Join(lines, "; "), nil
}

// runtimeRecorded reports whether a problem line of finishSnapshots holds
// an error the runtime recorded rather than jobErr, which stands in for a
// Snapshot the runtime left without one.
func runtimeRecorded(problems []string, jobErr error) bool {
	for _, line := range problems {
		if !strings.HasSuffix(line, jobErr.Error()) {
			return true
		}
	}
	return false
}

// finishSnapshots settles each Snapshot of the session once its Job ended:
// a Snapshot the runtime recorded as Succeeded, with a restic snapshot,
// stays so (the data is stored, whatever else failed); any other fails,
// with the runtime's error if it recorded one, else with jobErr. It
// returns one line per failed Snapshot.
func (r *Reconciler) finishSnapshots(ctx context.Context, p *pass, jobErr error) ([]string, error) {
	var errs []error
	var problems []string
	for i, ref := range p.bks.Status.Snapshots {
		phase, msg, err := r.finishSnapshot(ctx, p.bks.Namespace, ref.Name, jobErr)
		errs = append(errs, err)
		if err == nil {
			p.bks.Status.Snapshots[i].Phase = phase
		}
		if msg != "" {
			problems = append(problems, fmt.Sprintf("repository %s: %s", ref.Repository, msg))
		}
	}
	return problems, errors.Join(errs...)
}

// finishSnapshot settles one Snapshot; msg says why it failed.
func (r *Reconciler) finishSnapshot(ctx context.Context, ns, name string, jobErr error) (phase storagev1alpha1.SnapshotPhase, msg string, err error) {
	var snap storagev1alpha1.Snapshot
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &snap); err != nil {
		if apierrors.IsNotFound(err) {
			return storagev1alpha1.SnapshotFailed, "Snapshot " + name + " was deleted", nil
		}
		return "", "", fmt.Errorf("get Snapshot %s: %w", name, err)
	}
	st := &snap.Status
	if st.Phase == storagev1alpha1.SnapshotSucceeded && stored(st) {
		return st.Phase, "", nil
	}
	msg = componentErrors(st)
	if msg == "" {
		msg = jobErr.Error()
	}
	patcher := status.NewLockingPatcher(&snap)
	st.Phase = storagev1alpha1.SnapshotFailed
	meta.RemoveStatusCondition(&st.Conditions, storagev1alpha1.ConditionStorageUnreachable) // no restic retries any more
	if c := meta.FindStatusCondition(st.Conditions, storagev1alpha1.ConditionBackupCompleted); c == nil || c.Status != metav1.ConditionFalse {
		status.Set(&st.Conditions, snap.Generation, storagev1alpha1.ConditionBackupCompleted, false,
			corev1alpha1.ReasonBackupFailed, msg)
	}
	_, err = patcher.Patch(ctx, r.Client, &snap)
	return st.Phase, msg, err
}

// stored reports whether every component of a Snapshot holds a restic
// snapshot.
func stored(st *storagev1alpha1.SnapshotStatus) bool {
	if len(st.Components) == 0 {
		return false
	}
	for _, c := range st.Components {
		if c.Phase != storagev1alpha1.ComponentSucceeded || c.ResticSnapshotID == "" {
			return false
		}
	}
	return true
}

// componentErrors joins the errors the runtime recorded, by component.
func componentErrors(st *storagev1alpha1.SnapshotStatus) string {
	names := make([]string, 0, len(st.Components))
	for name, c := range st.Components {
		if c.Error != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	msgs := make([]string, 0, len(names))
	for _, name := range names {
		msgs = append(msgs, name+": "+st.Components[name].Error)
	}
	return strings.Join(msgs, "; ")
}

// pruneHistory deletes the oldest finished BackupSessions of the same
// configuration and session beyond its sessionHistoryLimit, the current
// one included; their Jobs and settings go with them; their Snapshots
// stay. A session whose retention still runs is kept until it ends: its
// retention Job is its child and would go with it.
func (r *Reconciler) pruneHistory(ctx context.Context, p *pass) (*ctrl.Result, error) {
	limit := int(p.session.SessionHistoryLimit)
	siblings, err := r.siblings(ctx, r.Client, p.bks)
	if err != nil {
		return nil, err
	}
	busy, err := r.retentionBusy(ctx, p)
	if err != nil {
		return nil, err
	}
	finished := append([]corev1alpha1.BackupSession{*p.bks}, siblings...)
	return &ctrl.Result{}, r.deleteOldest(ctx, finished, limit, busy)
}

// retentionBusy names the runs of the session with a retention Job that
// has no outcome yet. The cache may not hold a Job just created: the
// RetentionApplied condition covers those (see retentionRunning).
func (r *Reconciler) retentionBusy(ctx context.Context, p *pass) (map[string]bool, error) {
	var list batchv1.JobList
	if err := r.Client.List(ctx, &list, client.InNamespace(p.bks.Namespace), client.MatchingLabels{
		corev1alpha1.LabelBackupConfiguration: p.bks.Spec.BackupConfiguration,
		corev1alpha1.LabelSession:             p.bks.Spec.Session,
	}, client.HasLabels{LabelRetentionOf}); err != nil {
		return nil, fmt.Errorf("list retention Jobs: %w", err)
	}
	busy := map[string]bool{}
	for i := range list.Items {
		if done, failed := jobs.Outcome(&list.Items[i]); done == nil && failed == nil {
			busy[list.Items[i].Labels[LabelRetentionOf]] = true
		}
	}
	return busy, nil
}

// deleteOldest deletes the finished sessions of runs beyond the newest
// limit, except those busy with retention.
func (r *Reconciler) deleteOldest(ctx context.Context, runs []corev1alpha1.BackupSession, limit int, busy map[string]bool) error {
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
		if busy[finished[i].Name] || retentionRunning(&finished[i]) {
			continue
		}
		if err := r.deleteSession(ctx, &finished[i]); err != nil {
			return err
		}
	}
	return nil
}

// retentionRunning reports whether a session's status says its retention
// Jobs still run.
func retentionRunning(b *corev1alpha1.BackupSession) bool {
	c := meta.FindStatusCondition(b.Status.Conditions, corev1alpha1.ConditionRetentionApplied)
	return c != nil && c.Reason == corev1alpha1.ReasonRetentionRunning
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
	err := r.Client.Delete(ctx, b, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete BackupSession %s: %w", b.Name, err)
	}
	return nil
}

// timeoutString is the session's backupTimeout for messages.
func timeoutString(s *corev1alpha1.Session) string {
	if s.BackupTimeout == nil {
		return s.Timeout().String() + ", the default"
	}
	return s.BackupTimeout.Duration.String()
}

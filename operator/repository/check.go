package repository

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

// LabelCheckOf marks a check Job with its Repository (shortened to fit).
const LabelCheckOf = "storage.keepsake.dev/check-of"

// CheckDeadline bounds a check Job: restic's own deadline for check is
// 3 hours, plus the wait for a lock.
const CheckDeadline = 4 * time.Hour

// AnnotationCheckRun on a check Job names its run, "<job>@<start time>":
// the Job passes it to the runtime, which writes it into
// status.integrityCheck.job with its verdict, so that the verdict of one
// run is never taken for the next's.
const AnnotationCheckRun = "storage.keepsake.dev/check-run"

// CheckJobName is the name of the integrity check Job of Repository repo:
// one at a time.
func CheckJobName(repo string) string { return jobs.ShortName("check-"+repo, jobs.MaxName) }

// checkIntegrity runs the Repository's integrity checks: a check Job
// (`keepsake run check`) when spec.integrityCheck's schedule says so, or
// when the check-requested annotation asks for one that no check answered
// yet; one at a time. The Job writes its verdict into
// status.integrityCheck; this step turns it into the IntegrityChecked
// condition, a Warning Event when the check failed, and deletes the
// finished Job.
func (r *Reconciler) checkIntegrity(ctx context.Context, p *pass) (*ctrl.Result, error) {
	job, run, err := r.maintenanceJob(ctx, p, CheckJobName(p.repo.Name))
	if !run {
		return nil, err
	}
	r.recordIntegrity(p)
	if job != nil {
		return nil, r.followCheck(ctx, p, job)
	}
	next, err := nextCheck(p.repo, time.Now())
	if err != nil {
		status.Set(&p.repo.Status.Conditions, p.repo.Generation, storagev1alpha1.ConditionIntegrityChecked, false,
			storagev1alpha1.ReasonInvalidCheckSchedule, err.Error())
		return nil, nil
	}
	if next.IsZero() || next.After(time.Now()) {
		p.nextCheck = next
		if !next.IsZero() || p.repo.Status.IntegrityCheck != nil {
			integrityStatus(p.repo).NextCheckTime = timeOrNil(next)
		}
		return nil, nil
	}
	return nil, r.startCheck(ctx, p)
}

// followCheck waits for a running check Job. Once it finished and its
// verdict is in the status, it tells the user when the check failed and
// deletes the Job; a Job that finished without a verdict gets an Error
// verdict first, and is deleted on the pass that sees it.
func (r *Reconciler) followCheck(ctx context.Context, p *pass, job *batchv1.Job) error {
	done, failed := jobs.Outcome(job)
	if done == nil && failed == nil {
		return nil
	}
	ic := p.repo.Status.IntegrityCheck
	if run := job.Annotations[AnnotationCheckRun]; ic == nil || ic.Job != run {
		return r.recordNoVerdict(ctx, p.repo, job, failed)
	}
	if ic.Result != storagev1alpha1.IntegrityPassed {
		reason := storagev1alpha1.ReasonIntegrityCheckFailed
		if ic.Result == storagev1alpha1.IntegrityError {
			reason = storagev1alpha1.ReasonIntegrityCheckError
		}
		r.Events.Eventf(p.repo, job, corev1.EventTypeWarning, reason, "Check", "Repository %s/%s: %s", p.repo.Namespace, p.repo.Name, ic.Message)
	}
	return r.deleteSyncJob(ctx, job)
}

// recordNoVerdict writes an Error verdict for a check Job that ended
// without one (it could not run, or not report). The patch is made with
// optimistic locking on a copy: a Repository read from a cache that has
// not yet seen the Job's own verdict must not overwrite it.
func (r *Reconciler) recordNoVerdict(ctx context.Context, repo *storagev1alpha1.Repository, job *batchv1.Job, failed *batchv1.JobCondition) error {
	msg := fmt.Sprintf("check Job %s ended without a verdict; see kubectl logs -n %s job/%s", job.Name, job.Namespace, job.Name)
	if failed != nil {
		msg = fmt.Sprintf("check Job %s failed: %s: %s; see kubectl logs -n %s job/%s", job.Name, failed.Reason, failed.Message, job.Namespace, job.Name)
	}
	fresh := repo.DeepCopy()
	base := fresh.DeepCopy()
	fresh.Status.IntegrityCheck = &storagev1alpha1.IntegrityCheckStatus{
		LastCheckTime: &metav1.Time{Time: time.Now()}, Result: storagev1alpha1.IntegrityError, Message: msg,
		Job: job.Annotations[AnnotationCheckRun], Request: job.Annotations[storagev1alpha1.AnnotationCheckRequested],
	}
	if err := r.Client.Status().Patch(ctx, fresh, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("record the end of check Job %s: %w", job.Name, err)
	}
	return nil
}

// recordIntegrity sets the IntegrityChecked condition from
// status.integrityCheck; nothing before the first check.
func (r *Reconciler) recordIntegrity(p *pass) {
	ic := p.repo.Status.IntegrityCheck
	if ic == nil || ic.Result == "" {
		return
	}
	ok, reason := false, storagev1alpha1.ReasonIntegrityCheckFailed
	switch ic.Result {
	case storagev1alpha1.IntegrityPassed:
		ok, reason = true, storagev1alpha1.ReasonIntegrityCheckPassed
	case storagev1alpha1.IntegrityError:
		reason = storagev1alpha1.ReasonIntegrityCheckError
	}
	msg := ic.Message
	if ic.LastCheckTime != nil {
		msg = fmt.Sprintf("%s (check of %s, run %s)", msg, ic.LastCheckTime.UTC().Format(time.RFC3339), ic.Job)
	}
	status.Set(&p.repo.Status.Conditions, p.repo.Generation, storagev1alpha1.ConditionIntegrityChecked, ok, reason, msg)
}

// nextCheck is when the next check of repo is due: now when the
// check-requested annotation asks for one no check answered, else as
// spec.integrityCheck.schedule says, counted from the last check (or the
// Repository's creation); zero when nothing is scheduled.
func nextCheck(repo *storagev1alpha1.Repository, now time.Time) (time.Time, error) {
	ic := repo.Status.IntegrityCheck
	if req := repo.Annotations[storagev1alpha1.AnnotationCheckRequested]; req != "" && (ic == nil || ic.Request != req) {
		return now, nil
	}
	if repo.Spec.IntegrityCheck == nil {
		return time.Time{}, nil
	}
	from := repo.CreationTimestamp.Time
	if ic != nil && ic.LastCheckTime != nil {
		from = ic.LastCheckTime.Time
	}
	return scheduleNext(repo.Spec.IntegrityCheck.Schedule, from)
}

// scheduleNext is the first time after from that schedule (an interval or
// a cron expression, in UTC) names.
func scheduleNext(schedule string, from time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(schedule); err == nil {
		if d < time.Minute {
			return time.Time{}, fmt.Errorf("integrityCheck.schedule %q: an interval must be at least 1m", schedule)
		}
		return from.Add(d), nil
	}
	sched, err := cron.ParseStandard(schedule)
	if err != nil {
		return time.Time{}, fmt.Errorf("integrityCheck.schedule %q is neither an interval such as 24h nor a cron expression such as \"0 3 * * 0\": %w", schedule, err)
	}
	return sched.Next(from.UTC()), nil
}

// startCheck creates the check Job of the Repository, owned by it, as the
// sync ServiceAccount.
func (r *Reconciler) startCheck(ctx context.Context, p *pass) error {
	var subset string
	if ic := p.repo.Spec.IntegrityCheck; ic != nil {
		subset = ic.ReadDataSubset
	}
	request := p.repo.Annotations[storagev1alpha1.AnnotationCheckRequested]
	run := CheckJobName(p.repo.Name) + "@" + time.Now().UTC().Format(time.RFC3339Nano)
	env := []corev1.EnvVar{
		{Name: "KEEPSAKE_READ_DATA_SUBSET", Value: subset},
		{Name: "KEEPSAKE_JOB", Value: run},
		{Name: "KEEPSAKE_REQUEST", Value: request},
	}
	job, err := r.repositoryJob(ctx, p, repositoryJob{
		name: CheckJobName(p.repo.Name), label: LabelCheckOf, command: "check", env: env,
		deadline: ptr.To(int64(CheckDeadline / time.Second)),
	})
	if job == nil || err != nil {
		return err
	}
	job.Annotations = map[string]string{storagev1alpha1.AnnotationCheckRequested: request, AnnotationCheckRun: run}
	return r.createRepositoryJob(ctx, p, job, "Check")
}

// runtimeFunction is the container of a check or sync Job: the runtime the
// init container copied, from the keepsake image itself.
func runtimeFunction(image, command string) *addonsv1alpha1.Function {
	return &addonsv1alpha1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: "keepsake-" + command},
		Spec: addonsv1alpha1.FunctionSpec{
			Image:   image,
			Command: []string{jobs.RuntimeDir + "/keepsake", "run", command},
		},
	}
}

// integrityStatus is repo's status.integrityCheck, created if unset.
func integrityStatus(repo *storagev1alpha1.Repository) *storagev1alpha1.IntegrityCheckStatus {
	if repo.Status.IntegrityCheck == nil {
		repo.Status.IntegrityCheck = &storagev1alpha1.IntegrityCheckStatus{}
	}
	return repo.Status.IntegrityCheck
}

func timeOrNil(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return &metav1.Time{Time: t.Truncate(time.Second)}
}

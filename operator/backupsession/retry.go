package backupsession

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
)

// LabelRetryOf names the BackupSession whose failure a retry repeats: the
// first run of the chain.
const LabelRetryOf = "core.keepsake.dev/retry-of"

// retriable are the failures a new run may fix: the backup itself failed.
// A missing configuration or session would fail the same way again.
var retriable = map[string]bool{
	corev1alpha1.ReasonBackupFailed:  true,
	corev1alpha1.ReasonBackupTimeout: true,
	// the storage may be back by the next run
	corev1alpha1.ReasonStorageUnreachable: true,
	corev1alpha1.ReasonResultMissing: true,
}

// RetryName is the name of the n-th retry of BackupSession first, short
// enough for the label that carries a session's name (63 characters).
func RetryName(first string, n int32) string {
	return jobs.ShortName(fmt.Sprintf("%s-retry-%d", first, n), jobs.MaxName)
}

// retry creates, retryConfig.delay after a retriable failure, a new
// BackupSession of the same session, while retries are left. The chain
// is counted in spec.retryLeft: the first run has maxRetry left, each
// retry one fewer.
func (r *Reconciler) retry(ctx context.Context, p *pass) (*ctrl.Result, error) {
	rc := p.session.RetryConfig
	bks := p.bks
	if bks.Status.Phase != corev1alpha1.BackupSessionFailed || rc == nil || rc.MaxRetry <= 0 {
		return nil, nil
	}
	c := meta.FindStatusCondition(bks.Status.Conditions, corev1alpha1.ConditionBackupSucceeded)
	if c == nil || !retriable[c.Reason] {
		return nil, nil
	}
	first, left := bks.Name, rc.MaxRetry
	if of := bks.Labels[LabelRetryOf]; of != "" {
		first, left = of, bks.Spec.RetryLeft
	}
	if left <= 0 {
		return nil, nil
	}
	failedAt := bks.CreationTimestamp.Time
	if bks.Status.CompletionTime != nil {
		failedAt = bks.Status.CompletionTime.Time
	}
	at := failedAt.Add(rc.Delay.Duration)
	if wait := at.Sub(p.now.Time); wait > 0 {
		bks.Status.NextRetry = &metav1.Time{Time: at}
		return &ctrl.Result{RequeueAfter: wait}, nil
	}
	n := rc.MaxRetry - left + 1
	next := &corev1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: bks.Namespace, Name: RetryName(first, n), Labels: map[string]string{
			corev1alpha1.LabelBackupConfiguration: bks.Spec.BackupConfiguration,
			corev1alpha1.LabelSession:             bks.Spec.Session,
			LabelRetryOf:                          first,
		}},
		Spec: corev1alpha1.BackupSessionSpec{
			BackupConfiguration: bks.Spec.BackupConfiguration, Session: bks.Spec.Session, RetryLeft: left - 1,
		},
	}
	err := r.Client.Create(ctx, next)
	if apierrors.IsAlreadyExists(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("create retry %s: %w", next.Name, err)
	}
	bks.Status.NextRetry = nil
	r.Events.Eventf(bks, nil, corev1.EventTypeNormal, "Retrying", "Backup",
		"BackupSession %s retries this failed run (retry %s of %d)", next.Name, strconv.Itoa(int(n)), rc.MaxRetry)
	return nil, nil
}

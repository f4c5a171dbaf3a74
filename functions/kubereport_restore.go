package functions

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// RestoreSessionReporter records a restore in its RestoreSession's
// status.components and sums it in status.progress. It leaves the
// session's phase to the operator.
type RestoreSessionReporter struct {
	c        client.Client
	session  *corev1alpha1.RestoreSession
	progress *throttle
}

// NewRestoreSessionReporter returns a reporter for RestoreSession name in
// namespace. Progress patches come at most every DefaultProgressInterval;
// WithProgressInterval changes that.
func NewRestoreSessionReporter(c client.Client, namespace, name string) *RestoreSessionReporter {
	rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	return &RestoreSessionReporter{c: c, session: rs, progress: newThrottle(DefaultProgressInterval)}
}

// WithProgressInterval sets the least time between two progress patches
// of one component, and returns r.
func (r *RestoreSessionReporter) WithProgressInterval(every time.Duration) *RestoreSessionReporter {
	if every > 0 {
		r.progress = newThrottle(every)
	}
	return r
}

var _ Reporter = (*RestoreSessionReporter)(nil)

// Progress implements Reporter: the component is Running, with how much
// is restored of how much and how fast; in the background, at most every
// progress interval. A failed or conflicting patch is dropped.
func (r *RestoreSessionReporter) Progress(ctx context.Context, p Progress) {
	r.progress.try(p.Component, func() {
		ctx, cancel := context.WithTimeout(ctx, progressTimeout)
		defer cancel()
		t := transfer{done: p.Bytes, total: p.Total, elapsed: time.Duration(p.Elapsed)}.status(time.Now())
		_ = r.update(ctx, p.Component, func(c *corev1alpha1.RestoreComponentStatus) bool {
			if c.Phase == storagev1alpha1.ComponentSucceeded || c.Phase == storagev1alpha1.ComponentFailed {
				return false // the result is in
			}
			c.Phase, c.Progress, c.Transfer = storagev1alpha1.ComponentRunning, restoreLine(t), t
			return true
		})
	})
}

// Component implements Reporter: the component's final phase, duration,
// error, amount restored and what the driver says it restored.
func (r *RestoreSessionReporter) Component(ctx context.Context, res ComponentResult) error {
	r.progress.close(res.Component)
	err := withRetry(ctx, func(ctx context.Context) error {
		return r.update(ctx, res.Component, func(c *corev1alpha1.RestoreComponentStatus) bool {
			c.Duration = humanDuration(time.Duration(res.Duration))
			c.Phase, c.Error = storagev1alpha1.ComponentSucceeded, "" // a retried Job's success clears the last error
			if res.Phase == PhaseSucceeded {
				c.Transfer = finished(res.Size, time.Duration(res.Duration), time.Now())
			} else {
				c.Phase, c.Error = storagev1alpha1.ComponentFailed, res.Error
				c.Transfer = transfer{done: res.Size, total: uint64(totalOf(c.Transfer)), elapsed: time.Duration(res.Duration)}.status(time.Now())
			}
			c.Progress = restoreLine(c.Transfer)
			c.Restored = res.Restored // whole: nothing of an earlier try survives
			return true
		})
	})
	if err != nil {
		return fmt.Errorf("record %s in RestoreSession %s/%s: %w", res.Component, r.session.Namespace, r.session.Name, err)
	}
	return nil
}

// totalOf is p's total, zero when p is nil.
func totalOf(p *storagev1alpha1.TransferProgress) int64 {
	if p == nil {
		return 0
	}
	return p.TotalBytes
}

// LockWait implements LockWaitReporter: the component's progress says
// whose lock the restore waits for.
func (r *RestoreSessionReporter) LockWait(ctx context.Context, w LockWait) {
	ctx, cancel := context.WithTimeout(ctx, progressTimeout)
	defer cancel()
	_ = r.update(ctx, w.Component, func(c *corev1alpha1.RestoreComponentStatus) bool {
		c.Phase, c.Progress = storagev1alpha1.ComponentPending, w.Message
		return true
	})
}

var _ LockWaitReporter = (*RestoreSessionReporter)(nil)

// StorageTrouble implements StorageTroubleReporter: the RestoreSession
// has condition StorageUnreachable while restic retries its storage.
func (r *RestoreSessionReporter) StorageTrouble(ctx context.Context, t StorageTrouble) {
	_ = withRetry(ctx, func(ctx context.Context) error {
		rs := r.session.DeepCopy()
		if err := r.c.Get(ctx, client.ObjectKeyFromObject(rs), rs); err != nil {
			return err
		}
		base := rs.DeepCopy()
		if !setStorageTrouble(&rs.Status.Conditions, rs.Generation, t) {
			return nil
		}
		return r.c.Status().Patch(ctx, rs, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
}

var _ StorageTroubleReporter = (*RestoreSessionReporter)(nil)

// Done implements Reporter: the operator judges the session from the Job
// and the components.
func (r *RestoreSessionReporter) Done(context.Context, RunResult) error { return nil }

// update reads the session, lets change edit the component (false: leave
// it), sums the components into status.progress and patches the result.
// The patch carries the resourceVersion, so the sum is never computed from
// stale components.
func (r *RestoreSessionReporter) update(ctx context.Context, component string, change func(*corev1alpha1.RestoreComponentStatus) bool) error {
	rs := r.session.DeepCopy()
	if err := r.c.Get(ctx, client.ObjectKeyFromObject(rs), rs); err != nil {
		return err
	}
	base := rs.DeepCopy()
	c := rs.Status.Components[component]
	if !change(&c) {
		return nil
	}
	if rs.Status.Components == nil {
		rs.Status.Components = map[string]corev1alpha1.RestoreComponentStatus{}
	}
	rs.Status.Components[component] = c
	if c.Phase == storagev1alpha1.ComponentSucceeded || c.Phase == storagev1alpha1.ComponentFailed {
		meta.RemoveStatusCondition(&rs.Status.Conditions, storagev1alpha1.ConditionStorageUnreachable) // the result is in
	}
	cs := make([]componentProgress, 0, len(rs.Status.Components))
	for _, c := range rs.Status.Components {
		cs = append(cs, componentProgress{progress: c.Transfer, running: c.Phase == storagev1alpha1.ComponentRunning})
	}
	rs.Status.Progress = sumProgress(cs)
	return r.c.Status().Patch(ctx, rs, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

package functions

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// SnapshotReporter records a backup in the Snapshot objects of its
// BackupSession: one per repository, found by the session's label and
// spec.repository. It leaves the BackupSession itself to the operator.
type SnapshotReporter struct {
	c                        client.Client
	namespace, backupSession string
	progress                 *throttle
	estimates                sync.Map // repository/component: the parent's size (uint64)
}

// NewSnapshotReporter returns a reporter for BackupSession backupSession
// in namespace. Progress patches come at most every
// DefaultProgressInterval; WithProgressInterval changes that.
func NewSnapshotReporter(c client.Client, namespace, backupSession string) *SnapshotReporter {
	return &SnapshotReporter{c: c, namespace: namespace, backupSession: backupSession, progress: newThrottle(DefaultProgressInterval)}
}

// WithProgressInterval sets the least time between two progress patches
// of one component, and returns r.
func (r *SnapshotReporter) WithProgressInterval(every time.Duration) *SnapshotReporter {
	if every > 0 {
		r.progress = newThrottle(every)
	}
	return r
}

var _ Reporter = (*SnapshotReporter)(nil)

// Progress implements Reporter: the component is Running, with its bytes
// done, rate and estimated total, and the Snapshot's sum; in the
// background and at most every progress interval. A failed or
// conflicting patch is dropped: the next one brings fresher numbers.
func (r *SnapshotReporter) Progress(ctx context.Context, p Progress) {
	r.progress.try(p.Repository+"/"+p.Component, func() {
		ctx, cancel := context.WithTimeout(ctx, progressTimeout)
		defer cancel()
		snaps, _ := r.snapshots(ctx, p.Repository)
		for i := range snaps {
			_ = r.recordProgress(ctx, &snaps[i], p)
		}
	})
}

// recordProgress patches p into snap, unless the component's result is
// already in.
func (r *SnapshotReporter) recordProgress(ctx context.Context, snap *storagev1alpha1.Snapshot, p Progress) error {
	base := snap.DeepCopy()
	cs := snap.Status.Components[p.Component]
	if cs.Phase == storagev1alpha1.ComponentSucceeded || cs.Phase == storagev1alpha1.ComponentFailed {
		return nil
	}
	t := transfer{done: p.Bytes, total: p.Total, elapsed: time.Duration(p.Elapsed)}
	if t.total == 0 {
		t.total = r.estimate(ctx, snap, p.Component)
		t.estimated = t.total > 0
	}
	cs.Phase, cs.Progress = storagev1alpha1.ComponentRunning, t.status(time.Now())
	if snap.Status.Components == nil {
		snap.Status.Components = map[string]storagev1alpha1.ComponentStatus{}
	}
	snap.Status.Components[p.Component] = cs
	snap.Status.Progress = snapshotProgress(snap.Status.Components)
	return r.c.Status().Patch(ctx, snap, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// estimate is the size of component in snap's parent, the Snapshot that
// was the newest Succeeded one of the repository when snap was made: the
// best guess of this dump's size. Zero when there is none; looked up once.
func (r *SnapshotReporter) estimate(ctx context.Context, snap *storagev1alpha1.Snapshot, component string) uint64 {
	key := snap.Spec.Repository + "/" + component
	if v, ok := r.estimates.Load(key); ok {
		return v.(uint64)
	}
	var size uint64
	if snap.Spec.Parent != "" {
		var parent storagev1alpha1.Snapshot
		err := r.c.Get(ctx, client.ObjectKey{Namespace: snap.Namespace, Name: snap.Spec.Parent}, &parent)
		if err != nil && !apierrors.IsNotFound(err) {
			return 0 // try again next time
		}
		size = uint64(max(parent.Status.Components[component].SizeBytes, 0))
	}
	r.estimates.Store(key, size)
	return size
}

// Component implements Reporter: it records res in the Snapshot of its
// repository and sums the Snapshot up. An error means the result is not
// recorded, and the run must not pass for a success.
func (r *SnapshotReporter) Component(ctx context.Context, res ComponentResult) error {
	r.progress.close(res.Repository + "/" + res.Component)
	err := withRetry(ctx, func(ctx context.Context) error {
		snaps, err := r.snapshots(ctx, res.Repository)
		if err != nil {
			return err
		}
		for i := range snaps {
			if err := r.record(ctx, &snaps[i], res); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %s of repository %s in its Snapshot: %w", res.Component, res.Repository, err)
	}
	return nil
}

// LockWait implements LockWaitReporter: the repository's Snapshots of
// the session get condition WaitingForLock, until their result is in.
func (r *SnapshotReporter) LockWait(ctx context.Context, w LockWait) {
	ctx, cancel := context.WithTimeout(ctx, progressTimeout)
	defer cancel()
	snaps, _ := r.snapshots(ctx, w.Repository)
	for i := range snaps {
		_ = setWaitingForLock(ctx, r.c, &snaps[i], w.Message)
	}
}

var _ LockWaitReporter = (*SnapshotReporter)(nil)

// StorageTrouble implements StorageTroubleReporter: the repository's
// Snapshots of the session have condition StorageUnreachable while restic
// retries the storage, until it answers again or the result is in.
func (r *SnapshotReporter) StorageTrouble(ctx context.Context, t StorageTrouble) {
	_ = withRetry(ctx, func(ctx context.Context) error {
		snaps, err := r.snapshots(ctx, t.Repository)
		if err != nil {
			return err
		}
		for i := range snaps {
			snap := &snaps[i]
			base := snap.DeepCopy()
			if !setStorageTrouble(&snap.Status.Conditions, snap.Generation, t) {
				continue
			}
			if err := r.c.Status().Patch(ctx, snap, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
				return err
			}
		}
		return nil
	})
}

var _ StorageTroubleReporter = (*SnapshotReporter)(nil)

// setWaitingForLock sets snap's WaitingForLock condition to message.
func setWaitingForLock(ctx context.Context, c client.Client, snap *storagev1alpha1.Snapshot, message string) error {
	base := snap.DeepCopy()
	meta.SetStatusCondition(&snap.Status.Conditions, metav1.Condition{
		Type: storagev1alpha1.ConditionWaitingForLock, Status: metav1.ConditionTrue, ObservedGeneration: snap.Generation,
		Reason: storagev1alpha1.ReasonRepositoryLocked, Message: message,
	})
	return c.Status().Patch(ctx, snap, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// Done implements Reporter: the operator judges the session from the Job
// and the Snapshots.
func (r *SnapshotReporter) Done(context.Context, RunResult) error { return nil }

// snapshots returns the session's Snapshots of repository; none is an error.
func (r *SnapshotReporter) snapshots(ctx context.Context, repository string) ([]storagev1alpha1.Snapshot, error) {
	var list storagev1alpha1.SnapshotList
	if err := r.c.List(ctx, &list, client.InNamespace(r.namespace),
		client.MatchingLabels{corev1alpha1.LabelBackupSession: r.backupSession}); err != nil {
		return nil, fmt.Errorf("list Snapshots: %w", err)
	}
	var snaps []storagev1alpha1.Snapshot
	for _, s := range list.Items {
		if s.Spec.Repository == repository {
			snaps = append(snaps, s)
		}
	}
	if len(snaps) == 0 {
		return nil, fmt.Errorf("no Snapshot in namespace %s has label %s=%s and repository %s",
			r.namespace, corev1alpha1.LabelBackupSession, r.backupSession, repository)
	}
	return snaps, nil
}

// record patches snap's status with res. The patch carries the
// resourceVersion: the summary is computed from the components read, so a
// concurrent writer makes it conflict and withRetry reads again.
func (r *SnapshotReporter) record(ctx context.Context, snap *storagev1alpha1.Snapshot, res ComponentResult) error {
	base := snap.DeepCopy()
	if snap.Status.Components == nil {
		snap.Status.Components = map[string]storagev1alpha1.ComponentStatus{}
	}
	cs := componentStatus(res)
	if cs.Progress == nil { // failed: how far it got
		cs.Progress = snap.Status.Components[res.Component].Progress
	}
	snap.Status.Components[res.Component] = cs
	meta.RemoveStatusCondition(&snap.Status.Conditions, storagev1alpha1.ConditionWaitingForLock) // the wait is over
	meta.RemoveStatusCondition(&snap.Status.Conditions, storagev1alpha1.ConditionStorageUnreachable)
	summarize(snap, failureReason(snap, res), time.Now())
	return r.c.Status().Patch(ctx, snap, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// componentStatus is res as a Snapshot's status.components entry.
func componentStatus(res ComponentResult) storagev1alpha1.ComponentStatus {
	cs := storagev1alpha1.ComponentStatus{
		Phase: storagev1alpha1.ComponentFailed, Duration: humanDuration(time.Duration(res.Duration)),
		Error: res.Error, Driver: res.Driver,
	}
	if res.Phase == PhaseSucceeded {
		cs.Phase = storagev1alpha1.ComponentSucceeded
		cs.ResticSnapshotID = res.SnapshotID
		cs.Path = "/" + strings.TrimPrefix(res.Component, "/") // where --stdin-filename puts it
		cs.Size, cs.SizeBytes = humanBytes(res.Size), int64(res.Size)
		cs.DataAdded = humanBytes(res.DataAdded)
		cs.Counts = recordedCounts(res.Counts)
		cs.Progress = finished(res.Size, time.Duration(res.Duration), time.Now())
	}
	return cs
}

// recordedCounts are a dump's counts as a Snapshot records them; nil for
// none. A count beyond int64 (never met) is recorded as its maximum.
func recordedCounts(counts map[string]uint64) map[string]int64 {
	if len(counts) == 0 {
		return nil
	}
	out := make(map[string]int64, len(counts))
	for unit, n := range counts {
		out[unit] = int64(min(n, math.MaxInt64))
	}
	return out
}

// failureReason is the BackupCompleted reason should the Snapshot fail:
// res's side when res failed, else the reason an earlier failure gave.
func failureReason(snap *storagev1alpha1.Snapshot, res ComponentResult) string {
	if res.Phase != PhaseSucceeded {
		if res.FailedIn == FailedInRepository {
			return storagev1alpha1.ReasonUploadFailed
		}
		return storagev1alpha1.ReasonDumpFailed
	}
	c := meta.FindStatusCondition(snap.Status.Conditions, storagev1alpha1.ConditionBackupCompleted)
	if c != nil && c.Status == metav1.ConditionFalse {
		return c.Reason
	}
	return storagev1alpha1.ReasonDumpFailed
}

// summarize sets the Snapshot's phase, totals and BackupCompleted
// condition from its components: Failed (with reason) once one failed,
// Succeeded once all succeeded, Running while one is still running.
func summarize(snap *storagev1alpha1.Snapshot, reason string, now time.Time) {
	st := &snap.Status
	var size int64
	var failed []string
	running := false
	for _, name := range slices.Sorted(maps.Keys(st.Components)) {
		c := st.Components[name]
		size += c.SizeBytes
		switch c.Phase {
		case storagev1alpha1.ComponentFailed:
			failed = append(failed, name+": "+c.Error)
		case storagev1alpha1.ComponentSucceeded:
		default:
			running = true
		}
	}
	st.TotalComponents = int32(len(st.Components))
	st.Progress = snapshotProgress(st.Components)
	st.SizeBytes, st.Size = size, humanBytes(uint64(size))
	st.SnapshotTime = &metav1.Time{Time: now}
	cond := metav1.Condition{Type: storagev1alpha1.ConditionBackupCompleted, ObservedGeneration: snap.Generation}
	switch {
	case len(failed) > 0:
		st.Phase, cond.Status = storagev1alpha1.SnapshotFailed, metav1.ConditionFalse
		cond.Reason, cond.Message = reason, strings.Join(failed, "; ")
	case running:
		st.Phase = storagev1alpha1.SnapshotRunning
		return
	default:
		st.Phase, cond.Status = storagev1alpha1.SnapshotSucceeded, metav1.ConditionTrue
		cond.Reason, cond.Message = storagev1alpha1.ReasonBackupSucceeded, fmt.Sprintf("%d component(s) stored", len(st.Components))
	}
	meta.SetStatusCondition(&st.Conditions, cond)
}

package repository

import (
	"context"
	"fmt"
	"github.com/dustin/go-humanize"
	"sort"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// recentSnapshots is how many Snapshots status.recentSnapshots lists.
const recentSnapshots = 5

// summarize sums up the Repository's Snapshots in its status: how many
// succeeded, their logical size (the sum of their sizes), the latest backup
// and the newest Snapshots. Snapshots being deleted no longer count. The
// stored size (status.size) is not theirs to say: deduplication and
// compression make it much smaller, and the sync and check Jobs measure it.
func (r *Reconciler) summarize(ctx context.Context, p *pass) (*ctrl.Result, error) {
	snaps, err := r.snapshots(ctx, p.repo)
	if err != nil {
		return nil, err
	}
	p.snaps = snaps
	st := &p.repo.Status
	st.SnapshotCount, st.LogicalSizeBytes, st.LogicalSize, st.LastBackupTime = 0, 0, "", nil
	for _, s := range snaps {
		if s.Status.Phase != storagev1alpha1.SnapshotSucceeded {
			continue
		}
		st.SnapshotCount++
		st.LogicalSizeBytes += s.Status.SizeBytes
		if t := s.Status.SnapshotTime; t != nil && (st.LastBackupTime == nil || st.LastBackupTime.Before(t)) {
			st.LastBackupTime = t.DeepCopy()
		}
	}
	if st.SnapshotCount > 0 {
		st.LogicalSize = humanBytes(st.LogicalSizeBytes)
	}
	st.RecentSnapshots = nil
	for i := 0; i < len(snaps) && i < recentSnapshots; i++ {
		st.RecentSnapshots = append(st.RecentSnapshots, summary(&snaps[i]))
	}
	return nil, nil
}

// snapshots lists the Repository's Snapshots that are not being deleted,
// newest first.
func (r *Reconciler) snapshots(ctx context.Context, repo *storagev1alpha1.Repository) ([]storagev1alpha1.Snapshot, error) {
	var list storagev1alpha1.SnapshotList
	if err := r.Client.List(ctx, &list, client.InNamespace(repo.Namespace)); err != nil {
		return nil, fmt.Errorf("list Snapshots: %w", err)
	}
	var out []storagev1alpha1.Snapshot
	for _, s := range list.Items {
		if s.Spec.Repository == repo.Name && s.DeletionTimestamp.IsZero() {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NewerThan(&out[j]) })
	return out, nil
}

// summary is the line about s in recentSnapshots.
func summary(s *storagev1alpha1.Snapshot) storagev1alpha1.SnapshotSummary {
	phase := s.Status.Phase
	if phase == "" {
		phase = storagev1alpha1.SnapshotPending
	}
	return storagev1alpha1.SnapshotSummary{
		Name:         s.Name,
		Phase:        phase,
		SnapshotTime: s.Status.SnapshotTime.DeepCopy(),
		Size:         s.Status.Size,
	}
}

// humanBytes formats n as the runtime writes Snapshot sizes, e.g. "1.2 MiB".
func humanBytes(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }

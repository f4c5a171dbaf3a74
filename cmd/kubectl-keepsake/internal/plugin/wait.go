package plugin

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// pollInterval is how often --wait reads the session.
const pollInterval = 2 * time.Second

// waitBackup reads the BackupSession until it ends, printing each change
// of its phase and of its Snapshots' components, and the progress of the
// Snapshot furthest behind. A session that did not succeed is an error
// carrying its reason.
func waitBackup(ctx context.Context, e *env, c client.Client, bks *corev1alpha1.BackupSession) error {
	var last string
	view := newProgressView(e.stdout)
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(bks), bks); err != nil {
			return false, fmt.Errorf("read BackupSession %s: %w", bks.Name, err)
		}
		summary, repository, progress := snapshotProgress(ctx, c, bks)
		line := fmt.Sprintf("%s %s", cmp.Or(bks.Status.Phase, corev1alpha1.BackupSessionPending), summary)
		if line != last {
			view.news(strings.TrimSpace(line))
			last = line
		}
		if !bks.IsFinished() {
			view.show(repository, progress)
		}
		return bks.IsFinished(), nil
	})
	view.end()
	if err != nil {
		return err
	}
	if bks.Status.Phase != corev1alpha1.BackupSessionSucceeded {
		return fmt.Errorf("backup %s %s: %s (kubectl keepsake logs %s)", bks.Name, bks.Status.Phase,
			conditionMessage(bks.Status.Conditions), bks.Name)
	}
	return nil
}

// snapshotProgress summarizes the session's Snapshots: phase, size and
// bytes added per component. It returns with it the progress of the
// Snapshot furthest behind, and its repository: every repository reads
// the same dump, so that one says how far the backup has got.
func snapshotProgress(ctx context.Context, c client.Client, bks *corev1alpha1.BackupSession) (string, string, *storagev1alpha1.TransferProgress) {
	var parts []string
	var repository string
	var slowest *storagev1alpha1.TransferProgress
	for _, ref := range bks.Status.Snapshots {
		var snap storagev1alpha1.Snapshot
		if err := c.Get(ctx, client.ObjectKey{Namespace: bks.Namespace, Name: ref.Name}, &snap); err != nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s%s%s", ref.Repository, snap.Status.Phase, components(snap.Status.Components), waits(snap.Status.Conditions)))
		if p := snap.Status.Progress; p != nil && (slowest == nil || p.BytesDone < slowest.BytesDone) {
			repository, slowest = ref.Repository, p
		}
	}
	return strings.Join(parts, "; "), repository, slowest
}

func components(cs map[string]storagev1alpha1.ComponentStatus) string {
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		c := cs[n]
		s := n + " " + string(c.Phase)
		if c.Size != "" {
			s += " " + c.Size
		}
		if c.DataAdded != "" {
			s += ", added " + c.DataAdded
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, ", ") + ")"
}

// waits says what a running backup or restore waits for, as its Job
// reports it: a repository lock another run holds, or a storage restic
// keeps retrying. "" when it waits for nothing.
func waits(conds []metav1.Condition) string {
	var out []string
	for _, t := range []string{storagev1alpha1.ConditionWaitingForLock, storagev1alpha1.ConditionStorageUnreachable} {
		if c := meta.FindStatusCondition(conds, t); c != nil && c.Status == metav1.ConditionTrue {
			out = append(out, c.Type+": "+c.Message)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " [" + strings.Join(out, "; ") + "]"
}

// conditionMessage is the reason and message of the newest condition, the
// one that says why a session ended as it did.
func conditionMessage(conds []metav1.Condition) string {
	var newest *metav1.Condition
	for i := range conds {
		c := &conds[i]
		if newest == nil || c.LastTransitionTime.After(newest.LastTransitionTime.Time) {
			newest = c
		}
	}
	if newest == nil {
		return "no condition says why"
	}
	return newest.Reason + ": " + newest.Message
}

// waitRestore reads the RestoreSession until it ends, printing each change
// of its phase and components, and its progress; a restore that did not
// succeed is an error.
func waitRestore(ctx context.Context, e *env, c client.Client, rs *corev1alpha1.RestoreSession) error {
	var last string
	view := newProgressView(e.stdout)
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(rs), rs); err != nil {
			return false, fmt.Errorf("read RestoreSession %s: %w", rs.Name, err)
		}
		line := string(cmp.Or(rs.Status.Phase, corev1alpha1.RestorePending))
		names := make([]string, 0, len(rs.Status.Components))
		for n := range rs.Status.Components {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			comp := rs.Status.Components[n]
			line += fmt.Sprintf(" %s: %s", n, comp.Phase)
			if comp.Phase != storagev1alpha1.ComponentRunning { // while it runs, the progress view has the numbers
				line += " " + comp.Progress
			}
		}
		line += waits(rs.Status.Conditions)
		if line != last {
			view.news(strings.TrimSpace(line))
			last = line
		}
		finished := restoreFinished(rs.Status.Phase)
		if !finished {
			view.show(rs.Name, rs.Status.Progress)
		}
		return finished, nil
	})
	view.end()
	if err != nil {
		return err
	}
	if rs.Status.Phase != corev1alpha1.RestoreSucceeded {
		return fmt.Errorf("restore %s %s: %s (kubectl keepsake logs %s)", rs.Name, rs.Status.Phase,
			conditionMessage(rs.Status.Conditions), rs.Name)
	}
	return nil
}

func restoreFinished(p corev1alpha1.RestoreSessionPhase) bool {
	return p == corev1alpha1.RestoreSucceeded || p == corev1alpha1.RestoreFailed || p == corev1alpha1.RestoreInvalid
}

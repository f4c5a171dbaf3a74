package plugin

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// pollInterval is how often --wait reads the session.
const pollInterval = 2 * time.Second

// waitBackup reads the BackupSession until it ends, printing each change
// of its phase and of its Snapshots' components. A session that did not
// succeed is an error carrying its reason.
func waitBackup(ctx context.Context, e *env, c client.Client, bks *corev1alpha1.BackupSession) error {
	var last string
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(bks), bks); err != nil {
			return false, fmt.Errorf("read BackupSession %s: %w", bks.Name, err)
		}
		line := fmt.Sprintf("%s %s", cmp.Or(bks.Status.Phase, corev1alpha1.BackupSessionPending), snapshotProgress(ctx, c, bks))
		if line != last {
			fmt.Fprintf(e.stdout, "%s  %s\n", time.Now().Format(time.TimeOnly), line)
			last = line
		}
		return bks.IsFinished(), nil
	})
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
// bytes added per component.
func snapshotProgress(ctx context.Context, c client.Client, bks *corev1alpha1.BackupSession) string {
	var parts []string
	for _, ref := range bks.Status.Snapshots {
		var snap storagev1alpha1.Snapshot
		if err := c.Get(ctx, client.ObjectKey{Namespace: bks.Namespace, Name: ref.Name}, &snap); err != nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s%s", ref.Repository, snap.Status.Phase, components(snap.Status.Components)))
	}
	return strings.Join(parts, "; ")
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
// of its phase and components; a restore that did not succeed is an error.
func waitRestore(ctx context.Context, e *env, c client.Client, rs *corev1alpha1.RestoreSession) error {
	var last string
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
			line += fmt.Sprintf(" %s: %s %s", n, comp.Phase, comp.Progress)
		}
		if line != last {
			fmt.Fprintf(e.stdout, "%s  %s\n", time.Now().Format(time.TimeOnly), line)
			last = line
		}
		return restoreFinished(rs.Status.Phase), nil
	})
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

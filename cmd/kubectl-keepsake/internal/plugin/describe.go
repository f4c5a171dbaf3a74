package plugin

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// recentSnapshots is how many Snapshots describe shows per repository.
const recentSnapshots = 5

func describeCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "describe BACKUPCONFIGURATION",
		Short: "Show a BackupConfiguration, its sessions, repositories and recent Snapshots as a tree",
		Args:  exactArgs(1, "one BackupConfiguration name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			return describe(cmd.Context(), c, ns, args[0], e.stdout)
		},
	}
}

func describe(ctx context.Context, c client.Client, ns, name string, w io.Writer) error {
	bc, err := getConfiguration(ctx, c, ns, name)
	if err != nil {
		return err
	}
	t := bc.Spec.Target
	fmt.Fprintf(w, "BackupConfiguration %s/%s  %s  (target %s %s)\n", ns, bc.Name, orNone(string(bc.Status.Phase)), t.Kind, t.Name)
	conditions(w, "├─ ", bc.Status.Conditions)
	for _, s := range bc.Spec.Sessions {
		fmt.Fprintf(w, "├─ session %s  schedule %q  addon %s\n", s.Name, s.Scheduler.Schedule, s.Addon.Name)
		for _, st := range bc.Status.Sessions {
			if st.Name == s.Name {
				fmt.Fprintf(w, "│  ├─ next backup %s, last success %s\n", when(st.NextSchedule), when(st.LastSuccessfulBackup))
				for _, b := range st.RecentBackups {
					fmt.Fprintf(w, "│  ├─ backupsession/%s  %s  %s\n", b.Name, b.Phase, b.Duration)
				}
			}
		}
		for _, r := range s.Repositories {
			if err := describeRepository(ctx, c, ns, bc.Name, r.Name, w); err != nil {
				return err
			}
		}
	}
	return nil
}

// describeRepository shows one Repository with its newest Snapshots of
// the configuration.
func describeRepository(ctx context.Context, c client.Client, ns, config, name string, w io.Writer) error {
	var repo storagev1alpha1.Repository
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &repo); err != nil {
		fmt.Fprintf(w, "│  └─ repository %s: %v\n", name, client.IgnoreNotFound(err))
		return nil
	}
	st := repo.Status
	fmt.Fprintf(w, "│  └─ repository %s  %s  %d snapshots, %s\n", name, orNone(string(st.Phase)), st.SnapshotCount, orNone(st.Size))
	conditions(w, "│     ├─ ", st.Conditions)
	list, err := listSnapshots(ctx, c, ns, config, name)
	if err != nil {
		return err
	}
	for i, s := range list.Items {
		if i == recentSnapshots {
			fmt.Fprintf(w, "│     └─ ... %d more (kubectl keepsake snapshots --repository %s)\n", len(list.Items)-i, name)
			break
		}
		fmt.Fprintf(w, "│     ├─ snapshot/%s  %s  %s  %s ago\n", s.Name, s.Status.Phase, orNone(s.Status.Size),
			duration.HumanDuration(time.Since(snapshotTime(&s))))
	}
	return nil
}

// conditions prints one line per condition that is not True, and a
// one-line summary when all are.
func conditions(w io.Writer, indent string, conds []metav1.Condition) {
	ok := 0
	for _, c := range conds {
		if c.Status == metav1.ConditionTrue {
			ok++
			continue
		}
		fmt.Fprintf(w, "%s%s=%s  %s: %s\n", indent, c.Type, c.Status, c.Reason, c.Message)
	}
	if ok > 0 && ok == len(conds) {
		fmt.Fprintf(w, "%sall %d conditions True\n", indent, ok)
	}
}

func when(t *metav1.Time) string {
	if t == nil {
		return "<none>"
	}
	d := time.Until(t.Time)
	if d > 0 {
		return t.UTC().Format(time.DateTime) + " (in " + duration.HumanDuration(d) + ")"
	}
	return t.UTC().Format(time.DateTime) + " (" + duration.HumanDuration(-d) + " ago)"
}

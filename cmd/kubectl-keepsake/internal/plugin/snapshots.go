package plugin

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

func snapshotsCommand(e *env) *cobra.Command {
	var repository string
	print := genericclioptions.NewPrintFlags("").WithTypeSetter(newScheme())
	output := ""
	cmd := &cobra.Command{
		Use:   "snapshots [BACKUPCONFIGURATION]",
		Short: "List Snapshots, newest first: of a configuration, of a repository, or all in the namespace",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			var config string
			if len(args) == 1 {
				config = args[0]
				if _, err := getConfiguration(cmd.Context(), c, ns, config); err != nil {
					return err
				}
			}
			list, err := listSnapshots(cmd.Context(), c, ns, config, repository)
			if err != nil {
				return err
			}
			if output == "" || output == "wide" {
				return snapshotTable(e.stdout, list.Items, output == "wide")
			}
			*print.OutputFormat = output
			p, err := print.ToPrinter()
			if err != nil {
				return usageError{err}
			}
			return p.PrintObj(list, e.stdout)
		},
	}
	cmd.Flags().StringVar(&repository, "repository", "", "only the Snapshots of this Repository")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json, yaml or wide")
	return cmd
}

// listSnapshots lists the namespace's Snapshots, of one configuration or
// repository when given, newest first.
func listSnapshots(ctx context.Context, c client.Client, ns, config, repository string) (*storagev1alpha1.SnapshotList, error) {
	opts := []client.ListOption{client.InNamespace(ns)}
	if config != "" {
		opts = append(opts, client.MatchingLabels{corev1alpha1.LabelBackupConfiguration: config})
	}
	var list storagev1alpha1.SnapshotList
	if err := c.List(ctx, &list, opts...); err != nil {
		return nil, fmt.Errorf("list Snapshots: %w", err)
	}
	kept := list.Items[:0]
	for _, s := range list.Items {
		if repository == "" || s.Spec.Repository == repository {
			kept = append(kept, s)
		}
	}
	list.Items = kept
	sort.SliceStable(list.Items, func(i, j int) bool {
		return snapshotTime(&list.Items[j]).Before(snapshotTime(&list.Items[i]))
	})
	return &list, nil
}

// snapshotTime is when a Snapshot was taken, or made when it has not been.
func snapshotTime(s *storagev1alpha1.Snapshot) time.Time {
	if s.Status.SnapshotTime != nil {
		return s.Status.SnapshotTime.Time
	}
	return s.CreationTimestamp.Time
}

func snapshotTable(w io.Writer, snaps []storagev1alpha1.Snapshot, wide bool) error {
	if len(snaps) == 0 {
		_, err := fmt.Fprintln(w, "No Snapshots found.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := "NAME\tREPOSITORY\tTIME\tSIZE\tADDED\tPHASE\tAGE"
	if wide {
		header += "\tSESSION\tBACKUP-SESSION\tRESTIC-IDS"
	}
	fmt.Fprintln(tw, header)
	for i := range snaps {
		s := &snaps[i]
		added, ids := "", ""
		for _, c := range s.Status.Components {
			added, ids = joinNonEmpty(added, c.DataAdded), joinNonEmpty(ids, shortID(c.ResticSnapshotID))
		}
		taken := ""
		if s.Status.SnapshotTime != nil {
			taken = s.Status.SnapshotTime.UTC().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s", s.Name, s.Spec.Repository, orNone(taken), orNone(s.Status.Size),
			orNone(added), s.Status.Phase, duration.HumanDuration(time.Since(s.CreationTimestamp.Time)))
		if wide {
			fmt.Fprintf(tw, "\t%s\t%s\t%s", s.Spec.Session, s.Spec.BackupSession, orNone(ids))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func joinNonEmpty(a, b string) string {
	switch {
	case b == "":
		return a
	case a == "":
		return b
	}
	return a + "," + b
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

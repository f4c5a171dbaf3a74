package plugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func pauseCommand(e *env, pause bool) *cobra.Command {
	verb, short := "resume", "Resume scheduled backups of a BackupConfiguration"
	if pause {
		verb, short = "pause", "Pause a BackupConfiguration: no backups run until it is resumed"
	}
	return &cobra.Command{
		Use:   verb + " BACKUPCONFIGURATION",
		Short: short,
		Args:  exactArgs(1, "one BackupConfiguration name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			if err := setPaused(cmd.Context(), c, ns, args[0], pause); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "backupconfiguration/%s %sd\n", args[0], verb)
			return nil
		},
	}
}

// setPaused sets spec.paused with a merge patch.
func setPaused(ctx context.Context, c client.Client, ns, name string, paused bool) error {
	bc, err := getConfiguration(ctx, c, ns, name)
	if err != nil {
		return err
	}
	patch := client.MergeFrom(bc.DeepCopy())
	bc.Spec.Paused = paused
	if err := c.Patch(ctx, bc, patch); err != nil {
		return fmt.Errorf("patch BackupConfiguration %s: %w", name, err)
	}
	return nil
}

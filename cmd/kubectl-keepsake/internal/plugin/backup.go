package plugin

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

func backupCommand(e *env) *cobra.Command {
	var session string
	var wait bool
	cmd := &cobra.Command{
		Use:   "backup BACKUPCONFIGURATION",
		Short: "Start a backup now (creates a BackupSession)",
		Args:  exactArgs(1, "one BackupConfiguration name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			bks, err := startBackup(cmd.Context(), c, ns, args[0], session)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "backupsession/%s created\n", bks.Name)
			if !wait {
				return nil
			}
			return waitBackup(cmd.Context(), e, c, bks)
		},
	}
	cmd.Flags().StringVar(&session, "session", "", "session of the configuration to run (needed when it has several)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the backup ends, showing its progress")
	return cmd
}

// startBackup creates a BackupSession of configuration name's session.
func startBackup(ctx context.Context, c client.Client, ns, name, session string) (*corev1alpha1.BackupSession, error) {
	bc, err := getConfiguration(ctx, c, ns, name)
	if err != nil {
		return nil, err
	}
	session, err = pickSession(bc, session)
	if err != nil {
		return nil, err
	}
	bks := &corev1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    ns,
			GenerateName: generateName(bc.Name + "-" + session + "-manual-"),
			Labels: map[string]string{corev1alpha1.LabelBackupConfiguration: bc.Name,
				corev1alpha1.LabelSession: session},
		},
		Spec: corev1alpha1.BackupSessionSpec{BackupConfiguration: bc.Name, Session: session},
	}
	if err := c.Create(ctx, bks); err != nil {
		return nil, fmt.Errorf("create BackupSession: %w", err)
	}
	return bks, nil
}

// getConfiguration reads a BackupConfiguration, saying what to do when
// there is none.
func getConfiguration(ctx context.Context, c client.Client, ns, name string) (*corev1alpha1.BackupConfiguration, error) {
	var bc corev1alpha1.BackupConfiguration
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &bc)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("BackupConfiguration %q not found in namespace %q (list them: kubectl get backupconfigurations -n %s)", name, ns, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("get BackupConfiguration %s: %w", name, err)
	}
	return &bc, nil
}

// pickSession returns the session to run: the one asked for, or the only one.
func pickSession(bc *corev1alpha1.BackupConfiguration, want string) (string, error) {
	var names []string
	for _, s := range bc.Spec.Sessions {
		if s.Name == want {
			return want, nil
		}
		names = append(names, s.Name)
	}
	if want == "" && len(names) == 1 {
		return names[0], nil
	}
	if want == "" {
		return "", usageError{fmt.Errorf("BackupConfiguration %s has sessions %s: choose one with --session", bc.Name, strings.Join(names, ", "))}
	}
	return "", usageError{fmt.Errorf("BackupConfiguration %s has no session %q (it has %s)", bc.Name, want, strings.Join(names, ", "))}
}

// generateName keeps a generateName prefix short enough for the 63
// characters a BackupSession name may hold (the API server adds five).
func generateName(prefix string) string {
	const max = 63 - 5
	if len(prefix) > max {
		prefix = prefix[:max]
	}
	return prefix
}

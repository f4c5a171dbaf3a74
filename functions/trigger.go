package functions

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

// TriggerMain is `keepsake trigger`, what a session's CronJob runs: it
// creates one BackupSession for the session and exits; the operator does
// the rest.
func TriggerMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keepsake trigger", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ns := fs.String("namespace", "", "namespace of the BackupConfiguration (required)")
	config := fs.String("backup-configuration", "", "name of the BackupConfiguration (required)")
	session := fs.String("session", "", "name of the session to run (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ns == "" || *config == "" || *session == "" {
		return errors.New("trigger: --namespace, --backup-configuration and --session are required")
	}
	c, err := newClient(stderr)
	if err != nil {
		return err
	}
	bks, err := Trigger(ctx, c, *ns, *config, *session)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "created BackupSession %s/%s\n", bks.Namespace, bks.Name)
	return err
}

// Trigger creates a BackupSession of session in BackupConfiguration
// config, labelled so the operator and `kubectl get -l` find it, and owned
// (not controlled) by the configuration, as the operator's first session
// is: deleting the configuration deletes its history.
func Trigger(ctx context.Context, c client.Client, ns, config, session string) (*corev1alpha1.BackupSession, error) {
	var bc corev1alpha1.BackupConfiguration
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: config}, &bc); err != nil {
		return nil, fmt.Errorf("trigger %s/%s session %s: get BackupConfiguration: %w", ns, config, session, err)
	}
	bks := &corev1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    ns,
			GenerateName: config + "-" + session + "-",
			Labels: map[string]string{
				corev1alpha1.LabelBackupConfiguration: config,
				corev1alpha1.LabelSession:             session,
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: corev1alpha1.GroupVersion.String(),
				Kind:       "BackupConfiguration",
				Name:       bc.Name,
				UID:        bc.UID,
			}},
		},
		Spec: corev1alpha1.BackupSessionSpec{BackupConfiguration: config, Session: session},
	}
	if err := c.Create(ctx, bks); err != nil {
		return nil, fmt.Errorf("trigger %s/%s session %s: %w", ns, config, session, err)
	}
	return bks, nil
}

package plugin

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// restoreFlags are the choices of `restore`.
type restoreFlags struct {
	repository, to, addon, task string
	params                      map[string]string
	wait                        bool
}

func restoreCommand(e *env) *cobra.Command {
	var f restoreFlags
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT|latest --repository REPOSITORY",
		Short: "Restore a Snapshot (creates a RestoreSession)",
		Long: "Restore a Snapshot into its own target, or the one --to names (KIND/NAME, e.g. statefulset/metrics).\n" +
			"The addon, its restore task and the task's parameters default to those of the backup that made the Snapshot;\n" +
			"--param KEY=VALUE adds or overrides one (e.g. --param mode=replace).",
		Args: exactArgs(1, "a Snapshot name, or latest"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			rs, err := buildRestore(cmd.Context(), c, ns, args[0], f)
			if err != nil {
				return err
			}
			if err := c.Create(cmd.Context(), rs); err != nil {
				return fmt.Errorf("create RestoreSession: %w", err)
			}
			fmt.Fprintf(e.stdout, "restoresession/%s created\n", rs.Name)
			if !f.wait {
				return nil
			}
			return waitRestore(cmd.Context(), e, c, rs)
		},
	}
	cmd.Flags().StringVar(&f.repository, "repository", "", "Repository holding the Snapshot (required)")
	cmd.Flags().StringVar(&f.to, "to", "", "target to restore into, KIND/NAME (statefulset, service, deployment or hyperbytedbcluster); the Snapshot's own by default")
	cmd.Flags().StringVar(&f.addon, "addon", "", "addon to restore with; the backup's by default")
	cmd.Flags().StringVar(&f.task, "task", "", "restore task of the addon; its first by default")
	cmd.Flags().StringToStringVar(&f.params, "param", nil, "task parameter KEY=VALUE (repeatable)")
	cmd.Flags().BoolVar(&f.wait, "wait", false, "wait until the restore ends, showing its progress")
	return cmd
}

// buildRestore assembles the RestoreSession of snapshot (a name or
// "latest") from repository f.repository.
func buildRestore(ctx context.Context, c client.Client, ns, snapshot string, f restoreFlags) (*corev1alpha1.RestoreSession, error) {
	if f.repository == "" {
		return nil, usageError{fmt.Errorf("name the Repository holding the Snapshot with --repository")}
	}
	snap, err := resolveSnapshot(ctx, c, ns, f.repository, snapshot)
	if err != nil {
		return nil, err
	}
	target, err := restoreTarget(snap, f.to)
	if err != nil {
		return nil, err
	}
	addon, task, params, err := restoreTask(ctx, c, snap, f)
	if err != nil {
		return nil, err
	}
	return &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: generateName(snap.Spec.Repository + "-restore-")},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target:     target,
			DataSource: corev1alpha1.RestoreDataSource{Repository: storagev1alpha1.ObjectReference{Name: f.repository}, Snapshot: snap.Name},
			Addon:      corev1alpha1.AddonInfo{Name: addon, Tasks: []corev1alpha1.TaskReference{{Name: task, Params: params}}},
		},
	}, nil
}

// resolveSnapshot finds the Snapshot to restore: by name, or the newest
// Succeeded one of the repository. Only a Succeeded Snapshot restores.
func resolveSnapshot(ctx context.Context, c client.Client, ns, repository, name string) (*storagev1alpha1.Snapshot, error) {
	if name == "latest" {
		list, err := listSnapshots(ctx, c, ns, "", repository)
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			if list.Items[i].Status.Phase == storagev1alpha1.SnapshotSucceeded {
				return &list.Items[i], nil
			}
		}
		return nil, fmt.Errorf("repository %s has no Succeeded Snapshot in namespace %s (kubectl keepsake snapshots --repository %s)", repository, ns, repository)
	}
	var snap storagev1alpha1.Snapshot
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &snap)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("snapshot %q not found in namespace %s (kubectl keepsake snapshots --repository %s)", name, ns, repository)
	}
	if err != nil {
		return nil, fmt.Errorf("get Snapshot %s: %w", name, err)
	}
	if snap.Spec.Repository != repository {
		return nil, fmt.Errorf("snapshot %s belongs to repository %s, not %s", name, snap.Spec.Repository, repository)
	}
	if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		return nil, fmt.Errorf("snapshot %s is %s: only a Succeeded Snapshot can be restored; pick another (kubectl keepsake snapshots --repository %s)",
			name, orNone(string(snap.Status.Phase)), repository)
	}
	return &snap, nil
}

// kinds maps --to's KIND to the API group and kind it names.
var kinds = map[string][2]string{
	"statefulset":        {"apps", "StatefulSet"},
	"deployment":         {"apps", "Deployment"},
	"service":            {"", "Service"},
	"hyperbytedbcluster": {"hyperbytedb.hyperbyte.cloud", "HyperbytedbCluster"},
}

// restoreTarget is --to, or the application the Snapshot was taken of.
func restoreTarget(snap *storagev1alpha1.Snapshot, to string) (storagev1alpha1.TypedObjectReference, error) {
	if to == "" {
		if snap.Spec.AppRef == nil || snap.Spec.AppRef.Name == "" {
			return storagev1alpha1.TypedObjectReference{}, usageError{fmt.Errorf("snapshot %s does not say what it was taken of: name a target with --to KIND/NAME", snap.Name)}
		}
		return *snap.Spec.AppRef, nil
	}
	kind, name, ok := strings.Cut(to, "/")
	gk, known := kinds[strings.ToLower(kind)]
	if !ok || name == "" || !known {
		return storagev1alpha1.TypedObjectReference{}, usageError{fmt.Errorf("--to %q: want KIND/NAME with KIND one of statefulset, deployment, service, hyperbytedbcluster", to)}
	}
	return storagev1alpha1.TypedObjectReference{APIGroup: gk[0], Kind: gk[1], Name: name}, nil
}

// restoreTask picks the addon and restore task, and the parameters: those
// of the backup that the restore task also declares, then --param.
func restoreTask(ctx context.Context, c client.Client, snap *storagev1alpha1.Snapshot, f restoreFlags) (addon, task string, params map[string]string, err error) {
	addon, backupParams := f.addon, map[string]string{}
	if name := snap.Labels[corev1alpha1.LabelBackupConfiguration]; name != "" {
		var bc corev1alpha1.BackupConfiguration
		if err := c.Get(ctx, client.ObjectKey{Namespace: snap.Namespace, Name: name}, &bc); err == nil {
			for _, s := range bc.Spec.Sessions {
				if s.Name == snap.Spec.Session {
					addon = cmp.Or(addon, s.Addon.Name)
					for _, t := range s.Addon.Tasks {
						backupParams = t.Params
					}
				}
			}
		}
	}
	if addon == "" {
		return "", "", nil, usageError{fmt.Errorf("cannot tell which addon made Snapshot %s: name it with --addon", snap.Name)}
	}
	var a addonsv1alpha1.Addon
	if err := c.Get(ctx, client.ObjectKey{Name: addon}, &a); err != nil {
		return "", "", nil, fmt.Errorf("get Addon %s: %w", addon, err)
	}
	t, err := pickRestoreTask(&a, f.task)
	if err != nil {
		return "", "", nil, err
	}
	params = map[string]string{}
	for _, p := range t.Parameters {
		if v, ok := backupParams[p.Name]; ok {
			params[p.Name] = v
		}
	}
	for k, v := range f.params {
		params[k] = v
	}
	return addon, t.Name, params, nil
}

func pickRestoreTask(a *addonsv1alpha1.Addon, want string) (*addonsv1alpha1.Task, error) {
	var names []string
	for i := range a.Spec.RestoreTasks {
		t := &a.Spec.RestoreTasks[i]
		if want == "" || t.Name == want {
			return t, nil
		}
		names = append(names, t.Name)
	}
	return nil, usageError{fmt.Errorf("addon %s has no restore task %q (it has %s)", a.Name, want, strings.Join(names, ", "))}
}

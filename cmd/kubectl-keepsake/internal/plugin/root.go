// Package plugin is the kubectl-keepsake command: one cobra command per
// verb, sharing kubectl's connection flags (k8s.io/cli-runtime).
package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// env is what every verb needs: where to write and how to reach the cluster.
type env struct {
	flags  *genericclioptions.ConfigFlags
	stdout io.Writer
	stderr io.Writer
}

// client returns a client for the cluster the flags name, and the
// namespace to work in.
func (e *env) client() (client.Client, string, error) {
	cfg, err := e.flags.ToRESTConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := e.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("namespace: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: newScheme()})
	if err != nil {
		return nil, "", fmt.Errorf("connect to the cluster: %w", err)
	}
	return c, ns, nil
}

// newScheme holds client-go's types and Keepsake's.
func newScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme,
		storagev1alpha1.AddToScheme, corev1alpha1.AddToScheme, addonsv1alpha1.AddToScheme} {
		utilruntime.Must(add(scheme))
	}
	return scheme
}

// Run runs the plugin with args and returns its exit code: 0 on success,
// 1 when the command failed (its error printed as one line on stderr).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		var u usageError
		if errors.As(err, &u) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError is a command line the plugin cannot run.
type usageError struct{ error }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	e := &env{flags: genericclioptions.NewConfigFlags(true), stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "kubectl-keepsake",
		Short:         "Back up and restore with Keepsake",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	e.flags.AddFlags(root.PersistentFlags())
	root.AddCommand(backupCommand(e), snapshotsCommand(e), restoreCommand(e), describeCommand(e),
		pauseCommand(e, true), pauseCommand(e, false), logsCommand(e), checkCommand(e))
	return root
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("want %s", what)}
		}
		return nil
	}
}

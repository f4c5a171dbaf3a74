package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

func checkCommand(e *env) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "check REPOSITORY",
		Short: "Check a Repository's integrity now (restic check, with its readDataSubset)",
		Args:  exactArgs(1, "one Repository name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			request, err := requestCheck(cmd.Context(), c, ns, args[0], time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "repository/%s check requested\n", args[0])
			if !wait {
				return nil
			}
			return waitCheck(cmd.Context(), e, c, client.ObjectKey{Namespace: ns, Name: args[0]}, request)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the check ends and show its result")
	return cmd
}

// requestCheck sets the Repository's check-requested annotation to a new
// value, which the check that answers it echoes, and returns that value.
func requestCheck(ctx context.Context, c client.Client, ns, name string, now time.Time) (string, error) {
	repo := &storagev1alpha1.Repository{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, repo); err != nil {
		return "", fmt.Errorf("get Repository %s/%s: %w", ns, name, err)
	}
	request := now.UTC().Format(time.RFC3339Nano)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{storagev1alpha1.AnnotationCheckRequested: request},
	}})
	if err != nil {
		return "", err
	}
	if err := c.Patch(ctx, repo, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return "", fmt.Errorf("request a check of Repository %s: %w", name, err)
	}
	return request, nil
}

// waitCheck reads the Repository until a check answered request, and
// prints its result; a check that did not pass is an error.
func waitCheck(ctx context.Context, e *env, c client.Client, key client.ObjectKey, request string) error {
	repo := &storagev1alpha1.Repository{}
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, repo); err != nil {
			return false, fmt.Errorf("read Repository %s: %w", key.Name, err)
		}
		ic := repo.Status.IntegrityCheck
		return ic != nil && ic.Request == request, nil
	})
	if err != nil {
		return err
	}
	ic := repo.Status.IntegrityCheck
	fmt.Fprintf(e.stdout, "%s  %s: %s\n", time.Now().Format(time.TimeOnly), ic.Result, ic.Message)
	if ic.Result != storagev1alpha1.IntegrityPassed {
		return fmt.Errorf("check of repository %s: %s (kubectl describe repository %s)", key.Name, ic.Result, key.Name)
	}
	return nil
}

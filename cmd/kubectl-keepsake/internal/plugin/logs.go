package plugin

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

func logsCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "logs SESSION",
		Short: "Show the logs of a BackupSession's or RestoreSession's Job",
		Args:  exactArgs(1, "one BackupSession or RestoreSession name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			job, err := sessionJob(cmd.Context(), c, ns, args[0])
			if err != nil {
				return err
			}
			cfg, err := e.flags.ToRESTConfig()
			if err != nil {
				return err
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			return jobLogs(cmd.Context(), c, cs, ns, job, e.stdout)
		},
	}
}

// sessionJob names the Job of a BackupSession, or else of a RestoreSession.
func sessionJob(ctx context.Context, c client.Client, ns, name string) (string, error) {
	var bks corev1alpha1.BackupSession
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &bks)
	if err == nil {
		return jobOrError("BackupSession", name, bks.Status.Job)
	}
	if !apierrors.IsNotFound(err) {
		return "", err
	}
	var rs corev1alpha1.RestoreSession
	err = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &rs)
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("no BackupSession or RestoreSession %q in namespace %s", name, ns)
	}
	if err != nil {
		return "", err
	}
	return jobOrError("RestoreSession", name, rs.Status.Job)
}

func jobOrError(kind, name, job string) (string, error) {
	if job == "" {
		return "", fmt.Errorf("%s %s has no Job (yet): kubectl describe %s %s says why", kind, name, kind, name)
	}
	return job, nil
}

// jobLogs writes the logs of every container of the Job's pods.
func jobLogs(ctx context.Context, c client.Client, cs kubernetes.Interface, ns, job string, w io.Writer) error {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"batch.kubernetes.io/job-name": job}); err != nil {
		return fmt.Errorf("list pods of Job %s: %w", job, err)
	}
	if len(pods.Items) == 0 {
		return fmt.Errorf("job %s has no pods left (they go when the Job does, or with its history limit)", job)
	}
	for _, pod := range pods.Items {
		for _, ctr := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
			fmt.Fprintf(w, "==> pod/%s container %s <==\n", pod.Name, ctr.Name)
			stream, err := cs.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: ctr.Name}).Stream(ctx)
			if err != nil {
				fmt.Fprintf(w, "(no logs: %v)\n", err)
				continue
			}
			_, err = io.Copy(w, stream)
			stream.Close()
			if err != nil {
				return fmt.Errorf("read logs of %s: %w", pod.Name, err)
			}
		}
	}
	return nil
}

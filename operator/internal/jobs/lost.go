package jobs

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

// PodLoss is why a failed Job's pod ended without failing by itself.
type PodLoss struct {
	*Problem
	// Disrupted says the API itself stopped the pod (its DisruptionTarget
	// condition): an eviction, a preemption, a taint or a node shutdown.
	// Then whatever the runtime recorded as it was stopped is a
	// consequence, not the cause.
	Disrupted bool
}

// LostPod returns a PodLoss when a failed Job failed because its pod was
// deleted or evicted rather than because it failed: the Job controller
// then says only BackoffLimitExceeded. A pod the API stopped carries a
// DisruptionTarget condition; a pod deleted outright (kubectl delete
// --force, a lost node) is gone, or going, by the time its Job fails,
// while a pod whose container failed stays with its Job, Failed. It
// returns nil when a pod failed by itself. live must read past the cache
// (the manager's APIReader): pods are not cached.
func LostPod(ctx context.Context, live client.Reader, job *batchv1.Job) (*PodLoss, error) {
	pods, err := jobPods(ctx, live, job)
	if err != nil {
		return nil, err
	}
	for i := range pods {
		for _, c := range pods[i].Status.Conditions {
			if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
				return &PodLoss{Disrupted: true, Problem: NewProblem(corev1alpha1.ReasonPodDeleted,
					"pod %s of Job %s was stopped before it finished: %s: %s", pods[i].Name, job.Name, c.Reason, c.Message)}, nil
			}
		}
	}
	for i := range pods {
		if pods[i].Status.Phase == corev1.PodFailed && pods[i].DeletionTimestamp.IsZero() {
			return nil, nil
		}
	}
	return &PodLoss{Problem: NewProblem(corev1alpha1.ReasonPodDeleted,
		"the pod of Job %s was deleted before it finished (force-deleted, or its node was lost); "+
			"the Job controller reports only %s", job.Name, failedReason(job))}, nil
}

// failedReason is the reason of the Job's Failed condition.
func failedReason(job *batchv1.Job) string {
	if _, failed := Outcome(job); failed != nil {
		return failed.Reason
	}
	return "no outcome"
}

package jobs

import (
	"context"
	"fmt"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

// StuckGrace is how long a Job's pod may wait in a state that rarely fixes
// itself (a volume that does not mount, an image that does not pull, a
// container whose config is wrong, no node to run on) before its session
// fails. Long enough for a Secret created a moment late or a slow
// registry, short enough that a user sees the cause within minutes rather
// than at the session's deadline. A variable only so that tests can
// shorten it before they start the manager.
var StuckGrace = 3 * time.Minute

// StuckRecheck is how often a running session looks at its Job's pods:
// nothing watches pods or Events, so a Running session is requeued. A
// variable only so that tests can shorten it before they start the manager.
var StuckRecheck = 30 * time.Second

// Stuck reports why a running Job's pods cannot be created or cannot
// start. It returns a *Problem (reason from apis/core) when the session
// should fail now: at once when the API server refused the pods (the Job
// controller's FailedCreate Event, e.g. a missing ServiceAccount), after
// StuckGrace for a pod stuck in FailedMount, an image pull failure,
// CreateContainerConfigError or Unschedulable. Otherwise it returns nil
// and when to look again. live must read past the cache (the manager's
// APIReader): pods and Events are not cached.
func Stuck(ctx context.Context, live client.Reader, job *batchv1.Job, now time.Time) (*Problem, time.Duration, error) {
	if job.Status.Active == 0 && job.Status.Succeeded == 0 && job.Status.Failed == 0 {
		refused, err := refusedPods(ctx, live, job)
		if err != nil || refused != nil {
			return refused, 0, err
		}
	}
	pods, err := jobPods(ctx, live, job)
	if err != nil {
		return nil, 0, err
	}
	recheck := StuckRecheck
	for i := range pods {
		cause, err := podCause(ctx, live, &pods[i])
		if err != nil || cause == nil {
			if err != nil {
				return nil, 0, err
			}
			continue
		}
		waited := now.Sub(pods[i].CreationTimestamp.Time)
		if waited >= StuckGrace {
			cause.Err = fmt.Errorf("pod %s of Job %s cannot start for %s: %w", pods[i].Name, job.Name,
				waited.Round(time.Second), cause.Err)
			return cause, 0, nil
		}
		recheck = min(recheck, max(StuckGrace-waited, time.Second))
	}
	return nil, recheck, nil
}

// refusedPods returns a Problem when the Job controller could not create
// the Job's pods: the API server's own message says why.
func refusedPods(ctx context.Context, live client.Reader, job *batchv1.Job) (*Problem, error) {
	evs, err := events(ctx, live, job.Namespace, "Job", job.Name)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		if ev.Reason == "FailedCreate" && (ev.InvolvedObject.UID == "" || ev.InvolvedObject.UID == job.UID) {
			return NewProblem(corev1alpha1.ReasonPodCreationFailed, "the API server refused the pods of Job %s: %s",
				job.Name, ev.Message), nil
		}
	}
	return nil, nil
}

// podCause is why a pod that has not started is stuck, nil when it is not.
func podCause(ctx context.Context, live client.Reader, pod *corev1.Pod) (*Problem, error) {
	if pod.Status.Phase != corev1.PodPending && pod.Status.Phase != "" {
		return nil, nil
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return NewProblem(corev1alpha1.ReasonUnschedulable, "no node can run it: %s", c.Message), nil
		}
	}
	if p := waitingCause(pod); p != nil {
		return p, nil
	}
	evs, err := events(ctx, live, pod.Namespace, "Pod", pod.Name)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		if ev.Reason == "FailedMount" || ev.Reason == "FailedAttachVolume" {
			return NewProblem(corev1alpha1.ReasonVolumeMountFailed, "%s: %s", ev.Reason, ev.Message), nil
		}
	}
	return nil, nil
}

// waitingReasons maps a container's waiting reason to the session's reason.
var waitingReasons = map[string]string{
	"ErrImagePull":               corev1alpha1.ReasonImagePullFailed,
	"ImagePullBackOff":           corev1alpha1.ReasonImagePullFailed,
	"InvalidImageName":           corev1alpha1.ReasonImagePullFailed,
	"CreateContainerConfigError": corev1alpha1.ReasonContainerConfigError,
	"CreateContainerError":       corev1alpha1.ReasonContainerConfigError,
}

// waitingCause is the first init or task container waiting for a reason
// in waitingReasons.
func waitingCause(pod *corev1.Pod) *Problem {
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, s := range statuses {
		w := s.State.Waiting
		if w == nil {
			continue
		}
		if reason, ok := waitingReasons[w.Reason]; ok {
			return NewProblem(reason, "container %s: %s: %s", s.Name, w.Reason, w.Message)
		}
	}
	return nil
}

// jobPods lists the pods of a Job by its selector.
func jobPods(ctx context.Context, live client.Reader, job *batchv1.Job) ([]corev1.Pod, error) {
	if job.Spec.Selector == nil {
		return nil, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("selector of Job %s: %w", job.Name, err)
	}
	var list corev1.PodList
	if err := live.List(ctx, &list, client.InNamespace(job.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("list pods of Job %s: %w", job.Name, err)
	}
	return list.Items, nil
}

// events lists the core Events about one object, newest first.
func events(ctx context.Context, live client.Reader, ns, kind, name string) ([]corev1.Event, error) {
	var list corev1.EventList
	err := live.List(ctx, &list, client.InNamespace(ns),
		client.MatchingFields{"involvedObject.kind": kind, "involvedObject.name": name})
	if err != nil {
		return nil, fmt.Errorf("list Events of %s %s: %w", kind, name, err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return lastSeen(&list.Items[j]).Before(lastSeen(&list.Items[i])) })
	return list.Items, nil
}

// lastSeen is when an Event last happened, whichever API recorded it.
func lastSeen(ev *corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}

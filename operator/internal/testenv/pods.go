package testenv

import (
	"context"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RefusePods plays the Job controller when the API server refuses the
// pods of job: it records the FailedCreate Warning Event, with the API
// server's message, that the Job controller records.
func RefusePods(t testing.TB, job *batchv1.Job, message string) {
	t.Helper()
	WaitExists(t, job)
	record(t, job.Namespace, corev1.ObjectReference{Kind: "Job", APIVersion: "batch/v1", Namespace: job.Namespace,
		Name: job.Name, UID: job.UID}, "job-controller", "FailedCreate", message)
}

// StuckPod plays the Job controller and the kubelet for a pod of job that
// cannot start: it creates the pod from the Job's template, sets its status
// to st and, when reason is set, records the kubelet's Warning Event
// (e.g. FailedMount) about it. It returns the pod.
func StuckPod(t testing.TB, job *batchv1.Job, st corev1.PodStatus, reason, message string) *corev1.Pod {
	t.Helper()
	WaitExists(t, job)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: job.Namespace, GenerateName: job.Name + "-",
			Labels: job.Spec.Template.Labels},
		Spec: *job.Spec.Template.Spec.DeepCopy(),
	}
	if err := Default.Client.Create(context.Background(), pod); err != nil {
		t.Fatalf("create pod of Job %s: %v", job.Name, err)
	}
	Eventually(t, func(ctx context.Context) (bool, string) {
		if err := Default.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return false, err.Error()
		}
		pod.Status = st
		if err := Default.Client.Status().Update(ctx, pod); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if reason != "" {
		record(t, pod.Namespace, corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace,
			Name: pod.Name, UID: pod.UID}, "kubelet", reason, message)
	}
	return pod
}

// record creates a core Warning Event about obj, as a controller or the
// kubelet records it.
func record(t testing.TB, ns string, obj corev1.ObjectReference, component, reason, message string) {
	t.Helper()
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, GenerateName: obj.Name + "."},
		InvolvedObject: obj,
		Reason:         reason,
		Message:        message,
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: component},
		FirstTimestamp: now,
		LastTimestamp:  now,
		Count:          1,
	}
	if err := Default.Client.Create(context.Background(), ev); err != nil {
		t.Fatalf("record Event %s about %s %s: %v", reason, obj.Kind, obj.Name, err)
	}
}

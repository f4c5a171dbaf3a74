package backupsession

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/targets"
)

// targetVolume is the PVC a backup task that mounts the target's volume
// reads, and the node it is attached on.
type targetVolume struct {
	PVC, Node string
}

// resolveTargetVolume finds the PVC of pod 0 of the target's StatefulSet
// and that pod's node. One pod suffices: a physical backup reads one
// replica (every replica restores from it). The StatefulSet must have one
// volumeClaimTemplate, the database's data: with several, which one holds
// the files the task reads is the addon's knowledge, not the operator's,
// and no addon needs it yet. What is missing is a *jobs.Problem with
// reason TargetVolumeUnavailable.
func (r *Reconciler) resolveTargetVolume(ctx context.Context, p *pass) (*targetVolume, error) {
	t := p.bc.Spec.Target
	ns := t.Namespace
	if ns == "" {
		ns = p.bc.Namespace
	}
	if ns != p.bks.Namespace {
		return nil, unavailable("the task mounts the target's PVC, which a Job can only do in its own namespace %s, not %s", p.bks.Namespace, ns)
	}
	w, err := targets.ResolveWorkload(ctx, r.APIReader, r.RESTMapper, t, ns)
	var prob *jobs.Problem
	if errors.As(err, &prob) {
		return nil, unavailable("the task mounts the target's PVC: %v", prob.Err)
	}
	if err != nil {
		return nil, err
	}
	sts := w.StatefulSet
	if n := len(sts.Spec.VolumeClaimTemplates); n != 1 {
		return nil, unavailable("the task mounts the PVC of StatefulSet %s's pod 0, but the StatefulSet has %d volumeClaimTemplates, not one", sts.Name, n)
	}
	pod := sts.Name + "-0"
	pvc := targets.PVCs(sts, 1)[0]
	node, err := r.podNode(ctx, ns, pod)
	if err != nil {
		return nil, err
	}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: pvc}, &corev1.PersistentVolumeClaim{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, unavailable("PVC %s of pod %s not found: the task reads it", pvc, pod)
		}
		return nil, fmt.Errorf("get PVC %s: %w", pvc, err)
	}
	return &targetVolume{PVC: pvc, Node: node}, nil
}

// podNode is the node pod runs on, where its volume is attached.
func (r *Reconciler) podNode(ctx context.Context, ns, name string) (string, error) {
	var pod corev1.Pod
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &pod); err != nil {
		if apierrors.IsNotFound(err) {
			return "", unavailable("pod %s not found: the task reads its PVC, on its node, so it must run", name)
		}
		return "", fmt.Errorf("get pod %s: %w", name, err)
	}
	if pod.Spec.NodeName == "" {
		return "", unavailable("pod %s is on no node yet: the task reads its PVC, on its node", name)
	}
	return pod.Spec.NodeName, nil
}

func unavailable(format string, args ...any) *jobs.Problem {
	return jobs.NewProblem(corev1alpha1.ReasonTargetVolumeUnavailable, format, args...)
}

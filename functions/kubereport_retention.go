package functions

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// SnapshotCleaner removes the Snapshot objects whose restic snapshots a
// retention run forgot. It marks each one forgotten before deleting it, so
// the operator's finalizer lets it go without a forget Job of its own.
type SnapshotCleaner struct {
	c         client.Client
	namespace string
}

// NewSnapshotCleaner returns a cleaner of the Snapshots in namespace.
func NewSnapshotCleaner(c client.Client, namespace string) *SnapshotCleaner {
	return &SnapshotCleaner{c: c, namespace: namespace}
}

var _ MaintenanceReporter = (*SnapshotCleaner)(nil)

// Retention implements MaintenanceReporter: every Succeeded Snapshot of the
// repository whose components all lie in res.Removed is annotated
// forgotten and deleted. One already annotated (a retried run) is deleted
// too.
func (s *SnapshotCleaner) Retention(ctx context.Context, res RetentionResult) error {
	var list storagev1alpha1.SnapshotList
	err := withRetry(ctx, func(ctx context.Context) error {
		return s.c.List(ctx, &list, client.InNamespace(s.namespace))
	})
	if err != nil {
		return fmt.Errorf("list Snapshots in %s: %w", s.namespace, err)
	}
	for i := range list.Items {
		snap := &list.Items[i]
		if snap.Spec.Repository != res.Repository || !forgotten(snap, res.Removed) {
			continue
		}
		if err := withRetry(ctx, func(ctx context.Context) error { return s.remove(ctx, snap) }); err != nil {
			return fmt.Errorf("remove Snapshot %s/%s: %w", snap.Namespace, snap.Name, err)
		}
	}
	return nil
}

// Forget implements MaintenanceReporter: the operator runs forget for a
// Snapshot being deleted and lets it go when the Job succeeds.
func (s *SnapshotCleaner) Forget(context.Context, ForgetResult) error { return nil }

// LockWait implements LockWaitReporter: a forget run's Snapshots (those
// of the repository holding one of w.SnapshotIDs) get condition
// WaitingForLock; a retention run's wait stays in the Job's log.
func (s *SnapshotCleaner) LockWait(ctx context.Context, w LockWait) {
	if len(w.SnapshotIDs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, progressTimeout)
	defer cancel()
	var list storagev1alpha1.SnapshotList
	if err := s.c.List(ctx, &list, client.InNamespace(s.namespace)); err != nil {
		return
	}
	for i := range list.Items {
		snap := &list.Items[i]
		if snap.Spec.Repository == w.Repository && holdsAny(snap, w.SnapshotIDs) {
			_ = setWaitingForLock(ctx, s.c, snap, w.Message)
		}
	}
}

var _ LockWaitReporter = (*SnapshotCleaner)(nil)

// holdsAny reports whether one of snap's components is one of the restic
// snapshots ids (full IDs or prefixes).
func holdsAny(snap *storagev1alpha1.Snapshot, ids []string) bool {
	for _, c := range snap.Status.Components {
		for _, id := range ids {
			if c.ResticSnapshotID != "" && strings.HasPrefix(c.ResticSnapshotID, id) {
				return true
			}
		}
	}
	return false
}

// forgotten reports whether snap's restic snapshots are all among removed,
// or snap was marked forgotten already.
func forgotten(snap *storagev1alpha1.Snapshot, removed []string) bool {
	if snap.Annotations[storagev1alpha1.AnnotationForgotten] == "true" {
		return true
	}
	if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded || len(snap.Status.Components) == 0 {
		return false
	}
	for _, c := range snap.Status.Components {
		if c.ResticSnapshotID == "" || !slices.Contains(removed, c.ResticSnapshotID) {
			return false
		}
	}
	return true
}

// remove annotates snap forgotten (metadata merge patch) and deletes it,
// if it is still the object that was listed.
func (s *SnapshotCleaner) remove(ctx context.Context, snap *storagev1alpha1.Snapshot) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         snap.UID, // the apiserver refuses the patch if the object was replaced
		"annotations": map[string]string{storagev1alpha1.AnnotationForgotten: "true"},
	}})
	if err != nil {
		return err
	}
	err = s.c.Patch(ctx, snap.DeepCopy(), client.RawPatch(types.MergePatchType, patch))
	if err == nil {
		err = s.c.Delete(ctx, snap.DeepCopy(), client.Preconditions{UID: &snap.UID})
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

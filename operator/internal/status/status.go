// Package status writes the status of Keepsake objects: one patch helper
// that every reconciler uses, and small condition helpers.
package status

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// Patcher remembers an object as it was read, so that the status changes a
// reconciler makes to it afterwards can be sent as one merge patch. The copy
// is taken before any mutation: a patch base taken after the change would
// send nothing.
type Patcher[T client.Object] struct {
	before T
	// lock makes the patch fail with a conflict when the object changed
	// since it was read.
	lock bool
}

// NewPatcher copies obj as it is now. Call it right after reading obj and
// before changing anything in it.
func NewPatcher[T client.Object](obj T) *Patcher[T] {
	return &Patcher[T]{before: obj.DeepCopyObject().(T)}
}

// NewLockingPatcher is NewPatcher for objects whose status others write
// too: its patch carries the resourceVersion read, so it fails with a
// conflict, rather than overwrite, when the object changed meanwhile.
func NewLockingPatcher[T client.Object](obj T) *Patcher[T] {
	return &Patcher[T]{before: obj.DeepCopyObject().(T), lock: true}
}

// Patch sends the difference between the remembered copy and obj to the
// status subresource with a JSON merge patch, and sends nothing when obj
// did not change. It reports whether it patched.
func (p *Patcher[T]) Patch(ctx context.Context, c client.Client, obj T) (bool, error) {
	if equality.Semantic.DeepEqual(p.before, obj) {
		return false, nil
	}
	patch := client.MergeFrom(p.before)
	if p.lock {
		patch = client.MergeFromWithOptions(p.before, client.MergeFromWithOptimisticLock{})
	}
	if err := c.Status().Patch(ctx, obj, patch); err != nil {
		return false, fmt.Errorf("patch status of %s: %w", client.ObjectKeyFromObject(obj), err)
	}
	p.before = obj.DeepCopyObject().(T)
	return true, nil
}

// Set records a condition of an object at generation gen. It keeps the last
// transition time when the status does not change, as meta.SetStatusCondition
// does, and reports whether the status or the reason changed: that is when a
// user should get an Event.
func Set(conds *[]metav1.Condition, gen int64, condType string, ok bool, reason, message string) bool {
	// Copy the old condition: SetStatusCondition changes it in place.
	var old *metav1.Condition
	if c := meta.FindStatusCondition(*conds, condType); c != nil {
		old = c.DeepCopy()
	}
	st := metav1.ConditionFalse
	if ok {
		st = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type:               condType,
		Status:             st,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: gen,
	})
	return old == nil || old.Status != st || old.Reason != reason
}

// IsTrue reports whether the condition of type condType is True.
func IsTrue(conds []metav1.Condition, condType string) bool {
	return meta.IsStatusConditionTrue(conds, condType)
}

// Bounds of Backoff.
const (
	MinBackoff = 5 * time.Second
	MaxBackoff = 5 * time.Minute
)

// Backoff is how long to wait before checking again an object whose
// condition condType has been false since its last transition: as long as it
// has been failing, kept between MinBackoff and MaxBackoff, so checks thin
// out the longer a problem lasts and never stop.
func Backoff(conds []metav1.Condition, condType string, now time.Time) time.Duration {
	c := meta.FindStatusCondition(conds, condType)
	if c == nil {
		return MinBackoff
	}
	return min(max(now.Sub(c.LastTransitionTime.Time), MinBackoff), MaxBackoff)
}

// SetFinalizer adds (want) or removes finalizer name on obj. The patch
// carries the resourceVersion read, so it fails with a conflict rather than
// overwrite finalizers someone changed meanwhile; an object already gone is
// no error.
func SetFinalizer(ctx context.Context, c client.Client, obj client.Object, name string, want bool) error {
	if controllerutil.ContainsFinalizer(obj, name) == want {
		return nil
	}
	before := obj.DeepCopyObject().(client.Object)
	if want {
		controllerutil.AddFinalizer(obj, name)
	} else {
		controllerutil.RemoveFinalizer(obj, name)
	}
	patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	if err := c.Patch(ctx, obj, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("patch finalizers of %s: %w", obj.GetName(), err)
	}
	return nil
}

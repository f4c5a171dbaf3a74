package functions

import (
	"context"
	"fmt"
	"reflect"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// restoreProgressEvery is the least time between two progress patches of
// one component of a RestoreSession.
const restoreProgressEvery = 5 * time.Second

// RestoreSessionReporter records a restore in its RestoreSession's
// status.components. It leaves the session's phase to the operator.
type RestoreSessionReporter struct {
	c        client.Client
	session  *corev1alpha1.RestoreSession
	progress *throttle
}

// NewRestoreSessionReporter returns a reporter for RestoreSession name in
// namespace.
func NewRestoreSessionReporter(c client.Client, namespace, name string) *RestoreSessionReporter {
	rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	return &RestoreSessionReporter{c: c, session: rs, progress: newThrottle(restoreProgressEvery)}
}

var _ Reporter = (*RestoreSessionReporter)(nil)

// Progress implements Reporter: the component is Running, with how much
// is restored; in the background, at most every restoreProgressEvery.
func (r *RestoreSessionReporter) Progress(ctx context.Context, p Progress) {
	r.progress.try(p.Component, func() {
		ctx, cancel := context.WithTimeout(ctx, progressTimeout)
		defer cancel()
		_ = r.patch(ctx, p.Component, map[string]any{
			"phase": storagev1alpha1.ComponentRunning, "progress": humanBytes(p.Bytes) + " restored",
		})
	})
}

// Component implements Reporter: the component's final phase, duration,
// error, amount restored and what the driver says it restored.
func (r *RestoreSessionReporter) Component(ctx context.Context, res ComponentResult) error {
	r.progress.close(res.Component)
	status := map[string]any{
		"phase":    storagev1alpha1.ComponentFailed,
		"duration": humanDuration(time.Duration(res.Duration)),
		"progress": humanBytes(res.Size) + " restored",
		"error":    nil, // a retried Job's success clears the last error
		"restored": nil, // and a failure what an earlier try restored
	}
	if d := res.Restored; d != nil {
		// Every field, so none of an earlier try's survives the merge.
		status["restored"] = map[string]any{
			"objectKind": orNil(d.ObjectKind), "objectCount": orNil(d.ObjectCount), "objects": orNil(d.Objects), "items": orNil(d.Items),
		}
	}
	if res.Phase == PhaseSucceeded {
		status["phase"] = storagev1alpha1.ComponentSucceeded
	} else {
		status["error"] = res.Error
	}
	err := withRetry(ctx, func(ctx context.Context) error { return r.patch(ctx, res.Component, status) })
	if err != nil {
		return fmt.Errorf("record %s in RestoreSession %s/%s: %w", res.Component, r.session.Namespace, r.session.Name, err)
	}
	return nil
}

// LockWait implements LockWaitReporter: the component's progress says
// whose lock the restore waits for.
func (r *RestoreSessionReporter) LockWait(ctx context.Context, w LockWait) {
	ctx, cancel := context.WithTimeout(ctx, progressTimeout)
	defer cancel()
	_ = r.patch(ctx, w.Component, map[string]any{"phase": storagev1alpha1.ComponentPending, "progress": w.Message})
}

var _ LockWaitReporter = (*RestoreSessionReporter)(nil)

// Done implements Reporter: the operator judges the session from the Job
// and the components.
func (r *RestoreSessionReporter) Done(context.Context, RunResult) error { return nil }

// patch merges fields into status.components[component].
func (r *RestoreSessionReporter) patch(ctx context.Context, component string, fields map[string]any) error {
	patch, err := statusMergePatch(map[string]any{"components": map[string]any{component: fields}})
	if err != nil {
		return err
	}
	return r.c.Status().Patch(ctx, r.session.DeepCopy(), patch)
}

// orNil is v, or nil (a merge patch's "remove") when v is empty.
func orNil[T any](v T) any {
	if reflect.ValueOf(v).IsZero() {
		return nil
	}
	return v
}

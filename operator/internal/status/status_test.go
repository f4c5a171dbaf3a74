package status_test

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

// TestPatch checks that only a changed status is sent, that what is sent is
// stored, and that the base is the object as read.
func TestPatch(t *testing.T) {
	tests := map[string]struct {
		// mutate changes the object after the Patcher copied it.
		mutate func(p *storagev1alpha1.RetentionPolicy)
		// wantPatches is how many patches reach the API.
		wantPatches int
		// wantPhase is the stored phase afterwards.
		wantPhase storagev1alpha1.RetentionPolicyPhase
	}{
		"unchanged": {
			mutate:      func(*storagev1alpha1.RetentionPolicy) {},
			wantPatches: 0,
			wantPhase:   storagev1alpha1.RetentionPolicyInvalid,
		},
		"same value written again": {
			mutate:      func(p *storagev1alpha1.RetentionPolicy) { p.Status.Phase = storagev1alpha1.RetentionPolicyInvalid },
			wantPatches: 0,
			wantPhase:   storagev1alpha1.RetentionPolicyInvalid,
		},
		"changed": {
			mutate:      func(p *storagev1alpha1.RetentionPolicy) { p.Status.Phase = storagev1alpha1.RetentionPolicyReady },
			wantPatches: 1,
			wantPhase:   storagev1alpha1.RetentionPolicyReady,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			stored := &storagev1alpha1.RetentionPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
				Status:     storagev1alpha1.RetentionPolicyStatus{Phase: storagev1alpha1.RetentionPolicyInvalid},
			}
			c, patches := countingClient(t, stored)
			var p storagev1alpha1.RetentionPolicy
			if err := c.Get(ctx, client.ObjectKeyFromObject(stored), &p); err != nil {
				t.Fatal(err)
			}
			patcher := status.NewPatcher(&p)
			tc.mutate(&p)
			patched, err := patcher.Patch(ctx, c, &p)
			if err != nil {
				t.Fatal(err)
			}
			if *patches != tc.wantPatches || patched != (tc.wantPatches > 0) {
				t.Errorf("patches = %d (reported %v), want %d", *patches, patched, tc.wantPatches)
			}
			var got storagev1alpha1.RetentionPolicy
			if err := c.Get(ctx, client.ObjectKeyFromObject(stored), &got); err != nil {
				t.Fatal(err)
			}
			if got.Status.Phase != tc.wantPhase {
				t.Errorf("stored phase = %s, want %s", got.Status.Phase, tc.wantPhase)
			}
		})
	}
}

// countingClient is a fake client holding obj that counts status patches.
func countingClient(t *testing.T, obj client.Object) (client.Client, *int) {
	t.Helper()
	scheme, err := operator.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	n := new(int)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(obj).WithStatusSubresource(obj).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				*n++
				return c.SubResource(sub).Patch(ctx, o, p, opts...)
			},
		}).Build()
	return c, n
}

// TestSet checks when a condition change deserves an Event, and that the
// transition time only moves with the status.
func TestSet(t *testing.T) {
	old := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tests := map[string]struct {
		// ok and reason are the new condition.
		ok     bool
		reason string
		// wantChanged says whether Set reports a change.
		wantChanged bool
		// wantOldTransition says whether the transition time is kept.
		wantOldTransition bool
	}{
		"same status and reason":  {ok: false, reason: "SecretMissing", wantChanged: false, wantOldTransition: true},
		"same status, new reason": {ok: false, reason: "BucketNotFound", wantChanged: true, wantOldTransition: true},
		"new status":              {ok: true, reason: "StorageAvailable", wantChanged: true, wantOldTransition: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			conds := []metav1.Condition{{
				Type: "Ready", Status: metav1.ConditionFalse, Reason: "SecretMissing", LastTransitionTime: old,
			}}
			changed := status.Set(&conds, 2, "Ready", tc.ok, tc.reason, "message")
			if changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			if kept := conds[0].LastTransitionTime.Equal(&old); kept != tc.wantOldTransition {
				t.Errorf("transition time kept = %v, want %v", kept, tc.wantOldTransition)
			}
			if conds[0].ObservedGeneration != 2 || conds[0].Reason != tc.reason {
				t.Errorf("condition = %+v", conds[0])
			}
		})
	}
}

// TestBackoff checks that retries thin out as a problem lasts, within bounds.
func TestBackoff(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		// failingFor is how long the condition has been false; negative
		// means there is no condition.
		failingFor time.Duration
		// want is the expected wait.
		want time.Duration
	}{
		"no condition yet":  {failingFor: -1, want: status.MinBackoff},
		"just failed":       {failingFor: time.Second, want: status.MinBackoff},
		"failing a minute":  {failingFor: time.Minute, want: time.Minute},
		"failing for hours": {failingFor: 3 * time.Hour, want: status.MaxBackoff},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var conds []metav1.Condition
			if tc.failingFor >= 0 {
				conds = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse,
					LastTransitionTime: metav1.NewTime(now.Add(-tc.failingFor))}}
			}
			if got := status.Backoff(conds, "Ready", now); got != tc.want {
				t.Errorf("Backoff = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestLockingPatch checks that a locking patch of a stale copy fails with a
// conflict instead of overwriting what another writer stored.
func TestLockingPatch(t *testing.T) {
	ctx := context.Background()
	stored := &storagev1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	c, _ := countingClient(t, stored)
	var stale, other storagev1alpha1.RetentionPolicy
	for _, p := range []*storagev1alpha1.RetentionPolicy{&stale, &other} {
		if err := c.Get(ctx, client.ObjectKeyFromObject(stored), p); err != nil {
			t.Fatal(err)
		}
	}
	other.Status.Phase = storagev1alpha1.RetentionPolicyInvalid
	if err := c.Status().Update(ctx, &other); err != nil {
		t.Fatal(err)
	}
	patcher := status.NewLockingPatcher(&stale)
	stale.Status.Phase = storagev1alpha1.RetentionPolicyReady
	if _, err := patcher.Patch(ctx, c, &stale); !apierrors.IsConflict(err) {
		t.Fatalf("Patch of a stale copy: err = %v, want a conflict", err)
	}
	var got storagev1alpha1.RetentionPolicy
	if err := c.Get(ctx, client.ObjectKeyFromObject(stored), &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != storagev1alpha1.RetentionPolicyInvalid {
		t.Errorf("stored phase = %s, want the other writer's Invalid", got.Status.Phase)
	}
}

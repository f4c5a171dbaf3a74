package retentionpolicy_test

import (
	"os"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

// TestRetentionPolicyReady checks that a policy the API server accepted is
// reported Ready at its current generation, also after a change.
func TestRetentionPolicyReady(t *testing.T) {
	env := testenv.Default
	p := &storagev1alpha1.RetentionPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace(t, nil), Name: "keep-last"},
		Spec: storagev1alpha1.RetentionPolicySpec{
			SuccessfulSnapshots: &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](5)},
		},
	}
	env.Create(t, p)
	conds := func() []metav1.Condition { return p.Status.Conditions }
	env.WaitCondition(t, p, conds, storagev1alpha1.ConditionReady, metav1.ConditionTrue, storagev1alpha1.ReasonPolicyAccepted)
	if p.Status.Phase != storagev1alpha1.RetentionPolicyReady {
		t.Errorf("phase = %s, want Ready", p.Status.Phase)
	}

	p.Spec.MaxRetentionPeriod = "30d"
	if err := env.Client.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	env.WaitCondition(t, p, conds, storagev1alpha1.ConditionReady, metav1.ConditionTrue, storagev1alpha1.ReasonPolicyAccepted)
}

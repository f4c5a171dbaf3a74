package addon_test

import (
	"context"

	"os"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

// TestAddonNeedsItsFunctions checks that an Addon is NotReady while a task's
// Function is missing and becomes Ready, without polling, once it appears.
func TestAddonNeedsItsFunctions(t *testing.T) {
	env := testenv.Default
	a := &addonsv1alpha1.Addon{
		ObjectMeta: metav1.ObjectMeta{Name: "late-functions"},
		Spec: addonsv1alpha1.AddonSpec{
			BackupTasks:  []addonsv1alpha1.Task{{Name: "logical-backup", Function: "late-backup", Driver: "/drivers/x"}},
			RestoreTasks: []addonsv1alpha1.Task{{Name: "logical-restore", Function: "late-restore", Driver: "/drivers/x"}},
		},
	}
	env.Create(t, a)
	// The catalog is cluster-scoped: leave nothing for a repeated run.
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), a) })
	conds := func() []metav1.Condition { return a.Status.Conditions }
	c := env.WaitCondition(t, a, conds, addonsv1alpha1.ConditionReady, metav1.ConditionFalse, addonsv1alpha1.ReasonFunctionNotFound)
	if want := "functions not found: late-backup, late-restore"; c.Message != want {
		t.Errorf("message = %q, want %q", c.Message, want)
	}
	if a.Status.Phase != addonsv1alpha1.CatalogNotReady {
		t.Errorf("phase = %s, want NotReady", a.Status.Phase)
	}

	for _, name := range []string{"late-backup", "late-restore"} {
		fn := &addonsv1alpha1.Function{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       addonsv1alpha1.FunctionSpec{Image: "tools:1"},
		}
		env.Create(t, fn)
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), fn) })
		env.WaitCondition(t, fn, func() []metav1.Condition { return fn.Status.Conditions },
			addonsv1alpha1.ConditionReady, metav1.ConditionTrue, addonsv1alpha1.ReasonFunctionAccepted)
	}
	env.WaitCondition(t, a, conds, addonsv1alpha1.ConditionReady, metav1.ConditionTrue, addonsv1alpha1.ReasonFunctionsFound)
	if a.Status.Phase != addonsv1alpha1.CatalogReady {
		t.Errorf("phase = %s, want Ready", a.Status.Phase)
	}
}

package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/access"
)

// InstallCommand is what a Job's init container runs, in the keepsake
// image, to copy keepsake and restic into RuntimeDir.
var InstallCommand = []string{"/usr/local/bin/keepsake", "install-runtime", RuntimeDir}

// TaskVars are the values substituted into a task's Function: the task's
// parameter defaults overlaid with the user's params, plus the built-in
// driver.
func TaskVars(task *addonsv1alpha1.Task, params map[string]string) map[string]string {
	v := map[string]string{}
	for _, def := range task.Parameters {
		if def.Default != nil {
			v[def.Name] = *def.Default
		}
	}
	for k, val := range params {
		v[k] = val
	}
	v["driver"] = task.Driver
	return v
}

// SecretParams returns the Secrets that the task's secret parameters name,
// which the Job mounts, and the KEEPSAKE_SECRET variable handing each
// mounted directory to the driver as the credential of the parameter's
// name (`keepsake run --secret name=dir`). Unset secret parameters are
// skipped; env is nil when there are none.
func SecretParams(task *addonsv1alpha1.Task, vars map[string]string) (secrets []string, env []corev1.EnvVar) {
	var lines []string
	for _, def := range task.Parameters {
		name := vars[def.Name]
		if def.Type != addonsv1alpha1.ParameterSecret || name == "" {
			continue
		}
		secrets = append(secrets, name)
		lines = append(lines, def.Name+"="+SecretPath(name))
	}
	if len(lines) == 0 {
		return nil, nil
	}
	return secrets, []corev1.EnvVar{{Name: "KEEPSAKE_SECRET", Value: strings.Join(lines, "\n")}}
}

// Options are what a reconciler needs to create its Jobs (or the CronJobs'
// pods): the keepsake image, the identity each kind of Job runs as in the
// object's namespace, and the provisioner that makes those ServiceAccounts
// and their Roles. operator.Setup fills them for every reconciler.
type Options struct {
	// Image is the keepsake image: the init container copies the runtime
	// from it; Jobs without a Function run it.
	Image string
	// Accounts are the ServiceAccount and Role of each kind of Job.
	Accounts access.Accounts
	// Access creates them.
	Access *access.Provisioner
}

// ResolveTask finds task taskName of Addon addonName among its backup
// tasks (restore false) or restore tasks, and the task's Function. Missing
// ones are a *Problem with reason AddonNotFound, TaskNotFound or
// FunctionNotFound.
func ResolveTask(ctx context.Context, c client.Reader, addonName, taskName string, restore bool) (*addonsv1alpha1.Task, *addonsv1alpha1.Function, error) {
	var addon addonsv1alpha1.Addon
	if err := c.Get(ctx, client.ObjectKey{Name: addonName}, &addon); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, NewProblem(corev1alpha1.ReasonAddonNotFound, "Addon %s not found", addonName)
		}
		return nil, nil, fmt.Errorf("get Addon %s: %w", addonName, err)
	}
	kind, tasks := "backup", addon.Spec.BackupTasks
	if restore {
		kind, tasks = "restore", addon.Spec.RestoreTasks
	}
	i := slices.IndexFunc(tasks, func(t addonsv1alpha1.Task) bool { return t.Name == taskName })
	if i < 0 {
		return nil, nil, NewProblem(corev1alpha1.ReasonTaskNotFound, "Addon %s has no %s task %s", addonName, kind, taskName)
	}
	task := &tasks[i]
	var fn addonsv1alpha1.Function
	if err := c.Get(ctx, client.ObjectKey{Name: task.Function}, &fn); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, NewProblem(corev1alpha1.ReasonFunctionNotFound,
				"Function %s of %s task %s/%s not found", task.Function, kind, addonName, taskName)
		}
		return nil, nil, fmt.Errorf("get Function %s: %w", task.Function, err)
	}
	return task, &fn, nil
}

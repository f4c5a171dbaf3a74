package backupconfiguration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/storageref"
	"github.com/keepsake-dev/keepsake/operator/internal/targets"
)

// problem is something wrong with a BackupConfiguration that a user fixes.
type problem struct {
	// reason is the condition reason, a constant of apis/core/v1alpha1.
	reason string
	// message says what is wrong, for `kubectl describe`.
	message string
	// invalid means the spec itself must change; otherwise something it
	// needs is missing for now and the check is retried.
	invalid bool
	// waiting means nothing is wrong yet: something the operator made is
	// on its way (a Repository not checked yet). It records no Event.
	waiting bool
}

// missing is a problem that may solve itself (a dependency appears).
func missing(reason, format string, args ...any) *problem {
	return &problem{reason: reason, message: fmt.Sprintf(format, args...)}
}

// invalid is a problem only a change of the spec solves.
func invalid(reason, format string, args ...any) *problem {
	return &problem{reason: reason, message: fmt.Sprintf(format, args...), invalid: true}
}

// check validates one aspect of the spec, recorded as one condition.
type check struct {
	// condType is the condition the check sets.
	condType string
	// okReason and okMessage describe a check that passed.
	okReason, okMessage string
	// run returns the problem found, or an error when it could not tell.
	run func(ctx context.Context, p *pass) (*problem, error)
}

// checks lists the validations in the order users read them.
func (r *Reconciler) checks() []check {
	return []check{
		{corev1alpha1.ConditionTargetFound, corev1alpha1.ReasonTargetFound, "the target exists", r.checkTarget},
		{corev1alpha1.ConditionStorageReady, corev1alpha1.ReasonStorageReady, "every backend's storage is Ready", r.checkBackends},
		{corev1alpha1.ConditionAddonResolved, corev1alpha1.ReasonAddonResolved, "every session's addon tasks are resolved", r.checkAddons},
		{corev1alpha1.ConditionSecretsFound, corev1alpha1.ReasonSecretsFound, "every Secret named exists with the keys it needs", r.checkSecrets},
		{corev1alpha1.ConditionScheduleReady, corev1alpha1.ReasonScheduleReady, "every schedule is valid", r.checkSchedules},
	}
}

// checkTarget looks the target up by API group and kind through the REST
// mapper, so any kind works, including custom resources.
func (r *Reconciler) checkTarget(ctx context.Context, p *pass) (*problem, error) {
	t := p.bc.Spec.Target
	ns := namespaceOr(t.Namespace, p.bc.Namespace)
	err := jobs.TargetConsent(ctx, r.APIReader, p.bc.Namespace, ns, corev1alpha1.AnnotationAllowBackupFrom)
	var prob *jobs.Problem
	if errors.As(err, &prob) {
		return missing(prob.Reason, "%s", prob.Error()), nil
	}
	if err != nil {
		return nil, err
	}
	err = targets.Find(ctx, r.APIReader, r.RESTMapper, t, ns)
	if errors.As(err, &prob) {
		return missing(prob.Reason, "%s", prob.Error()), nil
	}
	return nil, err
}

// checkBackends makes sure each backend's storage exists, is Ready and lets
// this namespace use it, and that its retention policy exists.
func (r *Reconciler) checkBackends(ctx context.Context, p *pass) (*problem, error) {
	for _, b := range p.bc.Spec.Backends {
		if prob, err := r.checkStorage(ctx, p.bc.Namespace, b); prob != nil || err != nil {
			return prob, err
		}
		if prob, err := r.checkRetentionPolicy(ctx, p.bc.Namespace, b); prob != nil || err != nil {
			return prob, err
		}
	}
	return nil, nil
}

func (r *Reconciler) checkStorage(ctx context.Context, ns string, b corev1alpha1.BackendReference) (*problem, error) {
	key := types.NamespacedName{Namespace: namespaceOr(b.StorageRef.Namespace, ns), Name: b.StorageRef.Name}
	var bs storagev1alpha1.BackupStorage
	if err := r.Client.Get(ctx, key, &bs); err != nil {
		if apierrors.IsNotFound(err) {
			return missing(corev1alpha1.ReasonStorageNotFound, "backend %s: BackupStorage %s not found", b.Name, key), nil
		}
		return nil, fmt.Errorf("get BackupStorage %s: %w", key, err)
	}
	allowed, err := r.allows(ctx, bs.Spec.UsagePolicy, bs.Namespace, ns)
	if err != nil || !allowed {
		return missing(corev1alpha1.ReasonStorageNotAllowed,
			"backend %s: the usage policy of BackupStorage %s does not allow namespace %s", b.Name, key, ns), err
	}
	if bs.Status.Phase != storagev1alpha1.BackupStorageReady {
		return missing(corev1alpha1.ReasonStorageNotReady, "backend %s: BackupStorage %s is not Ready", b.Name, key), nil
	}
	return nil, nil
}

func (r *Reconciler) checkRetentionPolicy(ctx context.Context, ns string, b corev1alpha1.BackendReference) (*problem, error) {
	if b.RetentionPolicy == nil {
		return nil, nil
	}
	key := types.NamespacedName{Namespace: namespaceOr(b.RetentionPolicy.Namespace, ns), Name: b.RetentionPolicy.Name}
	var rp storagev1alpha1.RetentionPolicy
	if err := r.Client.Get(ctx, key, &rp); err != nil {
		if apierrors.IsNotFound(err) {
			return missing(corev1alpha1.ReasonRetentionPolicyNotFound, "backend %s: RetentionPolicy %s not found", b.Name, key), nil
		}
		return nil, fmt.Errorf("get RetentionPolicy %s: %w", key, err)
	}
	allowed, err := r.allows(ctx, rp.Spec.UsagePolicy, rp.Namespace, ns)
	if err != nil || !allowed {
		return missing(corev1alpha1.ReasonStorageNotAllowed,
			"backend %s: the usage policy of RetentionPolicy %s does not allow namespace %s", b.Name, key, ns), err
	}
	return nil, nil
}

// allows applies a usage policy of an object of namespace own to ns.
func (r *Reconciler) allows(ctx context.Context, policy *storagev1alpha1.UsagePolicy, own, ns string) (bool, error) {
	return storageref.Allows(ctx, r.APIReader, policy, own, ns)
}

// checkAddons resolves each session's Addon, its tasks, their parameters
// and Functions.
func (r *Reconciler) checkAddons(ctx context.Context, p *pass) (*problem, error) {
	for _, s := range p.bc.Spec.Sessions {
		var a addonsv1alpha1.Addon
		if err := r.Client.Get(ctx, types.NamespacedName{Name: s.Addon.Name}, &a); err != nil {
			if apierrors.IsNotFound(err) {
				return missing(corev1alpha1.ReasonAddonNotFound, "session %s: Addon %s not found", s.Name, s.Addon.Name), nil
			}
			return nil, fmt.Errorf("get Addon %s: %w", s.Addon.Name, err)
		}
		for _, ref := range s.Addon.Tasks {
			if prob, err := r.checkTask(ctx, s.Name, &a, ref); prob != nil || err != nil {
				return prob, err
			}
		}
	}
	return nil, nil
}

func (r *Reconciler) checkTask(ctx context.Context, session string, a *addonsv1alpha1.Addon, ref corev1alpha1.TaskReference) (*problem, error) {
	task := findTask(a.Spec.BackupTasks, ref.Name)
	if task == nil {
		return invalid(corev1alpha1.ReasonTaskNotFound, "session %s: Addon %s has no backup task %s", session, a.Name, ref.Name), nil
	}
	if prob := checkParams(session, task, ref.Params); prob != nil {
		return prob, nil
	}
	var fn addonsv1alpha1.Function
	if err := r.Client.Get(ctx, types.NamespacedName{Name: task.Function}, &fn); err != nil {
		if apierrors.IsNotFound(err) {
			return missing(corev1alpha1.ReasonFunctionNotFound, "session %s: task %s needs Function %s, which is not found", session, task.Name, task.Function), nil
		}
		return nil, fmt.Errorf("get Function %s: %w", task.Function, err)
	}
	return nil, nil
}

// checkParams rejects parameters the task does not know, and required ones
// left unset.
func checkParams(session string, task *addonsv1alpha1.Task, params map[string]string) *problem {
	known := map[string]bool{}
	for _, def := range task.Parameters {
		known[def.Name] = true
		if _, set := params[def.Name]; def.Required && !set {
			return invalid(corev1alpha1.ReasonMissingRequiredParameter, "session %s: task %s needs parameter %s", session, task.Name, def.Name)
		}
	}
	for _, name := range sortedKeys(params) {
		if !known[name] {
			return invalid(corev1alpha1.ReasonUnknownParameter, "session %s: task %s has no parameter %s; its parameters are: %s",
				session, task.Name, name, parameterNames(task))
		}
	}
	return nil
}

// parameterNames lists a task's parameters, for messages.
func parameterNames(task *addonsv1alpha1.Task) string {
	names := make([]string, 0, len(task.Parameters))
	for _, def := range task.Parameters {
		names = append(names, def.Name)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func findTask(tasks []addonsv1alpha1.Task, name string) *addonsv1alpha1.Task {
	for i := range tasks {
		if tasks[i].Name == name {
			return &tasks[i]
		}
	}
	return nil
}

// checkSchedules parses each schedule as the CronJob controller will, and
// loads its time zone; both are kept for computing next schedules.
func (r *Reconciler) checkSchedules(_ context.Context, p *pass) (*problem, error) {
	for _, s := range p.bc.Spec.Sessions {
		spec := s.Scheduler.Schedule
		if strings.Contains(spec, "TZ=") {
			return invalid(corev1alpha1.ReasonInvalidSchedule, "session %s: set the time zone in scheduler.timeZone, not in the schedule", s.Name), nil
		}
		sched, err := cron.ParseStandard(spec)
		if err == nil {
			err = checkSteps(spec)
		}
		if err != nil {
			return invalid(corev1alpha1.ReasonInvalidSchedule, "session %s: schedule %q: %v", s.Name, spec, err), nil
		}
		loc := time.Local
		if tz := s.Scheduler.TimeZone; tz != nil && *tz != "" {
			if loc, err = time.LoadLocation(*tz); err != nil {
				return invalid(corev1alpha1.ReasonInvalidTimeZone, "session %s: time zone %q: %v", s.Name, *tz, err), nil
			}
		}
		p.schedules[s.Name] = sched
		p.locations[s.Name] = loc
	}
	return nil, nil
}

// fieldRanges are the names and largest values of the five cron fields.
var fieldRanges = []struct {
	name string
	max  int
}{{"minute", 59}, {"hour", 23}, {"day of month", 31}, {"month", 12}, {"day of week", 6}}

// checkSteps refuses a step larger than its field's range, which the cron
// parser accepts: */61 in the minute field would run hourly, not every 61
// minutes. Macros (@daily, @every 1h) have no steps.
func checkSteps(spec string) error {
	fields := strings.Fields(spec)
	if len(fields) != len(fieldRanges) {
		return nil
	}
	for i, f := range fields {
		for _, part := range strings.Split(f, ",") {
			_, step, found := strings.Cut(part, "/")
			if !found {
				continue
			}
			n, err := strconv.Atoi(step)
			if err != nil {
				return fmt.Errorf("step %q of the %s field is not a number", step, fieldRanges[i].name)
			}
			if n > fieldRanges[i].max {
				return fmt.Errorf("step /%d of the %s field is larger than the field's range (at most %d)", n, fieldRanges[i].name, fieldRanges[i].max)
			}
		}
	}
	return nil
}

// namespaceOr returns ns, or def when ns is empty.
func namespaceOr(ns, def string) string {
	if ns == "" {
		return def
	}
	return ns
}

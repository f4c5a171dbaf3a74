package backupconfiguration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

// maxCronJobName is the longest CronJob name Kubernetes accepts: the
// CronJob controller appends an 11-character suffix to name its Jobs.
const maxCronJobName = 52

// triggerUID is the user the trigger container runs as: the image may set
// none, and the restricted Pod Security Standard forbids root.
const triggerUID = 65532

// CronJobName is the name of the CronJob of a session: <config>-<session>,
// or its first characters and a hash when that is too long.
func CronJobName(config, session string) string {
	return truncatedName(config+"-"+session, maxCronJobName)
}

// truncatedName returns name when it fits in max characters, otherwise its
// beginning and a hash of all of it, so distinct names stay distinct.
func truncatedName(name string, max int) string {
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	hash := hex.EncodeToString(sum[:])[:8]
	return name[:max-len(hash)-1] + "-" + hash
}

// ensureCronJobs creates or updates one CronJob per session and deletes the
// CronJobs of sessions that were removed.
func (r *Reconciler) ensureCronJobs(ctx context.Context, p *pass) (*ctrl.Result, error) {
	if err := r.Options.Access.Ensure(ctx, p.bc.Namespace, r.Options.Accounts.Trigger); err != nil {
		return nil, err
	}
	for _, s := range p.bc.Spec.Sessions {
		cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{
			Namespace: p.bc.Namespace,
			Name:      CronJobName(p.bc.Name, s.Name),
		}}
		op, err := controllerutil.CreateOrUpdate(ctx, r.Client, cj, func() error {
			r.shapeCronJob(cj, p.bc, s)
			return controllerutil.SetControllerReference(p.bc, cj, r.Client.Scheme())
		})
		if err != nil {
			return nil, fmt.Errorf("write CronJob %s: %w", cj.Name, err)
		}
		if op == controllerutil.OperationResultCreated {
			r.Events.Eventf(p.bc, cj, corev1.EventTypeNormal, "CronJobCreated", "Reconcile",
				"created CronJob %s for session %s", cj.Name, s.Name)
		}
		p.cronJobs[s.Name] = cj
	}
	if err := r.deleteStaleCronJobs(ctx, p); err != nil {
		return nil, err
	}
	r.setCondition(p, corev1alpha1.ConditionScheduleReady, nil, corev1alpha1.ReasonScheduleReady,
		fmt.Sprintf("%d CronJobs in place", len(p.cronJobs)))
	return nil, nil
}

// shapeCronJob sets the fields of cj the operator owns, leaving those the
// API server defaulted untouched so that an unchanged CronJob is not
// rewritten.
func (r *Reconciler) shapeCronJob(cj *batchv1.CronJob, bc *corev1alpha1.BackupConfiguration, s corev1alpha1.Session) {
	labels := map[string]string{
		corev1alpha1.LabelBackupConfiguration: bc.Name,
		corev1alpha1.LabelSession:             s.Name,
	}
	if cj.Labels == nil {
		cj.Labels = map[string]string{}
	}
	for k, v := range labels {
		cj.Labels[k] = v
	}
	sched := s.Scheduler
	cj.Spec.Schedule = sched.Schedule
	cj.Spec.TimeZone = sched.TimeZone
	cj.Spec.Suspend = ptr.To(bc.Spec.Paused || sched.Suspend)
	cj.Spec.ConcurrencyPolicy = sched.ConcurrencyPolicy
	if cj.Spec.ConcurrencyPolicy == "" {
		cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
	}
	cj.Spec.StartingDeadlineSeconds = sched.StartingDeadlineSeconds
	cj.Spec.SuccessfulJobsHistoryLimit = ptr.To(ptr.Deref(sched.SuccessfulJobsHistoryLimit, 1))
	cj.Spec.FailedJobsHistoryLimit = ptr.To(ptr.Deref(sched.FailedJobsHistoryLimit, 1))

	job := &cj.Spec.JobTemplate
	job.Labels = labels
	job.Spec.BackoffLimit = ptr.To[int32](3)
	pod := &job.Spec.Template
	pod.Labels = labels
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.ServiceAccountName = r.Options.Accounts.Trigger.Name
	if pod.Spec.SecurityContext == nil {
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	pod.Spec.SecurityContext.RunAsNonRoot = ptr.To(true)
	pod.Spec.SecurityContext.RunAsUser = ptr.To[int64](triggerUID)
	pod.Spec.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	if len(pod.Spec.Containers) != 1 {
		pod.Spec.Containers = []corev1.Container{{}}
	}
	r.shapeTriggerContainer(&pod.Spec.Containers[0], bc, s)
}

// shapeTriggerContainer sets the container that runs `keepsake trigger`.
func (r *Reconciler) shapeTriggerContainer(c *corev1.Container, bc *corev1alpha1.BackupConfiguration, s corev1alpha1.Session) {
	c.Name = "trigger"
	c.Image = r.Options.Image
	c.Args = TriggerArgs(bc.Namespace, bc.Name, s.Name)
	c.SecurityContext = &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	c.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("10m"),
			corev1.ResourceMemory: resource.MustParse("32Mi"),
		},
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
}

// TriggerArgs are the arguments of the keepsake image that create one
// BackupSession of a session.
func TriggerArgs(namespace, config, session string) []string {
	return []string{"trigger", "--namespace", namespace, "--backup-configuration", config, "--session", session}
}

// deleteStaleCronJobs deletes the CronJobs this configuration controls
// whose session is gone.
func (r *Reconciler) deleteStaleCronJobs(ctx context.Context, p *pass) error {
	var list batchv1.CronJobList
	if err := r.Client.List(ctx, &list, client.InNamespace(p.bc.Namespace),
		client.MatchingLabels{corev1alpha1.LabelBackupConfiguration: p.bc.Name}); err != nil {
		return fmt.Errorf("list CronJobs: %w", err)
	}
	for i := range list.Items {
		cj := &list.Items[i]
		if !metav1.IsControlledBy(cj, p.bc) || p.cronJobs[cj.Labels[corev1alpha1.LabelSession]] != nil {
			continue
		}
		err := r.Client.Delete(ctx, cj, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete CronJob %s: %w", cj.Name, err)
		}
	}
	return nil
}

package e2e

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/keepsake-dev/keepsake/test/cluster"
)

// podOption changes a pod spec built by restrictedPod.
type podOption func(*corev1.PodSpec)

// restrictedPod runs command with busybox as a pod meeting the restricted
// Pod Security Standard: non-root, no privilege escalation, no
// capabilities, RuntimeDefault seccomp, read-only root filesystem.
func restrictedPod(command string, opts ...podOption) corev1.PodSpec {
	spec := corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)), RunAsGroup: ptr.To(int64(65532)),
			FSGroup: ptr.To(int64(65532)), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name: "main", Image: cluster.BusyboxImage, ImagePullPolicy: corev1.PullNever,
			Command: []string{"sh", "-c", command},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
	}
	for _, o := range opts {
		o(&spec)
	}
	return spec
}

// withSecretVolume mounts a Secret read-only at /secret with mode 0400.
func withSecretVolume(secret string) podOption {
	return func(spec *corev1.PodSpec) {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "secret", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: secret, DefaultMode: ptr.To(int32(0o400))}}})
		c := &spec.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "secret", MountPath: "/secret", ReadOnly: true})
	}
}

// createPrivilegedPod creates a valid pod that the restricted (indeed even
// the baseline) Pod Security level forbids.
func createPrivilegedPod(t *testing.T, c *cluster.Cluster, ns string) error {
	spec := restrictedPod("true")
	spec.SecurityContext = nil
	spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	_, err := c.Client.CoreV1().Pods(ns).Create(testContext(t, time.Minute), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "privileged"}, Spec: spec}, metav1.CreateOptions{})
	return err
}

func createSecret(t *testing.T, c *cluster.Cluster, ns, name string, data map[string]string) {
	t.Helper()
	_, err := c.Client.CoreV1().Secrets(ns).Create(testContext(t, time.Minute), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create secret %s: %v", name, err)
	}
}

func createJob(t *testing.T, c *cluster.Cluster, ns, name, command string, opts ...podOption) string {
	t.Helper()
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{BackoffLimit: ptr.To(int32(0)), Template: corev1.PodTemplateSpec{
			Spec: restrictedPod(command, opts...)}},
	}
	if _, err := c.Client.BatchV1().Jobs(ns).Create(testContext(t, time.Minute), job, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create job %s: %v", name, err)
	}
	return name
}

func createCronJob(t *testing.T, c *cluster.Cluster, ns, name, schedule, command string) *batchv1.CronJob {
	t.Helper()
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.CronJobSpec{Schedule: schedule, ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{BackoffLimit: ptr.To(int32(0)),
				Template: corev1.PodTemplateSpec{Spec: restrictedPod(command)}}}},
	}
	created, err := c.Client.BatchV1().CronJobs(ns).Create(testContext(t, time.Minute), cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create cronjob %s: %v", name, err)
	}
	return created
}

func createStatefulSet(t *testing.T, c *cluster.Cluster, ns, name string) string {
	t.Helper()
	labels := map[string]string{"app": name}
	spec := restrictedPod("echo stored > /data/file && exec sleep 3600")
	spec.RestartPolicy = corev1.RestartPolicyAlways
	spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
		Exec: &corev1.ExecAction{Command: []string{"grep", "-q", "stored", "/data/file"}}}}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(int32(1)), ServiceName: name,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: labels},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceStorage: resource.MustParse("16Mi")}},
				},
			}},
		},
	}
	if _, err := c.Client.AppsV1().StatefulSets(ns).Create(testContext(t, time.Minute), sts, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create statefulset %s: %v", name, err)
	}
	return name
}

// waitFor watches objects (after listing them) until cond holds for one.
func waitFor[T runtime.Object](t *testing.T, timeout time.Duration, what string, lw cache.ListerWatcher, cond func(T) (bool, error)) T {
	t.Helper()
	var zero T
	objType := reflect.New(reflect.TypeOf(zero).Elem()).Interface().(T)
	ev, err := watchtools.UntilWithSync(testContext(t, timeout), lw, objType, nil, func(ev watch.Event) (bool, error) {
		obj, ok := ev.Object.(T)
		if !ok || ev.Type == watch.Deleted {
			return false, nil
		}
		return cond(obj)
	})
	if err != nil {
		t.Fatalf("wait for %s: %v", what, err)
	}
	return ev.Object.(T)
}

// listWatch lists and watches one kind of object in a namespace, optionally
// narrowed by a field selector.
func listWatch[L runtime.Object](list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error), fieldSelector string) cache.ListerWatcher {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fieldSelector
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fieldSelector
			return watchFn(ctx, o)
		},
	}
}

func byName(name string) string { return fields.OneTermEqualSelector("metadata.name", name).String() }

func waitJobComplete(t *testing.T, c *cluster.Cluster, ns, name string, timeout time.Duration) {
	t.Helper()
	jobs := c.Client.BatchV1().Jobs(ns)
	waitFor(t, timeout, "job "+name+" complete", listWatch(jobs.List, jobs.Watch, byName(name)),
		func(j *batchv1.Job) (bool, error) {
			for _, cond := range j.Status.Conditions {
				if cond.Status != corev1.ConditionTrue {
					continue
				}
				switch cond.Type {
				case batchv1.JobComplete:
					return true, nil
				case batchv1.JobFailed:
					return false, fmt.Errorf("job %s failed: %s: %s", name, cond.Reason, cond.Message)
				}
			}
			return false, nil
		})
}

// waitCronJobRun waits for a Job the CronJob created and returns its name.
func waitCronJobRun(t *testing.T, c *cluster.Cluster, ns string, cj *batchv1.CronJob, timeout time.Duration) string {
	t.Helper()
	jobs := c.Client.BatchV1().Jobs(ns)
	job := waitFor(t, timeout, "a job of cronjob "+cj.Name, listWatch(jobs.List, jobs.Watch, ""),
		func(j *batchv1.Job) (bool, error) {
			owner := metav1.GetControllerOf(j)
			return owner != nil && owner.UID == cj.UID, nil
		})
	return job.Name
}

// waitStatefulSetReady waits until StatefulSet name has observed its spec
// and has replicas Ready pods.
func waitStatefulSetReady(t *testing.T, c *cluster.Cluster, ns, name string, replicas int32, timeout time.Duration) {
	t.Helper()
	sets := c.Client.AppsV1().StatefulSets(ns)
	waitFor(t, timeout, "statefulset "+name+" ready", listWatch(sets.List, sets.Watch, byName(name)),
		func(s *appsv1.StatefulSet) (bool, error) {
			return s.Status.ReadyReplicas == replicas && s.Status.ObservedGeneration == s.Generation, nil
		})
}

func waitClaimsBound(t *testing.T, c *cluster.Cluster, ns, selector string, timeout time.Duration) {
	t.Helper()
	ctx := testContext(t, timeout)
	claims, err := c.Client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("list claims: %v", err)
	}
	if len(claims.Items) == 0 {
		t.Fatalf("no claims match %s", selector)
	}
	pvcs := c.Client.CoreV1().PersistentVolumeClaims(ns)
	for _, claim := range claims.Items {
		waitFor(t, timeout, "claim "+claim.Name+" bound", listWatch(pvcs.List, pvcs.Watch, byName(claim.Name)),
			func(p *corev1.PersistentVolumeClaim) (bool, error) {
				return p.Status.Phase == corev1.ClaimBound && p.Spec.StorageClassName != nil &&
					*p.Spec.StorageClassName == "local-path", nil
			})
	}
}

package jobs

import (
	"fmt"
	"path"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
)

const (
	// RuntimeDir is where the init container copies keepsake and restic;
	// Functions run /keepsake/bin/keepsake.
	RuntimeDir = "/keepsake/bin"
	// SecretsDir holds one directory per mounted Secret.
	SecretsDir = "/keepsake/secrets"
	// ScratchDir is a small writable emptyDir for restic's cache and the
	// driver's temporary files: the root filesystem is read-only.
	ScratchDir = "/keepsake/scratch"
	// NonRootUID is the user Job pods run as unless the Function says
	// otherwise.
	NonRootUID = 65532

	// LabelManagedBy marks every Job the operator creates, with value
	// ManagedBy: the operator's cache holds only those Jobs.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "keepsake"

	runtimeVolume = "keepsake-runtime"
	scratchVolume = "keepsake-scratch"
)

// Spec is everything a Job for one task needs.
type Spec struct {
	// Name and Namespace of the Job.
	Name, Namespace string
	// Labels go on the Job and its pod (they link both to their session).
	Labels map[string]string
	// Function is the container definition of the task.
	Function *addonsv1alpha1.Function
	// Vars are the values substituted into the Function's command, args and
	// env: task parameters plus built-ins such as driver.
	Vars map[string]string
	// RuntimeImage is the keepsake image the init container copies from.
	RuntimeImage string
	// InstallCommand copies keepsake and restic into RuntimeDir.
	InstallCommand []string
	// ServiceAccount the pod runs as.
	ServiceAccount string
	// NoToken leaves the ServiceAccount's token out of the pod, for Jobs
	// whose command makes no API call (access.Kind.NeedsToken).
	NoToken bool
	// Secrets are mounted read-only (mode 0400) at SecretsDir/<name>.
	Secrets []string
	// Env are extra variables the operator sets (never secret values).
	Env []corev1.EnvVar
	// ActiveDeadlineSeconds bounds the Job's run time; nil is unbounded.
	ActiveDeadlineSeconds *int64
}

// unique returns names without repeats, in their first order.
func unique(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// SecretPath returns where Build mounts the Secret named name.
func SecretPath(name string) string { return path.Join(SecretsDir, name) }

// Build assembles the Job. It fails when the Function uses a variable that
// has no value, so the caller can report it as a condition instead of
// starting a Job doomed to fail.
func Build(s Spec) (*batchv1.Job, error) {
	// One Secret is often named twice (the repository's encryption Secret
	// is also the driver's auth Secret): a second volume at the same mount
	// path would make the API server refuse the Job.
	s.Secrets = unique(s.Secrets)
	main, err := functionContainer(s)
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", s.Function.Name, err)
	}
	pod := corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		ServiceAccountName:           s.ServiceAccount,
		AutomountServiceAccountToken: ptr.To(!s.NoToken),
		SecurityContext:              podSecurityContext(),
		InitContainers:               []corev1.Container{installContainer(s)},
		Containers:                   []corev1.Container{main},
		Volumes:                      volumes(s.Secrets),
	}
	labels := map[string]string{LabelManagedBy: ManagedBy}
	for k, v := range s.Labels {
		labels[k] = v
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			// Retries are the session's business (retryConfig), so that a
			// retry is visible as a new BackupSession, never a silent rerun.
			BackoffLimit:          ptr.To[int32](0),
			ActiveDeadlineSeconds: s.ActiveDeadlineSeconds,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       pod,
			},
		},
	}, nil
}

func installContainer(s Spec) corev1.Container {
	return corev1.Container{
		Name:            "install-runtime",
		Image:           s.RuntimeImage,
		Command:         s.InstallCommand,
		SecurityContext: restrictedContainer(nil),
		VolumeMounts:    []corev1.VolumeMount{{Name: runtimeVolume, MountPath: RuntimeDir}},
	}
}

func functionContainer(s Spec) (corev1.Container, error) {
	fn := s.Function.Spec
	command, err := SubstituteAll(fn.Command, s.Vars)
	if err != nil {
		return corev1.Container{}, err
	}
	args, err := SubstituteAll(fn.Args, s.Vars)
	if err != nil {
		return corev1.Container{}, err
	}
	env, err := substituteEnv(fn.Env, s.Vars)
	if err != nil {
		return corev1.Container{}, err
	}
	c := corev1.Container{
		Name:         "task",
		Image:        fn.Image,
		Command:      command,
		Args:         args,
		Env:          append(append(env, scratchEnv...), s.Env...),
		VolumeMounts: append(builtinMounts(s.Secrets), fn.VolumeMounts...),
	}
	var custom *corev1.SecurityContext
	if rs := fn.RuntimeSettings; rs != nil {
		c.Resources = rs.Resources
		custom = rs.SecurityContext
	}
	c.SecurityContext = restrictedContainer(custom)
	return c, nil
}

// scratchEnv points temporary files at the scratch volume: the root file
// system is read-only, and the runtime and its driver need a writable
// TMPDIR (go-plugin makes its socket there) and HOME.
var scratchEnv = []corev1.EnvVar{{Name: "TMPDIR", Value: ScratchDir}, {Name: "HOME", Value: ScratchDir}}

func substituteEnv(env []corev1.EnvVar, vars map[string]string) ([]corev1.EnvVar, error) {
	out := make([]corev1.EnvVar, 0, len(env))
	for _, e := range env {
		if e.ValueFrom == nil {
			v, err := Substitute(e.Value, vars)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			e.Value = v
		}
		out = append(out, e)
	}
	return out, nil
}

package jobs

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
)

func function(mutate func(*addonsv1alpha1.FunctionSpec)) *addonsv1alpha1.Function {
	fn := &addonsv1alpha1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: "db-backup"},
		Spec: addonsv1alpha1.FunctionSpec{
			Image:   "example/db-tools:1",
			Command: []string{RuntimeDir + "/keepsake"},
			Args:    []string{"run", "backup", "--driver=${driver}", "--param=mode=${mode:=merge}"},
			Env:     []corev1.EnvVar{{Name: "DB_URL", Value: "${url:=http://db:8086}"}},
		},
	}
	if mutate != nil {
		mutate(&fn.Spec)
	}
	return fn
}

func spec(fn *addonsv1alpha1.Function) Spec {
	return Spec{
		Name: "bks-1", Namespace: "demo",
		Labels:         map[string]string{"keepsake.dev/backup-session": "bks-1"},
		Function:       fn,
		Vars:           map[string]string{"driver": "/usr/local/bin/db-driver"},
		RuntimeImage:   "keepsake:dev",
		InstallCommand: []string{"/usr/local/bin/keepsake", "install-runtime", RuntimeDir},
		ServiceAccount: "keepsake-job",
		Secrets:        []string{"restic-password", "db.auth"},
	}
}

// TestBuildMeetsRestricted evaluates built pods with the Pod Security
// admission library itself: whatever a Function sets, the pod must pass the
// "restricted" level, as a namespace enforcing it would require.
func TestBuildMeetsRestricted(t *testing.T) {
	cases := map[string]struct {
		mutate func(*addonsv1alpha1.FunctionSpec) // how the Function differs from the plain one
	}{
		"plain function": {},
		"function asks for privilege escalation": {mutate: func(f *addonsv1alpha1.FunctionSpec) {
			f.RuntimeSettings = &addonsv1alpha1.RuntimeSettings{SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(true), Privileged: ptr.To(true), RunAsNonRoot: ptr.To(false),
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}, Drop: []corev1.Capability{"NET_RAW"}},
			}}
		}},
		"function sets its own user and writable root": {mutate: func(f *addonsv1alpha1.FunctionSpec) {
			f.RuntimeSettings = &addonsv1alpha1.RuntimeSettings{SecurityContext: &corev1.SecurityContext{
				RunAsUser: ptr.To[int64](1000), ReadOnlyRootFilesystem: ptr.To(false),
			}}
		}},
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			job, err := Build(spec(function(tc.mutate)))
			if err != nil {
				t.Fatal(err)
			}
			tmpl := job.Spec.Template
			for _, r := range evaluator.EvaluatePod(restricted, &tmpl.ObjectMeta, &tmpl.Spec) {
				if !r.Allowed {
					t.Errorf("restricted check failed: %s: %s", r.ForbiddenReason, r.ForbiddenDetail)
				}
			}
		})
	}
}

func TestBuildAssemblesTheTask(t *testing.T) {
	job, err := Build(spec(function(nil)))
	if err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	if *job.Spec.BackoffLimit != 0 || pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("backoffLimit %d restartPolicy %s; want 0, Never", *job.Spec.BackoffLimit, pod.RestartPolicy)
	}
	if job.Labels["keepsake.dev/backup-session"] != "bks-1" || job.Spec.Template.Labels["keepsake.dev/backup-session"] != "bks-1" {
		t.Errorf("session label missing on job %v or pod %v", job.Labels, job.Spec.Template.Labels)
	}
	if got := pod.InitContainers[0]; got.Image != "keepsake:dev" || got.Command[1] != "install-runtime" {
		t.Errorf("init container %s %v", got.Image, got.Command)
	}
	task := pod.Containers[0]
	wantArgs := "run backup --driver=/usr/local/bin/db-driver --param=mode=merge"
	if got := strings.Join(task.Args, " "); got != wantArgs {
		t.Errorf("args %q, want %q", got, wantArgs)
	}
	if task.Env[0].Value != "http://db:8086" {
		t.Errorf("env DB_URL = %q, want the default", task.Env[0].Value)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range task.VolumeMounts {
		mounts[m.MountPath] = m
	}
	for _, p := range []string{RuntimeDir, ScratchDir, SecretPath("restic-password"), SecretPath("db.auth")} {
		if _, ok := mounts[p]; !ok {
			t.Errorf("no mount at %s in %v", p, task.VolumeMounts)
		}
	}
	secrets := 0
	for _, v := range pod.Volumes {
		if s := v.Secret; s != nil {
			secrets++
			if *s.DefaultMode != 0o400 {
				t.Errorf("secret %s mode %o, want 0400", s.SecretName, *s.DefaultMode)
			}
		}
	}
	if secrets != 2 {
		t.Errorf("%d secret volumes, want 2", secrets)
	}
}

func TestBuildRejectsUnsetVariable(t *testing.T) {
	fn := function(func(f *addonsv1alpha1.FunctionSpec) { f.Args = append(f.Args, "--param=auth=${authSecret}") })
	_, err := Build(spec(fn))
	if err == nil || !strings.Contains(err.Error(), "no value for authSecret") || !strings.Contains(err.Error(), "db-backup") {
		t.Fatalf("err = %v; want one naming authSecret and the function", err)
	}
}

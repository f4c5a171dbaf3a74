package repository_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/operator/repository"
)

// TestVerifyJobRunsTheDriver: the verify Job of a Snapshot whose backup
// recorded counts runs where the backup's driver is, as the backup Job
// did: the image of the backup task's Function, with its runtime
// settings, the runtime copied in by the init container, and
// KEEPSAKE_DRIVER the task's driver path. When the Snapshot's Addon is
// gone, the Job runs the keepsake image alone and KEEPSAKE_NO_DRIVER says
// why; without counts it needs no driver at all.
func TestVerifyJobRunsTheDriver(t *testing.T) {
	env := testenv.Default
	ns := env.Namespace(t, nil)
	repo := newRepository(ns, repoName, "local")
	env.Create(t, localStorage(ns), passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "x"}), repo)
	waitReady(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
	fn := &addonsv1alpha1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-backup"},
		Spec: addonsv1alpha1.FunctionSpec{Image: "registry.local/db-tools:1", Command: []string{"/keepsake/bin/keepsake"},
			Args:            []string{"run", "backup", "--driver=${driver}"},
			RuntimeSettings: &addonsv1alpha1.RuntimeSettings{SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](1234)}}},
	}
	addon := &addonsv1alpha1.Addon{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-db"},
		Spec: addonsv1alpha1.AddonSpec{BackupTasks: []addonsv1alpha1.Task{
			{Name: "logical-backup", Function: fn.Name, Driver: "/usr/local/bin/db-driver"},
		}},
	}
	env.Create(t, fn, addon)
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), addon)
		_ = env.Client.Delete(context.Background(), fn)
	})
	counted := storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotSucceeded, Components: map[string]storagev1alpha1.ComponentStatus{
		"dump": {Phase: storagev1alpha1.ComponentSucceeded, ResticSnapshotID: "abc", Counts: map[string]int64{"points": 10, "series": 2}}}}
	verifySnapshot := func(name string, addon *storagev1alpha1.AddonTaskReference, st storagev1alpha1.SnapshotStatus) (*batchv1.Job, map[string]string) {
		t.Helper()
		createSnapshot(t, &storagev1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{storagev1alpha1.AnnotationVerify: "r1"}},
			Spec:       storagev1alpha1.SnapshotSpec{Repository: repoName, BackupSession: "bks-" + name, Addon: addon},
		}, st)
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: repository.VerifyJobName(repoName)}}
		testenv.Eventually(t, func(ctx context.Context) (bool, string) {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(job), job)
			return err == nil && job.Annotations[repository.AnnotationVerifySnapshot] == name, "no verify Job for Snapshot " + name
		})
		envs := map[string]string{}
		for _, e := range job.Spec.Template.Spec.Containers[0].Env {
			envs[e.Name] = e.Value
		}
		return job, envs
	}
	// Each Job ends without a verdict, which answers its request, and is
	// deleted before the next Snapshot's starts.
	finish := func(job *batchv1.Job) {
		t.Helper()
		testenv.FinishJob(t, job, "BackoffLimitExceeded")
		waitJobGone(t, job)
	}

	job, envs := verifySnapshot("counted", &storagev1alpha1.AddonTaskReference{Name: addon.Name, Task: "logical-backup"}, counted)
	pod := job.Spec.Template.Spec
	main := pod.Containers[0]
	if main.Image != fn.Spec.Image || envs["KEEPSAKE_DRIVER"] != "/usr/local/bin/db-driver" || envs["KEEPSAKE_NO_DRIVER"] != "" ||
		!slices.Equal(main.Command, []string{jobs.RuntimeDir + "/keepsake", "run", "verify"}) || len(main.Args) != 0 ||
		main.SecurityContext == nil || ptr.Deref(main.SecurityContext.RunAsUser, 0) != 1234 {
		t.Fatalf("verify Job of a counted Snapshot: image %s command %v args %v env %v securityContext %+v",
			main.Image, main.Command, main.Args, envs, main.SecurityContext)
	}
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].Image != testenv.Options.Image ||
		!slices.Equal(pod.InitContainers[0].Command, jobs.InstallCommand) {
		t.Fatalf("verify Job init containers %+v: want the runtime copied from the keepsake image", pod.InitContainers)
	}
	finish(job)

	job, envs = verifySnapshot("addon-gone", &storagev1alpha1.AddonTaskReference{Name: ns + "-gone", Task: "logical-backup"}, counted)
	if main := job.Spec.Template.Spec.Containers[0]; main.Image != testenv.Options.Image || envs["KEEPSAKE_DRIVER"] != "" ||
		!strings.Contains(envs["KEEPSAKE_NO_DRIVER"], "Addon "+ns+"-gone not found") {
		t.Fatalf("verify Job of a Snapshot whose Addon is gone: image %s env %v", main.Image, envs)
	}
	finish(job)

	uncounted := *counted.DeepCopy()
	dump := uncounted.Components["dump"]
	dump.Counts = nil
	uncounted.Components["dump"] = dump
	job, envs = verifySnapshot("uncounted", nil, uncounted)
	if main := job.Spec.Template.Spec.Containers[0]; main.Image != testenv.Options.Image || envs["KEEPSAKE_DRIVER"] != "" || envs["KEEPSAKE_NO_DRIVER"] != "" {
		t.Fatalf("verify Job of a Snapshot without counts: image %s env %v", main.Image, envs)
	}
	finish(job)
}

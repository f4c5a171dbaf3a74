package backupconfiguration_test

import (
	"context"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/operator/internal/access"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestReadyConfiguration checks what a valid configuration creates: its
// Repository, a CronJob per session with every scheduler field, exactly
// one first BackupSession even across an operator restart and after that
// session is pruned, and the next schedule in the session's time zone.
func TestReadyConfiguration(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := validConfig(ns)
	env.Create(t, bc)
	conds := func() []metav1.Condition { return bc.Status.Conditions }
	env.WaitCondition(t, bc, conds, corev1alpha1.ConditionReady, metav1.ConditionTrue, corev1alpha1.ReasonAllReady)
	for _, c := range []string{corev1alpha1.ConditionTargetFound, corev1alpha1.ConditionStorageReady,
		corev1alpha1.ConditionAddonResolved, corev1alpha1.ConditionSecretsFound, corev1alpha1.ConditionScheduleReady,
		corev1alpha1.ConditionRepositoryReady} {
		if got := findCondition(bc.Status.Conditions, c); got == nil || got.Status != metav1.ConditionTrue {
			t.Errorf("condition %s = %+v, want True", c, got)
		}
	}
	if bc.Status.Phase != corev1alpha1.BackupConfigurationReady {
		t.Errorf("phase = %s, want Ready", bc.Status.Phase)
	}
	checkRepository(t, bc)
	checkCronJob(t, bc)
	checkNextSchedule(t, bc)
	waitSessions(t, ns, []string{backupconfiguration.FirstSessionName(bc.Name, sessionName)})

	env.RestartManager(t)
	bc.Spec.Sessions[0].Scheduler.Schedule = "*/10 * * * *"
	update(t, bc)
	env.WaitCondition(t, bc, conds, corev1alpha1.ConditionReady, metav1.ConditionTrue, corev1alpha1.ReasonAllReady)
	waitCronJob(t, bc, func(cj *batchv1.CronJob) bool { return cj.Spec.Schedule == "*/10 * * * *" })
	assertSessions(t, ns, []string{backupconfiguration.FirstSessionName(bc.Name, sessionName)})

	// A history limit prunes the first BackupSession: it is not made again.
	first := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: backupconfiguration.FirstSessionName(bc.Name, sessionName),
	}}
	if err := env.Client.Delete(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	env.RestartManager(t)
	bc.Spec.Sessions[0].Scheduler.FailedJobsHistoryLimit = ptr.To[int32](5)
	update(t, bc)
	env.WaitCondition(t, bc, conds, corev1alpha1.ConditionReady, metav1.ConditionTrue, corev1alpha1.ReasonAllReady)
	waitCronJob(t, bc, func(cj *batchv1.CronJob) bool { return *cj.Spec.FailedJobsHistoryLimit == 5 })
	assertSessions(t, ns, nil)
}

// TestPausedConfiguration checks that spec.paused suspends the CronJobs
// and holds the first BackupSession back until it is resumed.
func TestPausedConfiguration(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := validConfig(ns)
	bc.Spec.Paused = true
	env.Create(t, bc)
	conds := func() []metav1.Condition { return bc.Status.Conditions }
	env.WaitCondition(t, bc, conds, corev1alpha1.ConditionReady, metav1.ConditionFalse, corev1alpha1.ReasonPaused)
	if bc.Status.Phase != corev1alpha1.BackupConfigurationPaused {
		t.Errorf("phase = %s, want Paused", bc.Status.Phase)
	}
	if len(bc.Status.Sessions) != 1 || bc.Status.Sessions[0].NextSchedule != nil {
		t.Errorf("status.sessions = %+v, want one session without a next schedule", bc.Status.Sessions)
	}
	waitCronJob(t, bc, func(cj *batchv1.CronJob) bool { return *cj.Spec.Suspend })
	assertSessions(t, ns, nil)

	bc.Spec.Paused = false
	update(t, bc)
	env.WaitCondition(t, bc, conds, corev1alpha1.ConditionReady, metav1.ConditionTrue, corev1alpha1.ReasonAllReady)
	waitCronJob(t, bc, func(cj *batchv1.CronJob) bool { return !*cj.Spec.Suspend })
	waitSessions(t, ns, []string{backupconfiguration.FirstSessionName(bc.Name, sessionName)})
}

// TestRemovedSession checks that each session gets its CronJob and first
// BackupSession, and that removing a session removes its CronJob.
func TestRemovedSession(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := validConfig(ns)
	bc.Spec.Sessions = append(bc.Spec.Sessions, session("daily", "daily-repo"))
	env.Create(t, bc)
	env.WaitCondition(t, bc, func() []metav1.Condition { return bc.Status.Conditions },
		corev1alpha1.ConditionReady, metav1.ConditionTrue, corev1alpha1.ReasonAllReady)
	waitSessions(t, ns, []string{
		backupconfiguration.FirstSessionName(bc.Name, "daily"),
		backupconfiguration.FirstSessionName(bc.Name, sessionName),
	})
	bc.Spec.Sessions = bc.Spec.Sessions[:1]
	update(t, bc)
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var list batchv1.CronJobList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		return len(list.Items) == 1 && list.Items[0].Name == backupconfiguration.CronJobName(bc.Name, sessionName),
			"CronJobs: " + cronJobNames(list.Items)
	})
}

func checkRepository(t *testing.T, bc *corev1alpha1.BackupConfiguration) {
	t.Helper()
	var repo storagev1alpha1.Repository
	key := client.ObjectKey{Namespace: bc.Namespace, Name: repoName}
	if err := testenv.Default.Client.Get(context.Background(), key, &repo); err != nil {
		t.Fatalf("get Repository: %v", err)
	}
	want := storagev1alpha1.RepositorySpec{
		StorageRef:       storagev1alpha1.ObjectReference{Name: storageName},
		Path:             repoName,
		EncryptionSecret: storagev1alpha1.ObjectReference{Name: secretName},
		AppRef: &storagev1alpha1.TypedObjectReference{
			APIGroup: "apps", Kind: "StatefulSet", Name: targetName, Namespace: bc.Namespace,
		},
		DeletionPolicy: storagev1alpha1.RepositoryRetain,
	}
	if !equalJSON(t, repo.Spec, want) {
		t.Errorf("Repository spec = %+v, want %+v", repo.Spec, want)
	}
	if len(repo.OwnerReferences) != 0 || repo.Labels[corev1alpha1.LabelBackupConfiguration] != bc.Name {
		t.Errorf("Repository owners %+v, labels %v; want no owner and the configuration's label", repo.OwnerReferences, repo.Labels)
	}
}

func checkCronJob(t *testing.T, bc *corev1alpha1.BackupConfiguration) {
	t.Helper()
	cj := getCronJob(t, bc)
	s := cj.Spec
	if s.Schedule != "*/5 * * * *" || ptr.Deref(s.TimeZone, "") != "Europe/Paris" || *s.Suspend ||
		s.ConcurrencyPolicy != batchv1.ForbidConcurrent || *s.StartingDeadlineSeconds != 60 ||
		*s.SuccessfulJobsHistoryLimit != 2 || *s.FailedJobsHistoryLimit != 3 {
		t.Errorf("CronJob scheduling = %+v", s)
	}
	pod := s.JobTemplate.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("CronJob has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	wantArgs := []string{"trigger", "--namespace", bc.Namespace, "--backup-configuration", bc.Name, "--session", sessionName}
	if c.Image != testenv.Options.Image || !slices.Equal(c.Args, wantArgs) {
		t.Errorf("container runs %s %q, want %s %q", c.Image, c.Args, testenv.Options.Image, wantArgs)
	}
	if pod.ServiceAccountName != access.Trigger.Name || pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("pod serviceAccount %q restartPolicy %q", pod.ServiceAccountName, pod.RestartPolicy)
	}
	if !*pod.SecurityContext.RunAsNonRoot || !*c.SecurityContext.ReadOnlyRootFilesystem ||
		*c.SecurityContext.AllowPrivilegeEscalation || pod.SecurityContext.SeccompProfile == nil {
		t.Errorf("trigger pod is not restricted: pod %+v, container %+v", pod.SecurityContext, c.SecurityContext)
	}
	if cj.Labels[corev1alpha1.LabelBackupConfiguration] != bc.Name || cj.Labels[corev1alpha1.LabelSession] != sessionName {
		t.Errorf("CronJob labels = %v", cj.Labels)
	}
	if !metav1.IsControlledBy(cj, bc) {
		t.Errorf("CronJob owners = %+v, want the BackupConfiguration", cj.OwnerReferences)
	}
}

// checkNextSchedule checks that the next schedule is the next multiple of
// five minutes in Paris; Paris is a whole number of hours from UTC, so the
// minute is the same in UTC.
func checkNextSchedule(t *testing.T, bc *corev1alpha1.BackupConfiguration) {
	t.Helper()
	if len(bc.Status.Sessions) != 1 || bc.Status.Sessions[0].NextSchedule == nil {
		t.Fatalf("status.sessions = %+v, want one session with a next schedule", bc.Status.Sessions)
	}
	next := bc.Status.Sessions[0].NextSchedule.Time
	ago := time.Since(next)
	if next.Minute()%5 != 0 || next.Second() != 0 || ago > 0 && ago > time.Minute || -ago > 5*time.Minute {
		t.Errorf("next schedule %s is not the next */5 after now (%s)", next, time.Now())
	}
}

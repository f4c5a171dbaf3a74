package backupsession_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/operator/backupsession"
	"github.com/keepsake-dev/keepsake/operator/internal/access"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestBadInputs checks the phase and reason of sessions that cannot run.
func TestBadInputs(t *testing.T) {
	tests := map[string]struct {
		// config is the namespace's BackupConfiguration; none when nil.
		config func(ns string) *corev1alpha1.BackupConfiguration
		// session is the BackupSession checked; the configuration's first
		// one when nil.
		session func(ns string) *corev1alpha1.BackupSession
		// wantPhase, wantCondition and wantReason are the expected outcome.
		wantPhase     corev1alpha1.BackupSessionPhase
		wantCondition string
		wantReason    string
		// wantMessage is a part of the condition's message.
		wantMessage string
	}{
		"configuration not found": {
			session:       func(ns string) *corev1alpha1.BackupSession { return newSession(ns, "orphan", "missing") },
			wantPhase:     corev1alpha1.BackupSessionFailed,
			wantCondition: corev1alpha1.ConditionBackupSucceeded,
			wantReason:    corev1alpha1.ReasonConfigurationNotFound,
			wantMessage:   "missing",
		},
		"session not found": {
			config: func(ns string) *corev1alpha1.BackupConfiguration { return config(ns, addonName, nil) },
			session: func(ns string) *corev1alpha1.BackupSession {
				b := newSession(ns, "other", configName)
				b.Spec.Session = "nightly"
				return b
			},
			wantPhase:     corev1alpha1.BackupSessionFailed,
			wantCondition: corev1alpha1.ConditionBackupSucceeded,
			wantReason:    corev1alpha1.ReasonSessionNotFound,
			wantMessage:   "nightly",
		},
		"configuration not ready": {
			config:        func(ns string) *corev1alpha1.BackupConfiguration { return config(ns, noFunctionAddon, nil) },
			session:       func(ns string) *corev1alpha1.BackupSession { return newSession(ns, "early", configName) },
			wantPhase:     corev1alpha1.BackupSessionPending,
			wantCondition: corev1alpha1.ConditionBackupJobCreated,
			wantReason:    corev1alpha1.ReasonConfigurationNotReady,
			// The cause, from the configuration's Ready condition, and how
			// long the session waits.
			wantMessage: configName + " is not Ready (UnknownParameter: session " + sessionName,
		},
		"configuration not ready, how long": {
			config:        func(ns string) *corev1alpha1.BackupConfiguration { return config(ns, noFunctionAddon, nil) },
			session:       func(ns string) *corev1alpha1.BackupSession { return newSession(ns, "early", configName) },
			wantPhase:     corev1alpha1.BackupSessionPending,
			wantCondition: corev1alpha1.ConditionBackupJobCreated,
			wantReason:    corev1alpha1.ReasonConfigurationNotReady,
			wantMessage:   "waiting up to 30m0s for it", // the session's backupTimeout
		},
		"function variable without value": {
			config: func(ns string) *corev1alpha1.BackupConfiguration {
				return config(ns, addonName, func(s *corev1alpha1.Session) { s.Addon.Tasks[0].Params = nil })
			},
			wantPhase:     corev1alpha1.BackupSessionFailed,
			wantCondition: corev1alpha1.ConditionBackupSucceeded,
			wantReason:    corev1alpha1.ReasonJobCreationFailed,
			wantMessage:   "url",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := fixtures(t)
			if tc.config != nil {
				testenv.Default.Create(t, tc.config(ns))
			}
			bks := firstSession(ns)
			if tc.session != nil {
				bks = tc.session(ns)
				testenv.Default.Create(t, bks)
			}
			c := waitPhase(t, bks, tc.wantPhase, tc.wantCondition, tc.wantReason)
			// A waiting session's message follows its configuration's status.
			testenv.Eventually(t, func(ctx context.Context) (bool, string) {
				if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(bks), bks); err != nil {
					return false, err.Error()
				}
				if found := meta.FindStatusCondition(bks.Status.Conditions, tc.wantCondition); found != nil {
					c = *found
				}
				return strings.Contains(c.Message, tc.wantMessage), "message: " + c.Message
			})
			if !strings.Contains(c.Message, tc.wantMessage) || c.Status != metav1.ConditionFalse {
				t.Errorf("condition %s = %s %q, want False mentioning %q", c.Type, c.Status, c.Message, tc.wantMessage)
			}
			if tc.wantPhase == corev1alpha1.BackupSessionFailed && bks.Status.CompletionTime == nil {
				t.Error("a failed session has no completionTime")
			}
			if jobs := jobsOf(t, bks); len(jobs) != 0 {
				t.Errorf("got %d Jobs, want none", len(jobs))
			}
		})
	}
}

// TestBackupSucceedsOnce follows the first session of a valid
// configuration: its Snapshot and Job, an operator restart that must not
// start a second Job, and the Job's completion.
func TestBackupSucceedsOnce(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, config(ns, addonName, nil))
	bks := firstSession(ns)
	waitPhase(t, bks, corev1alpha1.BackupSessionRunning, corev1alpha1.ConditionBackupJobCreated, corev1alpha1.ReasonJobCreated)
	checkRunningStatus(t, bks)
	checkSnapshot(t, bks)
	job := getJob(t, bks)
	checkJob(t, bks, job)

	env.RestartManager(t)
	recordResult(t, bks, "")
	testenv.FinishJob(t, job, "")
	waitPhase(t, bks, corev1alpha1.BackupSessionSucceeded, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonBackupCompleted)
	if jobs := jobsOf(t, bks); len(jobs) != 1 {
		t.Errorf("got %d Jobs after a restart, want 1", len(jobs))
	}
	if bks.Status.CompletionTime == nil || bks.Status.Duration == "" {
		t.Errorf("completionTime %v, duration %q: want both set", bks.Status.CompletionTime, bks.Status.Duration)
	}
	if snap := getSnapshot(t, bks); snap.Status.Phase != storagev1alpha1.SnapshotSucceeded ||
		snap.Status.Components[taskName].ResticSnapshotID != "0123abcd" {
		t.Errorf("Snapshot status = %s, want Succeeded with the runtime's result", testenv.JSON(snap.Status))
	}
	if got := bks.Status.Snapshots[0].Phase; got != storagev1alpha1.SnapshotSucceeded {
		t.Errorf("status.snapshots[0].phase = %s, want Succeeded", got)
	}
}

func checkRunningStatus(t *testing.T, bks *corev1alpha1.BackupSession) {
	t.Helper()
	st := bks.Status
	want := []corev1alpha1.SnapshotReference{{Name: backupsession.SnapshotName(bks.Name, repoName), Repository: repoName}}
	if st.TotalSnapshots != 1 || len(st.Snapshots) != 1 || st.Snapshots[0].Name != want[0].Name || st.Snapshots[0].Repository != repoName {
		t.Errorf("snapshots = %d %+v, want 1 %+v", st.TotalSnapshots, st.Snapshots, want)
	}
	if st.Job != backupsession.JobName(bks.Name) || st.StartTime == nil {
		t.Errorf("job %q startTime %v, want %q and a time", st.Job, st.StartTime, backupsession.JobName(bks.Name))
	}
	for _, c := range []string{corev1alpha1.ConditionSnapshotsEnsured, corev1alpha1.ConditionBackupJobCreated} {
		if cond := findCondition(st.Conditions, c); cond == nil || cond.Status != metav1.ConditionTrue {
			t.Errorf("condition %s = %+v, want True", c, cond)
		}
	}
}

func checkSnapshot(t *testing.T, bks *corev1alpha1.BackupSession) {
	t.Helper()
	snap := getSnapshot(t, bks)
	want := storagev1alpha1.SnapshotSpec{
		Repository: repoName, BackupSession: bks.Name, Session: sessionName,
		AppRef: &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: targetName, Namespace: bks.Namespace},
		// The task that took it, for verification to find its driver.
		Addon: &storagev1alpha1.AddonTaskReference{Name: addonName, Task: taskName},
		Type:  storagev1alpha1.SnapshotFull, DeletionPolicy: storagev1alpha1.SnapshotWipeOut,
	}
	if testenv.JSON(snap.Spec) != testenv.JSON(want) {
		t.Errorf("Snapshot spec = %s, want %s", testenv.JSON(snap.Spec), testenv.JSON(want))
	}
	var repo storagev1alpha1.Repository
	if err := testenv.Default.Client.Get(context.Background(), client.ObjectKey{Namespace: bks.Namespace, Name: repoName}, &repo); err != nil {
		t.Fatal(err)
	}
	// Snapshots belong to their Repository, so that pruning sessions keeps
	// them, and carry the finalizer that forgets their data on deletion.
	if !metav1.IsControlledBy(snap, &repo) {
		t.Errorf("Snapshot is not controlled by its Repository: %+v", snap.OwnerReferences)
	}
	if !slices.Contains(snap.Finalizers, storagev1alpha1.FinalizerForget) {
		t.Errorf("Snapshot finalizers = %v, want %s", snap.Finalizers, storagev1alpha1.FinalizerForget)
	}
	checkLabels(t, bks, snap)
}

func checkOwned(t *testing.T, bks *corev1alpha1.BackupSession, o client.Object) {
	t.Helper()
	if !metav1.IsControlledBy(o, bks) {
		t.Errorf("%T %s is not controlled by the BackupSession: %+v", o, o.GetName(), o.GetOwnerReferences())
	}
	checkLabels(t, bks, o)
}

func checkLabels(t *testing.T, bks *corev1alpha1.BackupSession, o client.Object) {
	t.Helper()
	l := o.GetLabels()
	if l[backupsession.LabelBackupSession] != bks.Name || l[corev1alpha1.LabelBackupConfiguration] != configName ||
		l[corev1alpha1.LabelSession] != sessionName {
		t.Errorf("%T %s labels = %v", o, o.GetName(), l)
	}
}

func checkJob(t *testing.T, bks *corev1alpha1.BackupSession, job *batchv1.Job) {
	t.Helper()
	checkOwned(t, bks, job)
	pod := job.Spec.Template.Spec
	if pod.ServiceAccountName != access.Backup.Name {
		t.Errorf("serviceAccountName = %q, want %q", pod.ServiceAccountName, access.Backup.Name)
	}
	if d := job.Spec.ActiveDeadlineSeconds; d == nil || *d != 1800 {
		t.Errorf("activeDeadlineSeconds = %v, want 1800 (backupTimeout 30m)", d)
	}
	if got := pod.InitContainers[0].Image; got != testenv.Options.Image {
		t.Errorf("init image = %q, want %q", got, testenv.Options.Image)
	}
	task := pod.Containers[0]
	wantArgs := []string{"run", "backup", "--driver=/drivers/db", "--param=url=http://db:8086", "--param=databases=all"}
	if task.Image != "db-tools:1" || !slices.Equal(task.Args, wantArgs) {
		t.Errorf("task image %q args %q, want db-tools:1 %q", task.Image, task.Args, wantArgs)
	}
	checkEnv(t, bks, task.Env)
	checkVolumes(t, pod)
	checkSecurity(t, pod)
	checkSettings(t, bks)
}

func checkEnv(t *testing.T, bks *corev1alpha1.BackupSession, env []corev1.EnvVar) {
	t.Helper()
	var repo storagev1alpha1.Repository
	if err := testenv.Default.Client.Get(context.Background(), client.ObjectKey{Namespace: bks.Namespace, Name: repoName}, &repo); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"KEEPSAKE_COMPONENT":        taskName,
		"KEEPSAKE_SESSION":          sessionName,
		"KEEPSAKE_TARGET_GROUP":     "apps",
		"KEEPSAKE_TARGET_KIND":      "StatefulSet",
		"KEEPSAKE_TARGET_NAME":      targetName,
		"KEEPSAKE_TARGET_NAMESPACE": bks.Namespace,
		"KEEPSAKE_REPORT_TO":        "kubernetes",
		"KEEPSAKE_NAMESPACE":        bks.Namespace,
		"KEEPSAKE_BACKUP_SESSION":   bks.Name,
		"KEEPSAKE_SECRET":           "authSecret=/keepsake/secrets/" + authSecretName,
		"KEEPSAKE_REPOSITORY": "name=" + repoName + ",storage=/keepsake/settings/" + repoName + ".json,namespace=" +
			bks.Namespace + ",directory=" + repo.Spec.Path + ",password-file=/keepsake/secrets/" + secretName + "/RESTIC_PASSWORD",
	}
	got := map[string]string{}
	for _, e := range env {
		if e.ValueFrom != nil {
			t.Errorf("env %s comes from %+v: secrets must be files", e.Name, e.ValueFrom)
		}
		got[e.Name] = e.Value
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("env %s = %q, want %q", k, got[k], v)
		}
	}
}

func checkVolumes(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	var secretVol string
	for _, v := range pod.Volumes {
		if s := v.Secret; s != nil && s.SecretName == secretName {
			secretVol = v.Name
			if s.DefaultMode == nil || *s.DefaultMode != 0o400 {
				t.Errorf("secret volume mode = %v, want 0400", s.DefaultMode)
			}
		}
	}
	if secretVol == "" {
		t.Fatalf("no volume of Secret %s in %+v", secretName, pod.Volumes)
	}
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.Name == secretVol && m.MountPath == "/keepsake/secrets/"+secretName && m.ReadOnly {
			return
		}
	}
	t.Errorf("Secret %s is not mounted read-only at /keepsake/secrets/%s: %+v", secretName, secretName, pod.Containers[0].VolumeMounts)
}

func checkSecurity(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want restricted", psc)
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("container %s securityContext = %+v, want restricted", c.Name, sc)
		}
	}
}

func checkSettings(t *testing.T, bks *corev1alpha1.BackupSession) {
	t.Helper()
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: bks.Namespace, Name: backupsession.JobName(bks.Name) + "-settings"}
	if err := testenv.Default.Client.Get(context.Background(), key, &cm); err != nil {
		t.Fatalf("get settings ConfigMap: %v", err)
	}
	var settings struct {
		Provider string
		Local    struct{ Path string }
	}
	if err := json.Unmarshal([]byte(cm.Data[repoName+".json"]), &settings); err != nil {
		t.Fatalf("settings %q: %v", cm.Data[repoName+".json"], err)
	}
	if settings.Provider != "local" || settings.Local.Path != "/keepsake/storage" {
		t.Errorf("settings = %+v, want local at /keepsake/storage", settings)
	}
}

// TestBackupTimeout checks that a Job past its deadline fails the session
// with BackupTimeout and never leaves its Snapshot Succeeded.
func TestBackupTimeout(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, config(ns, addonName, nil))
	bks := firstSession(ns)
	testenv.FinishJob(t, getJob(t, bks), "DeadlineExceeded")
	c := waitPhase(t, bks, corev1alpha1.BackupSessionFailed, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonBackupTimeout)
	if !strings.Contains(c.Message, "30m") {
		t.Errorf("message %q does not name the timeout", c.Message)
	}
	if snap := getSnapshot(t, bks); snap.Status.Phase != storagev1alpha1.SnapshotFailed {
		t.Errorf("Snapshot phase = %s, want Failed", snap.Status.Phase)
	}
}

// TestBackupTimeoutWhileStorageUnreachable: a Job that reaches its
// deadline while the runtime says restic retries the storage fails the
// session with StorageUnreachable and restic's message, not a bare
// BackupTimeout; the failed Snapshot no longer says restic retries.
func TestBackupTimeoutWhileStorageUnreachable(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, config(ns, addonName, nil))
	bks := firstSession(ns)
	job := getJob(t, bks)
	const restic = "Save(<data/2a2d68ddb7>) returned error, retrying after 1.1s: dial tcp 10.96.0.9:9000: connect: connection refused"
	testenv.Eventually(t, func(ctx context.Context) (bool, string) { // as the runtime reports it
		snap := getSnapshot(t, bks)
		meta.SetStatusCondition(&snap.Status.Conditions, metav1.Condition{
			Type: storagev1alpha1.ConditionStorageUnreachable, Status: metav1.ConditionTrue,
			Reason: storagev1alpha1.ReasonStorageRetrying, Message: "restic has been retrying requests to the storage of repository " + repoName + " since 2026-01-02T03:04:05Z: " + restic,
		})
		if err := env.Client.Status().Update(ctx, snap); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	testenv.FinishJob(t, job, "DeadlineExceeded")
	c := waitPhase(t, bks, corev1alpha1.BackupSessionFailed, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonStorageUnreachable)
	for _, want := range []string{"backupTimeout (30m", "repository " + repoName, "connection refused"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message %q, want it to say %q", c.Message, want)
		}
	}
	snap := getSnapshot(t, bks)
	if snap.Status.Phase != storagev1alpha1.SnapshotFailed || meta.FindStatusCondition(snap.Status.Conditions, storagev1alpha1.ConditionStorageUnreachable) != nil {
		t.Errorf("Snapshot phase %s, conditions %+v: want Failed without StorageUnreachable", snap.Status.Phase, snap.Status.Conditions)
	}
}

// TestForbidSkips checks that a run due while another one runs is Skipped
// under concurrencyPolicy Forbid.
func TestForbidSkips(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, config(ns, addonName, nil))
	first := firstSession(ns)
	waitPhase(t, first, corev1alpha1.BackupSessionRunning, corev1alpha1.ConditionBackupJobCreated, corev1alpha1.ReasonJobCreated)
	second := newSession(ns, "second", configName)
	env.Create(t, second)
	c := waitPhase(t, second, corev1alpha1.BackupSessionSkipped, corev1alpha1.ConditionSessionSkipped, corev1alpha1.ReasonPreviousSessionRunning)
	if !strings.Contains(c.Message, first.Name) {
		t.Errorf("message %q does not name the running session", c.Message)
	}
	if jobs := jobsOf(t, second); len(jobs) != 0 {
		t.Errorf("a skipped session got %d Jobs", len(jobs))
	}
}

// TestHistoryLimit checks that finished sessions beyond sessionHistoryLimit
// are deleted, oldest first, while their Snapshots stay.
func TestHistoryLimit(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, config(ns, addonName, func(s *corev1alpha1.Session) { s.SessionHistoryLimit = 2 }))
	runs := []*corev1alpha1.BackupSession{firstSession(ns), newSession(ns, "run-2", configName), newSession(ns, "run-3", configName)}
	for i, bks := range runs {
		if i > 0 {
			time.Sleep(time.Second) // distinct creation times
			env.Create(t, bks)
		}
		recordResult(t, bks, "")
		testenv.FinishJob(t, getJob(t, bks), "")
		waitPhase(t, bks, corev1alpha1.BackupSessionSucceeded, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonBackupCompleted)
	}
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var list corev1alpha1.BackupSessionList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var kept []string
		for _, b := range list.Items {
			if b.DeletionTimestamp.IsZero() {
				kept = append(kept, b.Name)
			}
		}
		slices.Sort(kept)
		return slices.Equal(kept, []string{"run-2", "run-3"}), "BackupSessions not deleted: " + strings.Join(kept, ", ")
	})
	// The pruned session's Snapshots hold backups: it is deleted orphaning
	// them (envtest has no garbage collector, so the orphan finalizer
	// stays and shows the policy).
	err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(runs[0]), runs[0])
	if err == nil && !slices.Contains(runs[0].Finalizers, metav1.FinalizerOrphanDependents) {
		t.Errorf("pruned session finalizers = %q, want %q", runs[0].Finalizers, metav1.FinalizerOrphanDependents)
	}
}

func findCondition(conds []metav1.Condition, condType string) *metav1.Condition {
	return meta.FindStatusCondition(conds, condType)
}

// TestCompletedJobWithoutResult checks that a Job that completed without
// the runtime recording a restic snapshot fails the session: a backup
// nobody can find is not a success.
func TestCompletedJobWithoutResult(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, config(ns, addonName, nil))
	bks := firstSession(ns)
	testenv.FinishJob(t, getJob(t, bks), "")
	c := waitPhase(t, bks, corev1alpha1.BackupSessionFailed, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonResultMissing)
	if !strings.Contains(c.Message, repoName) {
		t.Errorf("message %q does not name the repository", c.Message)
	}
	if snap := getSnapshot(t, bks); snap.Status.Phase != storagev1alpha1.SnapshotFailed {
		t.Errorf("Snapshot phase = %s, want Failed", snap.Status.Phase)
	}
}

// TestFailureSaysWhy checks that a failed Job fails the session with the
// error the runtime recorded, not the Job controller's "backoff limit".
func TestFailureSaysWhy(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, config(ns, addonName, nil))
	bks := firstSession(ns)
	recordResult(t, bks, "dump: authorization failed")
	testenv.FinishJob(t, getJob(t, bks), "BackoffLimitExceeded")
	c := waitPhase(t, bks, corev1alpha1.BackupSessionFailed, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonBackupFailed)
	if !strings.Contains(c.Message, "authorization failed") || !strings.Contains(c.Message, repoName) {
		t.Errorf("message %q does not carry the runtime's error and repository", c.Message)
	}
}

// TestJobAccess checks the ServiceAccount the Jobs run as and its Role.
func TestJobAccess(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, config(ns, addonName, nil))
	bks := firstSession(ns)
	job := getJob(t, bks)
	if got := job.Spec.Template.Spec.ServiceAccountName; got != access.Backup.Name {
		t.Fatalf("Job runs as %q, want %q", got, access.Backup.Name)
	}
	ctx := context.Background()
	key := client.ObjectKey{Namespace: ns, Name: access.Backup.Name}
	var sa corev1.ServiceAccount
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	for _, o := range []client.Object{&sa, &role, &binding} {
		if err := env.Client.Get(ctx, key, o); err != nil {
			t.Fatalf("%T: %v", o, err)
		}
	}
	if testenv.JSON(role.Rules) != testenv.JSON(access.Backup.Rules) {
		t.Errorf("Role rules = %s", testenv.JSON(role.Rules))
	}
	if binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 || binding.Subjects[0].Name != sa.Name {
		t.Errorf("RoleBinding = %s", testenv.JSON(binding))
	}
	for _, rule := range role.Rules {
		if slices.Contains(rule.Resources, "secrets") || slices.Contains(rule.Verbs, "*") {
			t.Errorf("Role grants %v on %v", rule.Verbs, rule.Resources)
		}
	}
	// The Job's identity can record its result but not, say, delete the
	// BackupSession or create Jobs.
	review := func(verb, group, resource, sub string) bool {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "system:serviceaccount:" + ns + ":" + sa.Name,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: verb, Group: group, Resource: resource, Subresource: sub,
			},
		}}
		if err := env.Client.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	testenv.Eventually(t, func(context.Context) (bool, string) {
		ok := review("patch", "storage.keepsake.dev", "snapshots", "status")
		return ok, "the Job cannot patch Snapshot status"
	})
	if review("delete", "core.keepsake.dev", "backupsessions", "") || review("create", "batch", "jobs", "") ||
		review("get", "", "secrets", "") || review("delete", "storage.keepsake.dev", "snapshots", "") {
		t.Error("the Job's ServiceAccount may do more than it needs")
	}
}

// TestRetention checks that after a success each repository with a
// RetentionPolicy gets one retention Job carrying the policy, that
// RetentionApplied follows it, and that Failed Snapshots beyond
// failedSnapshots.last are deleted.
func TestRetention(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, &storagev1alpha1.RetentionPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "keep-two"},
		Spec: storagev1alpha1.RetentionPolicySpec{
			MaxRetentionPeriod:  "30d",
			SuccessfulSnapshots: &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](2)},
			FailedSnapshots:     &storagev1alpha1.FailedSnapshotsKeepPolicy{Last: ptr.To[int32](1)},
		},
	})
	bc := config(ns, addonName, nil)
	bc.Spec.Backends[0].RetentionPolicy = &storagev1alpha1.ObjectReference{Name: "keep-two"}
	env.Create(t, bc)
	bks := firstSession(ns)
	job := getJob(t, bks)
	for i := range 3 {
		failed := &storagev1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("old-failed-%d", i)},
			Spec:       storagev1alpha1.SnapshotSpec{Repository: repoName},
		}
		env.Create(t, failed)
		// A merge patch: the Snapshot reconciler may add its finalizer
		// meanwhile.
		before := failed.DeepCopy()
		failed.Status.Phase = storagev1alpha1.SnapshotFailed
		if err := env.Client.Status().Patch(context.Background(), failed, client.MergeFrom(before)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // distinct creation times
	}
	recordResult(t, bks, "")
	testenv.FinishJob(t, job, "")
	waitPhase(t, bks, corev1alpha1.BackupSessionSucceeded, corev1alpha1.ConditionRetentionApplied, corev1alpha1.ReasonRetentionRunning)

	var retention batchv1.Job
	key := client.ObjectKey{Namespace: ns, Name: backupsession.RetentionJobName(bks.Name, repoName)}
	if err := env.Client.Get(context.Background(), key, &retention); err != nil {
		t.Fatal(err)
	}
	env0 := map[string]string{}
	for _, e := range retention.Spec.Template.Spec.Containers[0].Env {
		env0[e.Name] = e.Value
	}
	if env0["KEEPSAKE_KEEP_LAST"] != "2" || env0["KEEPSAKE_KEEP_WITHIN"] != "30d" || env0["KEEPSAKE_NAMESPACE"] != ns ||
		!strings.HasPrefix(env0["KEEPSAKE_REPOSITORY"], "name="+repoName+",") || env0["KEEPSAKE_KEEP_DAILY"] != "" {
		t.Errorf("retention Job env = %v", env0)
	}
	if got := retention.Spec.Template.Spec.Containers[0].Command; !slices.Equal(got, backupsession.RetentionCommand) {
		t.Errorf("retention Job runs %v", got)
	}
	if got := retention.Spec.Template.Spec.ServiceAccountName; got != access.Retention.Name {
		t.Errorf("retention Job runs as %q, want %q", got, access.Retention.Name)
	}
	// A hung storage must not hold retention forever: it gets the
	// session's backupTimeout (30m) as its deadline.
	if d := retention.Spec.ActiveDeadlineSeconds; d == nil || *d != 1800 {
		t.Errorf("retention Job activeDeadlineSeconds = %v, want 1800", d)
	}
	testenv.FinishJob(t, &retention, "")
	waitPhase(t, bks, corev1alpha1.BackupSessionSucceeded, corev1alpha1.ConditionRetentionApplied, corev1alpha1.ReasonRetentionSucceeded)

	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var list storagev1alpha1.SnapshotList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var names []string
		for _, s := range list.Items {
			if s.DeletionTimestamp.IsZero() {
				names = append(names, s.Name)
			}
		}
		sort.Strings(names)
		want := []string{bks.Name + "-" + repoName, "old-failed-2"}
		return slices.Equal(names, want), fmt.Sprintf("Snapshots %v, want %v", names, want)
	})
}

// TestPausedSkips checks that a session of a paused configuration is
// Skipped with a reason instead of waiting for an unpause.
func TestPausedSkips(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := config(ns, addonName, nil)
	bc.Spec.Paused = true
	env.Create(t, bc)
	bks := newSession(ns, "by-hand", configName)
	env.Create(t, bks)
	c := waitPhase(t, bks, corev1alpha1.BackupSessionSkipped, corev1alpha1.ConditionSessionSkipped, corev1alpha1.ReasonConfigurationPaused)
	if !strings.Contains(c.Message, configName) {
		t.Errorf("message %q does not name the configuration", c.Message)
	}
	if jobs := jobsOf(t, bks); len(jobs) != 0 {
		t.Errorf("a skipped session got %d Jobs", len(jobs))
	}
}

// TestRetry checks that a failed run is retried retryConfig.maxRetry times,
// each retry a new BackupSession counting down spec.retryLeft, and no more.
func TestRetry(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	env.Create(t, config(ns, addonName, func(s *corev1alpha1.Session) {
		s.RetryConfig = &corev1alpha1.RetryConfig{MaxRetry: 2, Delay: metav1.Duration{Duration: time.Second}}
	}))
	first := firstSession(ns)
	run := first
	for n := int32(1); n <= 2; n++ {
		recordResult(t, run, "dump: connection refused")
		testenv.FinishJob(t, getJob(t, run), "BackoffLimitExceeded")
		waitPhase(t, run, corev1alpha1.BackupSessionFailed, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonBackupFailed)
		retry := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: backupsession.RetryName(first.Name, n)}}
		testenv.WaitExists(t, retry)
		if retry.Spec.RetryLeft != 2-n || retry.Labels[backupsession.LabelRetryOf] != first.Name ||
			retry.Spec.BackupConfiguration != configName || retry.Spec.Session != sessionName {
			t.Fatalf("retry %d = %s", n, testenv.JSON(retry))
		}
		run = retry
	}
	recordResult(t, run, "dump: connection refused")
	testenv.FinishJob(t, getJob(t, run), "BackoffLimitExceeded")
	waitPhase(t, run, corev1alpha1.BackupSessionFailed, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonBackupFailed)
	time.Sleep(3 * time.Second) // past the delay: a third retry would exist by now
	var list corev1alpha1.BackupSessionList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 3 {
		t.Errorf("%d BackupSessions after two retries, want 3", len(list.Items))
	}
}

// TestRetryNameFitsALabel checks that retries of a long-named session get
// names that fit the 63-character label carrying them, and stay distinct.
func TestRetryNameFitsALabel(t *testing.T) {
	first := backupconfiguration.FirstSessionName(strings.Repeat("c", 60), "nightly")
	one, two := backupsession.RetryName(first, 1), backupsession.RetryName(first, 2)
	if len(one) > 63 || len(two) > 63 || one == two {
		t.Errorf("retry names %q and %q", one, two)
	}
	if got := backupsession.RetryName("db-first", 1); got != "db-first-retry-1" {
		t.Errorf("short name retried as %q", got)
	}
}

package restoresession_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/access"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/operator/restoresession"
)

// TestBadInputs checks the phase and reason of RestoreSessions that cannot
// restore, and that none of them gets a Job.
func TestBadInputs(t *testing.T) {
	one := map[string]string{componentName: resticID}
	tests := map[string]struct {
		// snapshots are created, with their status, before the restore;
		// when nil, one Succeeded Snapshot "good" with one component.
		snapshots func(ns string) []*storagev1alpha1.Snapshot
		// snapshot is dataSource.snapshot; mutate changes the spec.
		snapshot string
		mutate   func(*corev1alpha1.RestoreSessionSpec)
		// wantPhase and wantReason are the expected phase and the reason
		// of the RestoreSucceeded condition.
		wantPhase  corev1alpha1.RestoreSessionPhase
		wantReason string
		// wantMessage is a part of the condition's message; %s, if any, is
		// the namespace.
		wantMessage string
	}{
		"target not found": {
			mutate:      func(s *corev1alpha1.RestoreSessionSpec) { s.Target.Name = "no-such-db" },
			wantPhase:   corev1alpha1.RestoreInvalid,
			wantReason:  corev1alpha1.ReasonTargetNotFound,
			wantMessage: "StatefulSet %s/no-such-db not found",
		},
		"target of an unknown kind": {
			mutate: func(s *corev1alpha1.RestoreSessionSpec) {
				s.Target.APIGroup, s.Target.Kind = "hyperbytedb.example.com", "HyperbytedbCluster"
			},
			wantPhase:   corev1alpha1.RestoreInvalid,
			wantReason:  corev1alpha1.ReasonTargetNotFound,
			wantMessage: "no kind HyperbytedbCluster",
		},
		"snapshot not found before the timeout": {
			snapshot: "missing",
			mutate: func(s *corev1alpha1.RestoreSessionSpec) {
				s.RestoreTimeout = &metav1.Duration{Duration: 2 * time.Second}
			},
			wantPhase:   corev1alpha1.RestoreFailed,
			wantReason:  corev1alpha1.ReasonSnapshotNotFound,
			wantMessage: "snapshot missing not found after waiting 2s",
		},
		"no succeeded snapshot for latest before the timeout": {
			snapshots: func(ns string) []*storagev1alpha1.Snapshot {
				return []*storagev1alpha1.Snapshot{snapshotOf(ns, "failed", storagev1alpha1.SnapshotFailed, time.Now(), one)}
			},
			snapshot: corev1alpha1.SnapshotLatest,
			mutate: func(s *corev1alpha1.RestoreSessionSpec) {
				s.RestoreTimeout = &metav1.Duration{Duration: 2 * time.Second}
			},
			wantPhase:   corev1alpha1.RestoreFailed,
			wantReason:  corev1alpha1.ReasonSnapshotNotFound,
			wantMessage: "repository " + repoName + " has no Succeeded Snapshot",
		},
		"snapshot failed": {
			snapshots: func(ns string) []*storagev1alpha1.Snapshot {
				return []*storagev1alpha1.Snapshot{snapshotOf(ns, "failed", storagev1alpha1.SnapshotFailed, time.Now(), one)}
			},
			snapshot:    "failed",
			wantPhase:   corev1alpha1.RestoreFailed,
			wantReason:  corev1alpha1.ReasonSnapshotNotReady,
			wantMessage: "snapshot failed cannot be restored",
		},
		"component without restic snapshot": {
			snapshots: func(ns string) []*storagev1alpha1.Snapshot {
				return []*storagev1alpha1.Snapshot{snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: ""})}
			},
			snapshot:    "snap",
			wantPhase:   corev1alpha1.RestoreFailed,
			wantReason:  corev1alpha1.ReasonSnapshotNotReady,
			wantMessage: "no resticSnapshotID",
		},
		"component not in snapshot": {
			snapshots: func(ns string) []*storagev1alpha1.Snapshot {
				return []*storagev1alpha1.Snapshot{snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(), one)}
			},
			snapshot:    "snap",
			mutate:      func(s *corev1alpha1.RestoreSessionSpec) { s.DataSource.Components = []string{"metrics"} },
			wantPhase:   corev1alpha1.RestoreInvalid,
			wantReason:  corev1alpha1.ReasonComponentNotFound,
			wantMessage: "snapshot snap has no component metrics; it has: db",
		},
		"two components": {
			snapshots: func(ns string) []*storagev1alpha1.Snapshot {
				return []*storagev1alpha1.Snapshot{snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(),
					map[string]string{componentName: resticID, "metrics": resticID})}
			},
			snapshot:    "snap",
			wantPhase:   corev1alpha1.RestoreInvalid,
			wantReason:  corev1alpha1.ReasonComponentNotFound,
			wantMessage: "has db, metrics: name one in dataSource.components",
		},
		"repository in another namespace": {
			snapshot:    "snap",
			mutate:      func(s *corev1alpha1.RestoreSessionSpec) { s.DataSource.Repository.Namespace = "elsewhere" },
			wantPhase:   corev1alpha1.RestoreInvalid,
			wantReason:  corev1alpha1.ReasonRepositoryNotFound,
			wantMessage: "repository elsewhere/" + repoName + " is in another namespace",
		},
		"repository not found": {
			snapshot:    "snap",
			mutate:      func(s *corev1alpha1.RestoreSessionSpec) { s.DataSource.Repository.Name = "nope" },
			wantPhase:   corev1alpha1.RestoreInvalid,
			wantReason:  corev1alpha1.ReasonRepositoryNotFound,
			wantMessage: "repository nope not found",
		},
		"addon not found": {
			mutate:      func(s *corev1alpha1.RestoreSessionSpec) { s.Addon.Name = "rs-test-nope" },
			wantPhase:   corev1alpha1.RestoreInvalid,
			wantReason:  corev1alpha1.ReasonAddonNotFound,
			wantMessage: "Addon rs-test-nope not found",
		},
		"task not found": {
			mutate:      func(s *corev1alpha1.RestoreSessionSpec) { s.Addon.Tasks[0].Name = "physical-restore" },
			wantPhase:   corev1alpha1.RestoreInvalid,
			wantReason:  corev1alpha1.ReasonTaskNotFound,
			wantMessage: "has no restore task physical-restore",
		},
		"function not found": {
			mutate: func(s *corev1alpha1.RestoreSessionSpec) {
				s.Addon.Tasks[0] = corev1alpha1.TaskReference{Name: noFunction}
			},
			wantPhase:   corev1alpha1.RestoreInvalid,
			wantReason:  corev1alpha1.ReasonFunctionNotFound,
			wantMessage: "Function rs-test-missing",
		},
		"required parameter missing": {
			mutate:      func(s *corev1alpha1.RestoreSessionSpec) { delete(s.Addon.Tasks[0].Params, "url") },
			wantPhase:   corev1alpha1.RestoreInvalid,
			wantReason:  corev1alpha1.ReasonMissingRequiredParameter,
			wantMessage: "needs parameter url",
		},
		"unknown parameter": {
			mutate:      func(s *corev1alpha1.RestoreSessionSpec) { s.Addon.Tasks[0].Params["uri"] = "http://db" },
			wantPhase:   corev1alpha1.RestoreInvalid,
			wantReason:  corev1alpha1.ReasonUnknownParameter,
			wantMessage: "has no parameter uri; its parameters are: url, databases, auth",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := fixtures(t)
			snapshot := "good"
			snaps := []*storagev1alpha1.Snapshot{snapshotOf(ns, snapshot, storagev1alpha1.SnapshotSucceeded, time.Now(), one)}
			if tc.snapshots != nil {
				snaps = tc.snapshots(ns)
			}
			for _, s := range snaps {
				createSnapshot(t, s)
			}
			if tc.snapshot != "" {
				snapshot = tc.snapshot
			}
			rs := restore(ns, "bad", snapshot, tc.mutate)
			testenv.Default.Create(t, rs)
			c := waitPhase(t, rs, tc.wantPhase, corev1alpha1.ConditionRestoreSucceeded, tc.wantReason)
			want := tc.wantMessage
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, ns)
			}
			if !strings.Contains(c.Message, want) || c.Status != metav1.ConditionFalse {
				t.Errorf("condition %s = %s %q, want False mentioning %q", c.Type, c.Status, c.Message, want)
			}
			if jobs := jobsOf(t, rs); len(jobs) != 0 {
				t.Errorf("got %d Jobs, want none", len(jobs))
			}
		})
	}
}

// TestRestoreSucceedsOnce restores the latest Succeeded Snapshot: its Job,
// an operator restart that must not start a second Job, and the Job's
// completion.
func TestRestoreSucceedsOnce(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	now := time.Now()
	createSnapshot(t, snapshotOf(ns, "old", storagev1alpha1.SnapshotSucceeded, now.Add(-2*time.Hour), map[string]string{componentName: "0ld"}))
	createSnapshot(t, snapshotOf(ns, "newer", storagev1alpha1.SnapshotSucceeded, now.Add(-time.Hour), map[string]string{componentName: resticID}))
	createSnapshot(t, snapshotOf(ns, "newest", storagev1alpha1.SnapshotFailed, now, map[string]string{componentName: "fa11ed"}))
	rs := restore(ns, "restore-db", corev1alpha1.SnapshotLatest, nil)
	env.Create(t, rs)
	waitPhase(t, rs, corev1alpha1.RestoreRunning, corev1alpha1.ConditionRestoreJobCreated, corev1alpha1.ReasonJobCreated)
	checkRunningStatus(t, rs, "newer")
	job := getJob(t, rs)
	checkJob(t, rs, job)
	checkAccess(t, ns)

	env.RestartManager(t)
	reportComponent(t, rs, componentName, corev1alpha1.RestoreComponentStatus{
		Phase: storagev1alpha1.ComponentSucceeded,
		Restored: &corev1alpha1.RestoredData{ObjectKind: "databases", ObjectCount: 2, Objects: []string{"events", "metrics"},
			Items: []corev1alpha1.RestoredItems{{Unit: "points", Count: 1200}}},
	})
	testenv.FinishJob(t, job, "")
	c := waitPhase(t, rs, corev1alpha1.RestoreSucceeded, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonRestoreCompleted)
	if c.Status != metav1.ConditionTrue || !strings.HasSuffix(c.Message, ": 2 databases, 1200 points") {
		t.Errorf("condition RestoreSucceeded = %s %q, want True ending with what was restored", c.Status, c.Message)
	}
	if rs.Status.Restored != "2 databases, 1200 points" {
		t.Errorf("restored = %q, want the driver's databases and points", rs.Status.Restored)
	}
	if jobs := jobsOf(t, rs); len(jobs) != 1 {
		t.Errorf("got %d Jobs after a restart, want 1", len(jobs))
	}
	if rs.Status.Duration != "1m0s" {
		t.Errorf("duration = %q, want 1m0s (the Job ran a minute)", rs.Status.Duration)
	}
	waitEvent(t, rs, corev1.EventTypeNormal, corev1alpha1.ReasonRestoreCompleted)
	if got := rs.Status.Components[componentName].Phase; got != storagev1alpha1.ComponentSucceeded {
		t.Errorf("component %s phase = %s, want Succeeded", componentName, got)
	}
}

func checkRunningStatus(t *testing.T, rs *corev1alpha1.RestoreSession, snapshot string) {
	t.Helper()
	st := rs.Status
	if st.Snapshot != snapshot || st.Job != restoresession.JobName(rs.Name) || st.TotalComponents != 1 {
		t.Errorf("snapshot %q job %q totalComponents %d, want %q %q 1", st.Snapshot, st.Job, st.TotalComponents,
			snapshot, restoresession.JobName(rs.Name))
	}
	if got := st.Components[componentName].Phase; got != storagev1alpha1.ComponentPending {
		t.Errorf("components = %+v, want %s Pending", st.Components, componentName)
	}
	c := meta.FindStatusCondition(st.Conditions, corev1alpha1.ConditionSnapshotResolved)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != corev1alpha1.ReasonSnapshotResolved {
		t.Errorf("condition SnapshotResolved = %+v, want True", c)
	}
}

func checkJob(t *testing.T, rs *corev1alpha1.RestoreSession, job *batchv1.Job) {
	t.Helper()
	if !metav1.IsControlledBy(job, rs) || job.Labels[corev1alpha1.LabelRestoreSession] != rs.Name {
		t.Errorf("Job owners %+v labels %v: want controlled by and labelled with the RestoreSession", job.OwnerReferences, job.Labels)
	}
	pod := job.Spec.Template.Spec
	if pod.ServiceAccountName != access.Restore.Name {
		t.Errorf("serviceAccountName = %q, want %q", pod.ServiceAccountName, access.Restore.Name)
	}
	if d := job.Spec.ActiveDeadlineSeconds; d == nil || *d != 1800 {
		t.Errorf("activeDeadlineSeconds = %v, want 1800 (restoreTimeout 30m)", d)
	}
	if got := pod.InitContainers[0].Image; got != testenv.Options.Image {
		t.Errorf("init image = %q, want %q", got, testenv.Options.Image)
	}
	task := pod.Containers[0]
	wantArgs := []string{"run", "restore", "--driver=" + driverPath, "--param=url=http://db:8086", "--param=databases=all"}
	if task.Image != "db-tools:1" || !slices.Equal(task.Args, wantArgs) {
		t.Errorf("task image %q args %q, want db-tools:1 %q", task.Image, task.Args, wantArgs)
	}
	checkEnv(t, rs, task.Env)
	for _, s := range []string{secretName, authSecret} {
		checkSecretMounted(t, pod, s)
	}
	checkSettings(t, rs)
}

// checkEnv checks the task container's environment is exactly what
// `keepsake run restore` needs.
func checkEnv(t *testing.T, rs *corev1alpha1.RestoreSession, env []corev1.EnvVar) {
	t.Helper()
	want := map[string]string{
		"KEEPSAKE_COMPONENT":        componentName,
		"KEEPSAKE_SNAPSHOT":         resticID,
		"KEEPSAKE_TARGET_GROUP":     "apps",
		"KEEPSAKE_TARGET_KIND":      "StatefulSet",
		"KEEPSAKE_TARGET_NAME":      targetName,
		"KEEPSAKE_TARGET_NAMESPACE": rs.Namespace,
		"KEEPSAKE_REPOSITORY": "name=" + repoName + ",storage=/keepsake/settings/" + repoName + ".json,namespace=" +
			rs.Namespace + ",directory=" + repoPath + ",password-file=/keepsake/secrets/" + secretName + "/RESTIC_PASSWORD",
		"KEEPSAKE_CACHE_DIR":       "/keepsake/scratch/restic-cache",
		"KEEPSAKE_REPORT_TO":       "kubernetes",
		"KEEPSAKE_NAMESPACE":       rs.Namespace,
		"KEEPSAKE_RESTORE_SESSION": rs.Name,
		"KEEPSAKE_SECRET":          "auth=/keepsake/secrets/" + authSecret,
	}
	got := map[string]string{}
	for _, e := range env {
		if e.ValueFrom != nil {
			t.Errorf("env %s comes from %+v: secrets must be files", e.Name, e.ValueFrom)
		}
		if strings.HasPrefix(e.Name, "KEEPSAKE_") {
			got[e.Name] = e.Value
		}
	}
	if testenv.JSON(got) != testenv.JSON(want) {
		t.Errorf("KEEPSAKE_ env =\n%s\nwant\n%s", testenv.JSON(got), testenv.JSON(want))
	}
}

func checkSecretMounted(t *testing.T, pod corev1.PodSpec, secret string) {
	t.Helper()
	var vol string
	for _, v := range pod.Volumes {
		if s := v.Secret; s != nil && s.SecretName == secret {
			vol = v.Name
			if s.DefaultMode == nil || *s.DefaultMode != 0o400 {
				t.Errorf("volume of Secret %s mode = %v, want 0400", secret, s.DefaultMode)
			}
		}
	}
	for _, m := range pod.Containers[0].VolumeMounts {
		if vol != "" && m.Name == vol && m.MountPath == "/keepsake/secrets/"+secret && m.ReadOnly {
			return
		}
	}
	t.Errorf("Secret %s is not mounted read-only at /keepsake/secrets/%s: volumes %+v mounts %+v",
		secret, secret, pod.Volumes, pod.Containers[0].VolumeMounts)
}

func checkSettings(t *testing.T, rs *corev1alpha1.RestoreSession) {
	t.Helper()
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: rs.Namespace, Name: restoresession.JobName(rs.Name) + "-settings"}
	if err := testenv.Default.Client.Get(context.Background(), key, &cm); err != nil {
		t.Fatalf("get settings ConfigMap: %v", err)
	}
	if !metav1.IsControlledBy(&cm, rs) {
		t.Errorf("settings ConfigMap is not controlled by the RestoreSession: %+v", cm.OwnerReferences)
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

// checkAccess checks that the restore Jobs' ServiceAccount exists with a
// Role that lets the runtime report into the RestoreSession's status, and
// only that: a restore Job starts no backup and deletes no Snapshot.
func checkAccess(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	key := client.ObjectKey{Namespace: ns, Name: access.Restore.Name}
	var sa corev1.ServiceAccount
	if err := testenv.Default.Client.Get(ctx, key, &sa); err != nil {
		t.Fatalf("get ServiceAccount: %v", err)
	}
	var role rbacv1.Role
	if err := testenv.Default.Client.Get(ctx, key, &role); err != nil {
		t.Fatalf("get Role: %v", err)
	}
	want := []rbacv1.PolicyRule{
		// Its RestoreSession, whose components' progress it sums.
		{APIGroups: []string{"core.keepsake.dev"}, Resources: []string{"restoresessions"}, Verbs: []string{"get"}},
		{APIGroups: []string{"core.keepsake.dev"}, Resources: []string{"restoresessions/status"}, Verbs: []string{"patch"}},
		// Whether the pod a repository lock names has ended.
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
	}
	if testenv.JSON(role.Rules) != testenv.JSON(want) {
		t.Errorf("Role %s rules = %s, want %s", role.Name, testenv.JSON(role.Rules), testenv.JSON(want))
	}
}

// TestRuntimeErrorIsTheMessage checks that a failed Job fails the restore
// with the error the runtime reported for the component.
func TestRuntimeErrorIsTheMessage(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	createSnapshot(t, snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
	rs := restore(ns, "restore-db", "snap", nil)
	env.Create(t, rs)
	waitPhase(t, rs, corev1alpha1.RestoreRunning, corev1alpha1.ConditionRestoreJobCreated, corev1alpha1.ReasonJobCreated)
	const runtimeErr = "driver: write points: 401 unauthorized"
	reportComponent(t, rs, componentName, corev1alpha1.RestoreComponentStatus{
		Phase: storagev1alpha1.ComponentFailed, Duration: "3s", Error: runtimeErr,
	})
	testenv.FinishJob(t, getJob(t, rs), "BackoffLimitExceeded")
	c := waitPhase(t, rs, corev1alpha1.RestoreFailed, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonRestoreFailed)
	if !strings.Contains(c.Message, "component "+componentName+": "+runtimeErr) {
		t.Errorf("message %q does not carry the runtime's error %q", c.Message, runtimeErr)
	}
	if got := rs.Status.Components[componentName]; got.Error != runtimeErr || got.Phase != storagev1alpha1.ComponentFailed {
		t.Errorf("component status = %+v, want the runtime's report kept", got)
	}
	if rs.Status.Duration != "1m0s" {
		t.Errorf("duration = %q, want 1m0s", rs.Status.Duration)
	}
	waitEvent(t, rs, corev1.EventTypeWarning, corev1alpha1.ReasonRestoreFailed)
}

// TestJobFailureWithoutReport checks that a Job that failed before the
// runtime reported anything fails the restore with the Job's condition.
func TestJobFailureWithoutReport(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	createSnapshot(t, snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
	rs := restore(ns, "restore-db", "snap", nil)
	env.Create(t, rs)
	job := getJob(t, rs)
	testenv.JobPod(t, job, corev1.PodFailed, nil) // it failed by itself
	testenv.FinishJob(t, job, "BackoffLimitExceeded")
	c := waitPhase(t, rs, corev1alpha1.RestoreFailed, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonRestoreFailed)
	if !strings.Contains(c.Message, "BackoffLimitExceeded: set by the test") {
		t.Errorf("message %q does not carry the Job's condition", c.Message)
	}
	if got := rs.Status.Components[componentName]; got.Phase != storagev1alpha1.ComponentFailed || got.Error == "" {
		t.Errorf("component status = %+v, want Failed with an error", got)
	}
}

// TestLostRestorePodSaysSo checks the reason of a restore whose pod did
// not fail by itself: force-deleted (no pod left) or evicted (the API's
// DisruptionTarget condition), the user reads that, not the Job
// controller's BackoffLimitExceeded; an eviction's message leads, and the
// runtime's report of being stopped follows it.
func TestLostRestorePodSaysSo(t *testing.T) {
	cases := map[string]struct {
		phase      corev1.PodPhase // empty: no pod at all
		condition  *corev1.PodCondition
		runtimeErr string
		messages   []string
	}{
		"force-deleted": {messages: []string{"was deleted before it finished", "BackoffLimitExceeded"}},
		"evicted": {
			phase: corev1.PodFailed, runtimeErr: "restore: context canceled",
			condition: &corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting"},
			messages: []string{"EvictionByEvictionAPI: Eviction API: evicting", "restore: context canceled"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := testenv.Default
			ns := fixtures(t)
			createSnapshot(t, snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
			rs := restore(ns, "restore-db", "snap", nil)
			env.Create(t, rs)
			job := getJob(t, rs)
			if tc.phase != "" {
				testenv.JobPod(t, job, tc.phase, tc.condition)
			}
			if tc.runtimeErr != "" {
				reportComponent(t, rs, componentName, corev1alpha1.RestoreComponentStatus{
					Phase: storagev1alpha1.ComponentFailed, Error: tc.runtimeErr,
				})
			}
			testenv.FinishJob(t, job, "BackoffLimitExceeded")
			c := waitPhase(t, rs, corev1alpha1.RestoreFailed, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonPodDeleted)
			for _, want := range tc.messages {
				if !strings.Contains(c.Message, want) {
					t.Errorf("message %q, want it to say %q", c.Message, want)
				}
			}
		})
	}
}

// TestRestoreTimeout checks that a Job past its deadline fails the restore
// with RestoreTimeout.
func TestRestoreTimeout(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	createSnapshot(t, snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
	rs := restore(ns, "restore-db", "snap", nil)
	env.Create(t, rs)
	testenv.FinishJob(t, getJob(t, rs), batchv1.JobReasonDeadlineExceeded)
	c := waitPhase(t, rs, corev1alpha1.RestoreFailed, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonRestoreTimeout)
	if !strings.Contains(c.Message, "restoreTimeout 30m") {
		t.Errorf("message %q does not name the timeout", c.Message)
	}
}

// TestRestoreTimeoutWhileStorageUnreachable: a restore Job that reaches
// its deadline while the runtime says restic retries the storage fails
// with StorageUnreachable and restic's message.
func TestRestoreTimeoutWhileStorageUnreachable(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	createSnapshot(t, snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
	rs := restore(ns, "restore-db", "snap", nil)
	env.Create(t, rs)
	job := getJob(t, rs)
	const restic = "Load(<data/afca7522c8>, 1667214, 4641012) returned error, retrying after 1s: connect: connection refused"
	testenv.Eventually(t, func(ctx context.Context) (bool, string) { // as the runtime reports it
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(rs), rs); err != nil {
			return false, err.Error()
		}
		meta.SetStatusCondition(&rs.Status.Conditions, metav1.Condition{
			Type: storagev1alpha1.ConditionStorageUnreachable, Status: metav1.ConditionTrue,
			Reason: storagev1alpha1.ReasonStorageRetrying, Message: "restic has been retrying requests to the storage of repository primary since 2026-01-02T03:04:05Z: " + restic,
		})
		if err := env.Client.Status().Update(ctx, rs); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	testenv.FinishJob(t, job, batchv1.JobReasonDeadlineExceeded)
	c := waitPhase(t, rs, corev1alpha1.RestoreFailed, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonStorageUnreachable)
	for _, want := range []string{"restoreTimeout (30m", "connection refused"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message %q, want it to say %q", c.Message, want)
		}
	}
	if got := meta.FindStatusCondition(rs.Status.Conditions, storagev1alpha1.ConditionStorageUnreachable); got != nil {
		t.Errorf("StorageUnreachable on the failed restore: %+v, want none", got)
	}
}

// TestSnapshotAppearsLater checks that a RestoreSession waits, Pending, for
// its Snapshot to appear and then to succeed, and proceeds once it has.
func TestSnapshotAppearsLater(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	rs := restore(ns, "restore-db", corev1alpha1.SnapshotLatest, nil)
	env.Create(t, rs)
	c := waitPhase(t, rs, corev1alpha1.RestorePending, corev1alpha1.ConditionSnapshotResolved, corev1alpha1.ReasonSnapshotNotFound)
	// The message says how long the restore waits (its restoreTimeout,
	// 30m) and until when.
	deadline := rs.CreationTimestamp.Add(30 * time.Minute).UTC().Format(time.RFC3339)
	if c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "waiting up to 30m0s") || !strings.Contains(c.Message, deadline) {
		t.Errorf("condition SnapshotResolved = %s %q, want False, waiting up to 30m0s, until %s", c.Status, c.Message, deadline)
	}

	named := restore(ns, "restore-named", "later", nil)
	env.Create(t, named)
	snap := snapshotOf(ns, "later", storagev1alpha1.SnapshotRunning, time.Now(), nil)
	createSnapshot(t, snap)
	waitPhase(t, named, corev1alpha1.RestorePending, corev1alpha1.ConditionSnapshotResolved, corev1alpha1.ReasonSnapshotNotReady)

	done := snapshotOf(ns, "later", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID})
	setSnapshotStatus(t, snap, done.Status)
	for _, r := range []*corev1alpha1.RestoreSession{rs, named} {
		waitPhase(t, r, corev1alpha1.RestoreRunning, corev1alpha1.ConditionRestoreJobCreated, corev1alpha1.ReasonJobCreated)
		if r.Status.Snapshot != "later" {
			t.Errorf("%s restores Snapshot %q, want later", r.Name, r.Status.Snapshot)
		}
	}
}

// TestForeignJob checks that a Job that has the RestoreSession's Job name
// but belongs to something else is neither followed nor replaced.
func TestForeignJob(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	createSnapshot(t, snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
	foreign := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: restoresession.JobName("restore-db")},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "other", Image: "other:1"}},
		}}},
	}
	env.Create(t, foreign)
	rs := restore(ns, "restore-db", "snap", nil)
	env.Create(t, rs)
	c := waitPhase(t, rs, corev1alpha1.RestoreFailed, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonJobCreationFailed)
	if !strings.Contains(c.Message, "does not belong to this RestoreSession") {
		t.Errorf("message %q does not explain the name clash", c.Message)
	}
	job := getJob(t, rs)
	if len(job.OwnerReferences) != 0 || job.Spec.Template.Spec.Containers[0].Image != "other:1" {
		t.Errorf("the foreign Job was changed: %+v", job)
	}
}

// TestLongName checks that a RestoreSession whose name is too long for a
// Job gets a Job of a shortened, stable name.
func TestLongName(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	createSnapshot(t, snapshotOf(ns, "snap", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
	rs := restore(ns, "restore-"+strings.Repeat("x", 80), "snap", nil)
	env.Create(t, rs)
	waitPhase(t, rs, corev1alpha1.RestoreRunning, corev1alpha1.ConditionRestoreJobCreated, corev1alpha1.ReasonJobCreated)
	if name := rs.Status.Job; len(name) > 63 || name != restoresession.JobName(rs.Name) {
		t.Errorf("job = %q (%d characters), want JobName's at most 63", name, len(name))
	}
	// A label value holds at most 63 characters too.
	if got := getJob(t, rs).Labels[corev1alpha1.LabelRestoreSession]; got != restoresession.JobName(rs.Name) {
		t.Errorf("label %s = %q, want the shortened name %q", corev1alpha1.LabelRestoreSession, got, restoresession.JobName(rs.Name))
	}
}

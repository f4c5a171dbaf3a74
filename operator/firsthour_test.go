package operator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// The first hour: what a user who makes each common mistake sees, and how
// soon. The lead's e2e scenario follows this table.

// Names of the first-hour fixtures; each case has a namespace of its own.
const (
	fhAddon    = "fh-db"
	fhBackup   = "logical-backup"
	fhRestore  = "logical-restore"
	fhStorage  = "local"
	fhTarget   = "db"
	fhPassword = "restic-password"
	fhAuth     = "db-auth"
	fhRepo     = "db-repo"
	fhConfig   = "db-backup"
	fhSession  = "hourly"
)

// firstHourBound is how soon after its creation a mistake must show.
const firstHourBound = 30 * time.Second

// TestFirstHour creates, for each mistake, the manifests a user would
// apply, and checks what `kubectl get`/`describe` shows on the object the
// user looks at: phase, condition, reason and message, within
// firstHourBound of its creation, and that no Job ran. A manifest the API
// server must refuse is checked for its message instead.
func TestFirstHour(t *testing.T) {
	tests := map[string]struct {
		// objects are what the user applies into namespace ns, besides the
		// fixtures; the last one is the object the user looks at.
		objects func(ns string) []client.Object
		// wantRefused is part of the API server's message when it must
		// refuse the last object; the other wants are then unused.
		wantRefused string
		// wantPhase is status.phase of the last object.
		wantPhase string
		// wantCondition, wantStatus and wantReason are the condition that
		// says what is wrong, its status and its reason.
		wantCondition string
		wantStatus    metav1.ConditionStatus
		wantReason    string
		// wantMessage is part of that condition's message; %s is ns.
		wantMessage string
	}{
		"encryption secret without RESTIC_PASSWORD": {
			objects: func(ns string) []client.Object {
				return []client.Object{
					secret(ns, "no-password", map[string]string{"PASSWORD": "misnamed"}),
					configuration(ns, func(bc *corev1alpha1.BackupConfiguration) {
						bc.Spec.Sessions[0].Repositories[0].EncryptionSecret.Name = "no-password"
					}),
				}
			},
			wantPhase:     string(corev1alpha1.BackupConfigurationNotReady),
			wantCondition: corev1alpha1.ConditionReady,
			wantStatus:    metav1.ConditionFalse,
			wantReason:    corev1alpha1.ReasonSecretKeyMissing,
			wantMessage:   "Secret %s/no-password has no key RESTIC_PASSWORD",
		},
		"authSecret that does not exist": {
			objects: func(ns string) []client.Object {
				return []client.Object{configuration(ns, func(bc *corev1alpha1.BackupConfiguration) {
					bc.Spec.Sessions[0].Addon.Tasks[0].Params["authSecret"] = "no-such-auth"
				})}
			},
			wantPhase:     string(corev1alpha1.BackupConfigurationNotReady),
			wantCondition: corev1alpha1.ConditionReady,
			wantStatus:    metav1.ConditionFalse,
			wantReason:    corev1alpha1.ReasonSecretNotFound,
			wantMessage:   "parameter authSecret: Secret %s/no-such-auth not found",
		},
		"repository whose location another Repository holds": {
			objects: func(ns string) []client.Object {
				return []client.Object{configuration(ns, func(bc *corev1alpha1.BackupConfiguration) {
					// The Repository the fixtures hold at this directory is older
					// (or, created in the same second, its name sorts first).
					bc.Spec.Sessions[0].Repositories[0].Name = "second"
					bc.Spec.Sessions[0].Repositories[0].Directory = "taken"
				})}
			},
			wantPhase:     string(corev1alpha1.BackupConfigurationNotReady),
			wantCondition: corev1alpha1.ConditionReady,
			wantStatus:    metav1.ConditionFalse,
			wantReason:    corev1alpha1.ReasonRepositoryNotReady,
			wantMessage:   "Repository %s/second is not Ready: LocationInUse",
		},
		"unknown task parameter": {
			objects: func(ns string) []client.Object {
				return []client.Object{configuration(ns, func(bc *corev1alpha1.BackupConfiguration) {
					bc.Spec.Sessions[0].Addon.Tasks[0].Params["database"] = "metrics"
				})}
			},
			wantPhase:     string(corev1alpha1.BackupConfigurationInvalid),
			wantCondition: corev1alpha1.ConditionReady,
			wantStatus:    metav1.ConditionFalse,
			wantReason:    corev1alpha1.ReasonUnknownParameter,
			wantMessage:   "has no parameter database; its parameters are: url, authSecret, databases",
		},
		"backup session of a configuration that is not Ready": {
			objects: func(ns string) []client.Object {
				return []client.Object{
					configuration(ns, func(bc *corev1alpha1.BackupConfiguration) {
						bc.Spec.Sessions[0].Repositories[0].EncryptionSecret.Name = "no-such-password"
					}),
					&corev1alpha1.BackupSession{
						ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "now"},
						Spec:       corev1alpha1.BackupSessionSpec{BackupConfiguration: fhConfig, Session: fhSession},
					},
				}
			},
			wantPhase:     string(corev1alpha1.BackupSessionPending),
			wantCondition: corev1alpha1.ConditionBackupJobCreated,
			wantStatus:    metav1.ConditionFalse,
			wantReason:    corev1alpha1.ReasonConfigurationNotReady,
			wantMessage:   "Secret %s/no-such-password not found): waiting up to 10m0s",
		},
		"restore into a target that does not exist": {
			objects: func(ns string) []client.Object {
				return []client.Object{restoreSession(ns, func(rs *corev1alpha1.RestoreSession) { rs.Spec.Target.Name = "no-such-db" })}
			},
			wantPhase:     string(corev1alpha1.RestoreInvalid),
			wantCondition: corev1alpha1.ConditionTargetFound,
			wantStatus:    metav1.ConditionFalse,
			wantReason:    corev1alpha1.ReasonTargetNotFound,
			wantMessage:   "StatefulSet %s/no-such-db not found",
		},
		"restore of a Snapshot that does not exist": {
			objects: func(ns string) []client.Object {
				return []client.Object{restoreSession(ns, func(rs *corev1alpha1.RestoreSession) { rs.Spec.DataSource.Snapshot = "no-such-snapshot" })}
			},
			wantPhase:     string(corev1alpha1.RestorePending),
			wantCondition: corev1alpha1.ConditionSnapshotResolved,
			wantStatus:    metav1.ConditionFalse,
			wantReason:    corev1alpha1.ReasonSnapshotNotFound,
			wantMessage:   "snapshot no-such-snapshot not found: waiting up to 10m0s in all (restoreTimeout), until ",
		},
		"schedule with a step of 61 minutes": {
			objects: func(ns string) []client.Object {
				return []client.Object{configuration(ns, func(bc *corev1alpha1.BackupConfiguration) {
					bc.Spec.Sessions[0].Scheduler.Schedule = "*/61 * * * *"
				})}
			},
			wantRefused: "the minute field (the first) must be * or 0-59",
		},
		"schedule at hour 25": {
			objects: func(ns string) []client.Object {
				return []client.Object{configuration(ns, func(bc *corev1alpha1.BackupConfiguration) {
					bc.Spec.Sessions[0].Scheduler.Schedule = "0 25 * * *"
				})}
			},
			wantRefused: "the hour field (the second) must be * or 0-23",
		},
		"backupTimeout that is not a duration": {
			objects: func(ns string) []client.Object {
				return []client.Object{configuration(ns, func(bc *corev1alpha1.BackupConfiguration) {
					bc.Spec.Sessions[0].BackupTimeout = &metav1.Duration{Duration: -1}
				})}
			},
			wantRefused: "backupTimeout must be a duration such as 30m or 6h",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := firstHourFixtures(t)
			objs := tc.objects(ns)
			last := objs[len(objs)-1]
			testenv.Default.Create(t, objs[:len(objs)-1]...)
			err := testenv.Default.Client.Create(context.Background(), last)
			if tc.wantRefused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantRefused) {
					t.Fatalf("create: %v; want it refused with %q", err, tc.wantRefused)
				}
				return
			}
			if err != nil {
				t.Fatalf("create %s: %v", last.GetName(), err)
			}
			want := fmt.Sprintf(tc.wantMessage, ns)
			if !strings.Contains(tc.wantMessage, "%s") {
				want = tc.wantMessage
			}
			took := waitSeen(t, last, tc.wantPhase, tc.wantCondition, tc.wantStatus, tc.wantReason, want)
			t.Logf("%s: %s %s=%s %s after %s", last.GetName(), tc.wantPhase, tc.wantCondition, tc.wantStatus, tc.wantReason, took.Round(100*time.Millisecond))
			assertNoJob(t, ns)
		})
	}
}

// waitSeen polls obj until its phase and condition are the wanted ones,
// for at most firstHourBound after its creation, and returns how long
// after its creation they showed.
func waitSeen(t *testing.T, obj client.Object, phase, condType string, st metav1.ConditionStatus, reason, message string) time.Duration {
	t.Helper()
	var last string
	deadline := obj.GetCreationTimestamp().Add(firstHourBound + time.Second) // timestamps are whole seconds
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		gotPhase, conds, err := phaseAndConditions(ctx, obj)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		c := meta.FindStatusCondition(conds, condType)
		last = fmt.Sprintf("phase %s, conditions %s", gotPhase, testenv.JSON(conds))
		return gotPhase == phase && c != nil && c.Status == st && c.Reason == reason && strings.Contains(c.Message, message), nil
	})
	if err != nil {
		t.Fatalf("%s did not show %s with %s=%s %s %q within %s of its creation: %s",
			obj.GetName(), phase, condType, st, reason, message, firstHourBound, last)
	}
	return time.Since(obj.GetCreationTimestamp().Time)
}

// phaseAndConditions reads obj's status.phase and status.conditions,
// whatever its kind.
func phaseAndConditions(ctx context.Context, obj client.Object) (string, []metav1.Condition, error) {
	if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return "", nil, err
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return "", nil, err
	}
	st, _ := u["status"].(map[string]any)
	phase, _ := st["phase"].(string)
	data, err := json.Marshal(st["conditions"])
	if err != nil {
		return "", nil, err
	}
	var conds []metav1.Condition
	if err := json.Unmarshal(data, &conds); err != nil {
		return "", nil, err
	}
	return phase, conds, nil
}

// assertNoJob fails when namespace ns holds a Job other than the sync Job
// of the fixtures' Repository: every case is a mistake found before
// anything runs.
func assertNoJob(t *testing.T, ns string) {
	t.Helper()
	var list batchv1.JobList
	if err := testenv.Default.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, j := range list.Items {
		if owner := metav1.GetControllerOf(&j); owner != nil && owner.Kind == "Repository" && owner.Name == fhRepo {
			continue
		}
		t.Errorf("Job %s was created", j.Name)
	}
}

var fhCatalogOnce sync.Once

// firstHourFixtures creates what a correct setup has: the Addon and its
// Functions (once), and in a new namespace the target, a Ready local
// BackupStorage, the encryption and auth Secrets, a Repository at
// directory "taken". It returns the
// namespace.
func firstHourFixtures(t *testing.T) string {
	t.Helper()
	env := testenv.Default
	fhCatalogOnce.Do(func() {
		params := []addonsv1alpha1.ParameterDefinition{
			{Name: "url", Required: true},
			{Name: "authSecret", Type: addonsv1alpha1.ParameterSecret},
			{Name: "databases", Default: ptr.To("all")},
		}
		env.Create(t,
			&addonsv1alpha1.Function{ObjectMeta: metav1.ObjectMeta{Name: fhAddon + "-backup"}, Spec: addonsv1alpha1.FunctionSpec{Image: "db-tools:1"}},
			&addonsv1alpha1.Function{ObjectMeta: metav1.ObjectMeta{Name: fhAddon + "-restore"}, Spec: addonsv1alpha1.FunctionSpec{Image: "db-tools:1"}},
			&addonsv1alpha1.Addon{
				ObjectMeta: metav1.ObjectMeta{Name: fhAddon},
				Spec: addonsv1alpha1.AddonSpec{
					BackupTasks:  []addonsv1alpha1.Task{{Name: fhBackup, Function: fhAddon + "-backup", Driver: "/drivers/db", Parameters: params}},
					RestoreTasks: []addonsv1alpha1.Task{{Name: fhRestore, Function: fhAddon + "-restore", Driver: "/drivers/db", Parameters: params}},
				},
			})
	})
	ns := env.Namespace(t, nil)
	labels := map[string]string{"app": fhTarget}
	repo := &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fhRepo},
		Spec: storagev1alpha1.RepositorySpec{
			StorageRef:       storagev1alpha1.ObjectReference{Name: fhStorage},
			Path:             "taken",
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: fhPassword},
		},
	}
	env.Create(t,
		&appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fhTarget},
			Spec: appsv1.StatefulSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db:1"}}},
				},
			},
		},
		&storagev1alpha1.BackupStorage{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fhStorage},
			Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.StorageBackend{
				Provider: storagev1alpha1.ProviderLocal,
				Local: &storagev1alpha1.LocalStorage{VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "backups"},
				}},
			}},
		},
		secret(ns, fhPassword, map[string]string{"RESTIC_PASSWORD": "not-a-real-password"}),
		secret(ns, fhAuth, map[string]string{"username": "backup", "password": "not-a-real-password"}),
		repo,
	)
	env.WaitCondition(t, repo, func() []metav1.Condition { return repo.Status.Conditions },
		storagev1alpha1.ConditionReady, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
	return ns
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
}

// configuration is a valid BackupConfiguration of the fixtures of ns,
// changed by mutate.
func configuration(ns string, mutate func(*corev1alpha1.BackupConfiguration)) *corev1alpha1.BackupConfiguration {
	bc := &corev1alpha1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fhConfig},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target:   storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: fhTarget},
			Backends: []corev1alpha1.BackendReference{{Name: "main", StorageRef: storagev1alpha1.ObjectReference{Name: fhStorage}}},
			Sessions: []corev1alpha1.Session{{
				Name:      fhSession,
				Scheduler: corev1alpha1.SchedulerSpec{Schedule: "0 * * * *"},
				Addon: corev1alpha1.AddonInfo{Name: fhAddon, Tasks: []corev1alpha1.TaskReference{{
					Name: fhBackup, Params: map[string]string{"url": "http://db:8086", "authSecret": fhAuth},
				}}},
				Repositories: []corev1alpha1.RepositoryInfo{{
					Name: "backups", Backend: "main", Directory: "logical",
					EncryptionSecret: storagev1alpha1.ObjectReference{Name: fhPassword},
				}},
			}},
		},
	}
	mutate(bc)
	return bc
}

// restoreSession restores the latest Snapshot of the fixtures' Repository
// into their target, changed by mutate.
func restoreSession(ns string, mutate func(*corev1alpha1.RestoreSession)) *corev1alpha1.RestoreSession {
	rs := &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "restore"},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target:     storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: fhTarget},
			DataSource: corev1alpha1.RestoreDataSource{Repository: storagev1alpha1.ObjectReference{Name: fhRepo}, Snapshot: corev1alpha1.SnapshotLatest},
			Addon: corev1alpha1.AddonInfo{Name: fhAddon, Tasks: []corev1alpha1.TaskReference{{
				Name: fhRestore, Params: map[string]string{"url": "http://db:8086"},
			}}},
		},
	}
	mutate(rs)
	return rs
}

// TestFirstBackupEvents checks the Events of a configuration without
// mistakes up to its first backup's Job: each says something happened,
// once, as a Normal Event. Warnings are for problems; checks that pass are
// not news.
func TestFirstBackupEvents(t *testing.T) {
	ns := firstHourFixtures(t)
	bc := configuration(ns, func(*corev1alpha1.BackupConfiguration) {})
	testenv.Default.Create(t, bc)
	first := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fhConfig + "-" + fhSession + "-first"}}
	testenv.WaitExists(t, first)
	waitSeen(t, first, string(corev1alpha1.BackupSessionRunning), corev1alpha1.ConditionBackupJobCreated,
		metav1.ConditionTrue, corev1alpha1.ReasonJobCreated, "")
	want := map[string][]string{
		"BackupConfiguration/" + fhConfig: {"AllReady", "BackupSessionCreated", "CronJobCreated", corev1alpha1.ReasonRepositoryCreated},
		"BackupSession/" + first.Name:     {corev1alpha1.ReasonJobCreated, corev1alpha1.ReasonSnapshotsCreated},
	}
	var got map[string][]string
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var err error
		if got, err = eventReasons(ctx, t, ns); err != nil {
			return false, err.Error()
		}
		return testenv.JSON(got) == testenv.JSON(want), "Events: " + testenv.JSON(got)
	})
}

// eventReasons lists the reasons of the Events of ns by "Kind/name" of the
// object they regard, sorted, a reason once per Event and per repetition;
// a Warning fails the test at once.
func eventReasons(ctx context.Context, t *testing.T, ns string) (map[string][]string, error) {
	var list eventsv1.EventList
	if err := testenv.Default.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	got := map[string][]string{}
	for _, e := range list.Items {
		if e.Type == corev1.EventTypeWarning {
			t.Fatalf("Warning Event %s on %s/%s: %s", e.Reason, e.Regarding.Kind, e.Regarding.Name, e.Note)
		}
		key := e.Regarding.Kind + "/" + e.Regarding.Name
		if e.Regarding.Kind != "BackupConfiguration" && e.Regarding.Kind != "BackupSession" {
			continue
		}
		n := 1
		if e.Series != nil {
			n = int(e.Series.Count)
		}
		for range n {
			got[key] = append(got[key], e.Reason)
		}
	}
	for k := range got {
		slices.Sort(got[k])
	}
	return got, nil
}

package backupsession_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/operator/backupsession"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

func TestMain(m *testing.M) {
	// Pods stuck for longer than this fail their session; short, so that
	// tests see it, and set before the manager starts.
	jobs.StuckGrace, jobs.StuckRecheck = stuckGrace, time.Second
	os.Exit(testenv.Main(m))
}

// stuckGrace is jobs.StuckGrace in these tests.
const stuckGrace = 3 * time.Second

// Names of the fixtures.
const (
	addonName       = "bs-test-db"
	noFunctionAddon = "bs-test-no-function"
	functionName    = "bs-test-db-backup"
	taskName        = "logical-backup"
	driverPath      = "/drivers/db"
	storageName     = "local"
	targetName      = "db"
	secretName      = "restic-password"
	authSecretName  = "db-auth"
	sessionName     = "frequent"
	repoName        = "db-repo"
	configName      = "db-backup"
)

var catalogOnce sync.Once

// createCatalog creates, once for the package, the cluster-scoped Addons
// and Function: one addon whose Function needs ${url}, and one whose
// Function does not exist.
func createCatalog(t *testing.T) {
	catalogOnce.Do(func() {
		testenv.Default.Create(t,
			&addonsv1alpha1.Function{
				ObjectMeta: metav1.ObjectMeta{Name: functionName},
				Spec: addonsv1alpha1.FunctionSpec{
					Image:   "db-tools:1",
					Command: []string{"/keepsake/bin/keepsake"},
					Args:    []string{"run", "backup", "--driver=${driver}", "--param=url=${url}", "--param=databases=${databases}"},
				},
			},
			&addonsv1alpha1.Addon{
				ObjectMeta: metav1.ObjectMeta{Name: addonName},
				Spec: addonsv1alpha1.AddonSpec{BackupTasks: []addonsv1alpha1.Task{{
					Name: taskName, Function: functionName, Driver: driverPath,
					Parameters: []addonsv1alpha1.ParameterDefinition{
						{Name: "url"},
						{Name: "databases", Default: ptr.To("all")},
						{Name: "authSecret", Type: addonsv1alpha1.ParameterSecret},
					},
				}}},
			},
			&addonsv1alpha1.Addon{
				ObjectMeta: metav1.ObjectMeta{Name: noFunctionAddon},
				Spec: addonsv1alpha1.AddonSpec{BackupTasks: []addonsv1alpha1.Task{{
					Name: taskName, Function: "bs-test-missing", Driver: driverPath,
				}}},
			})
	})
}

// fixtures creates a namespace holding the target StatefulSet, a local
// BackupStorage, the encryption Secret and the database's credentials
// Secret, and returns it.
func fixtures(t *testing.T) string {
	t.Helper()
	createCatalog(t)
	env := testenv.Default
	ns := env.Namespace(t, nil)
	labels := map[string]string{"app": targetName}
	env.Create(t,
		&appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: targetName},
			Spec: appsv1.StatefulSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db:1"}}},
				},
			},
		},
		&storagev1alpha1.BackupStorage{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: storageName},
			Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.StorageBackend{
				Provider: storagev1alpha1.ProviderLocal,
				Local: &storagev1alpha1.LocalStorage{VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "backups"},
				}},
			}},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secretName},
			StringData: map[string]string{"RESTIC_PASSWORD": "not-a-real-password"},
		},
		// The configuration is Ready only when the Secret its authSecret
		// parameter names exists.
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: authSecretName},
			StringData: map[string]string{"username": "backup", "password": "not-a-real-password"},
		},
	)
	return ns
}

// config is a BackupConfiguration of ns backing up into one repository
// with addon; mutate changes its session.
func config(ns, addon string, mutate func(*corev1alpha1.Session)) *corev1alpha1.BackupConfiguration {
	s := corev1alpha1.Session{
		Name: sessionName,
		Scheduler: corev1alpha1.SchedulerSpec{
			Schedule:          "0 3 * * *",
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
		},
		Addon: corev1alpha1.AddonInfo{Name: addon, Tasks: []corev1alpha1.TaskReference{{
			Name: taskName, Params: map[string]string{"url": "http://db:8086", "authSecret": authSecretName},
		}}},
		Repositories: []corev1alpha1.RepositoryInfo{{
			Name: repoName, Backend: "main", Directory: "db",
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: secretName},
		}},
		BackupTimeout: &metav1.Duration{Duration: 30 * time.Minute},
	}
	if mutate != nil {
		mutate(&s)
	}
	return &corev1alpha1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: configName},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target: storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: targetName},
			Backends: []corev1alpha1.BackendReference{{
				Name: "main", StorageRef: storagev1alpha1.ObjectReference{Name: storageName},
			}},
			Sessions: []corev1alpha1.Session{s},
		},
	}
}

// firstSession is the BackupSession the configuration reconciler creates.
func firstSession(ns string) *corev1alpha1.BackupSession {
	return &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: backupconfiguration.FirstSessionName(configName, sessionName),
	}}
}

// newSession is a BackupSession of the fixtures' session, as the trigger
// makes it.
func newSession(ns, name, config string) *corev1alpha1.BackupSession {
	return &corev1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			corev1alpha1.LabelBackupConfiguration: config, corev1alpha1.LabelSession: sessionName,
		}},
		Spec: corev1alpha1.BackupSessionSpec{BackupConfiguration: config, Session: sessionName},
	}
}

// waitPhase waits until bks has phase and its condition condType has
// reason, and returns that condition.
func waitPhase(t *testing.T, bks *corev1alpha1.BackupSession, phase corev1alpha1.BackupSessionPhase,
	condType, reason string) metav1.Condition {
	t.Helper()
	return testenv.WaitPhase(t, bks, func() string { return string(bks.Status.Phase) }, string(phase),
		func() []metav1.Condition { return bks.Status.Conditions }, condType, reason, func() any { return bks.Status })
}

// getJob waits for the session's Job and returns it.
func getJob(t *testing.T, bks *corev1alpha1.BackupSession) *batchv1.Job {
	t.Helper()
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: bks.Namespace, Name: backupsession.JobName(bks.Name)}}
	testenv.WaitExists(t, job)
	return job
}

// recordResult plays the runtime: it records in the session's Snapshot a
// component that succeeded with a restic snapshot, or failed with errMsg.
func recordResult(t *testing.T, bks *corev1alpha1.BackupSession, errMsg string) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		snap := &storagev1alpha1.Snapshot{}
		key := client.ObjectKey{Namespace: bks.Namespace, Name: backupsession.SnapshotName(bks.Name, repoName)}
		if err := testenv.Default.Client.Get(ctx, key, snap); err != nil {
			return false, err.Error()
		}
		c := storagev1alpha1.ComponentStatus{Phase: storagev1alpha1.ComponentSucceeded, ResticSnapshotID: "0123abcd", SizeBytes: 42}
		snap.Status.Phase = storagev1alpha1.SnapshotSucceeded
		if errMsg != "" {
			c = storagev1alpha1.ComponentStatus{Phase: storagev1alpha1.ComponentFailed, Error: errMsg}
			snap.Status.Phase = storagev1alpha1.SnapshotFailed
		}
		snap.Status.Components = map[string]storagev1alpha1.ComponentStatus{taskName: c}
		if err := testenv.Default.Client.Status().Update(ctx, snap); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// jobsOf lists the Jobs labelled with the session's name.
func jobsOf(t *testing.T, bks *corev1alpha1.BackupSession) []batchv1.Job {
	t.Helper()
	var list batchv1.JobList
	if err := testenv.Default.Client.List(context.Background(), &list, client.InNamespace(bks.Namespace),
		client.MatchingLabels{backupsession.LabelBackupSession: bks.Name}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func getSnapshot(t *testing.T, bks *corev1alpha1.BackupSession) *storagev1alpha1.Snapshot {
	t.Helper()
	var snap storagev1alpha1.Snapshot
	key := client.ObjectKey{Namespace: bks.Namespace, Name: backupsession.SnapshotName(bks.Name, repoName)}
	if err := testenv.Default.Client.Get(context.Background(), key, &snap); err != nil {
		t.Fatalf("get Snapshot: %v", err)
	}
	return &snap
}

// configKeepingTwo creates in ns the RetentionPolicy keep-two (the last two
// successful Snapshots) and a configuration of the test addon whose backend
// retains by it; mutate changes its session as in config.
func configKeepingTwo(t *testing.T, ns string, mutate func(*corev1alpha1.Session)) *corev1alpha1.BackupConfiguration {
	t.Helper()
	env := testenv.Default
	env.Create(t, &storagev1alpha1.RetentionPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "keep-two"},
		Spec:       storagev1alpha1.RetentionPolicySpec{SuccessfulSnapshots: &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](2)}},
	})
	bc := config(ns, addonName, mutate)
	bc.Spec.Backends[0].RetentionPolicy = &storagev1alpha1.ObjectReference{Name: "keep-two"}
	env.Create(t, bc)
	return bc
}

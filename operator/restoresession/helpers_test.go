package restoresession_test

import (
	"context"
	"encoding/json"
	"fmt"
	appsv1 "k8s.io/api/apps/v1"
	"os"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/operator/restoresession"
)

func TestMain(m *testing.M) {
	// Short, so tests see stuck pods fail; set before the manager starts.
	jobs.StuckGrace, jobs.StuckRecheck = 3*time.Second, time.Second
	// Long enough for the tests that play the StatefulSet controller,
	// short enough for the one whose pods never stop.
	restoresession.OfflineRecheck, restoresession.StopTimeout = 200*time.Millisecond, 20*time.Second
	os.Exit(testenv.Main(m))
}

// Names of the fixtures.
const (
	addonName     = "rs-test-db"
	functionName  = "rs-test-db-restore"
	taskName      = "logical-restore"
	noFunction    = "no-function"
	driverPath    = "/drivers/db"
	storageName   = "local"
	secretName    = "restic-password"
	authSecret    = "db-admin"
	repoName      = "db-repo"
	repoPath      = "prod/db"
	targetName    = "db"
	componentName = "db"
	resticID      = "4bba301e7a7b1a0c30fd7cb7b1e5f2c1d79b4d6e0a6c5ac4c8f2d5d3f20a1b9e"
)

var catalogOnce sync.Once

// createCatalog creates, once for the package, the cluster-scoped Addon
// and Function. The Addon's restore task needs url and takes a secret
// parameter auth; its second restore task names a missing Function.
func createCatalog(t *testing.T) {
	catalogOnce.Do(func() {
		testenv.Default.Create(t,
			&addonsv1alpha1.Function{
				ObjectMeta: metav1.ObjectMeta{Name: functionName},
				Spec: addonsv1alpha1.FunctionSpec{
					Image:   "db-tools:1",
					Command: []string{"/keepsake/bin/keepsake"},
					Args:    []string{"run", "restore", "--driver=${driver}", "--param=url=${url}", "--param=databases=${databases}"},
				},
			},
			&addonsv1alpha1.Addon{
				ObjectMeta: metav1.ObjectMeta{Name: addonName},
				Spec: addonsv1alpha1.AddonSpec{RestoreTasks: []addonsv1alpha1.Task{
					{
						Name: taskName, Function: functionName, Driver: driverPath,
						Parameters: []addonsv1alpha1.ParameterDefinition{
							{Name: "url", Required: true},
							{Name: "databases", Default: ptr.To("all")},
							{Name: "auth", Type: addonsv1alpha1.ParameterSecret},
						},
					},
					{Name: noFunction, Function: "rs-test-missing", Driver: driverPath},
				}},
			})
	})
}

// fixtures creates a namespace holding a local BackupStorage, the
// encryption Secret and the Repository, and returns it.
func fixtures(t *testing.T) string {
	t.Helper()
	createCatalog(t)
	env := testenv.Default
	ns := env.Namespace(t, nil)
	env.Create(t,
		target(ns),
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
		&storagev1alpha1.Repository{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: repoName},
			Spec: storagev1alpha1.RepositorySpec{
				StorageRef:       storagev1alpha1.ObjectReference{Name: storageName},
				Path:             repoPath,
				EncryptionSecret: storagev1alpha1.ObjectReference{Name: secretName},
			},
		},
	)
	return ns
}

// target is the StatefulSet restores go into, in namespace ns: a restore
// whose target does not exist is Invalid before any Job.
func target(ns string) *appsv1.StatefulSet {
	labels := map[string]string{"app": targetName}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: targetName},
		Spec: appsv1.StatefulSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db:1"}}},
			},
		},
	}
}

// snapshotOf returns a Snapshot of the fixtures' repository with phase,
// taken at, holding components (name -> restic snapshot ID).
func snapshotOf(ns, name string, phase storagev1alpha1.SnapshotPhase, at time.Time, components map[string]string) *storagev1alpha1.Snapshot {
	s := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		// backupSession is set: the CRD's immutability rule cannot
		// evaluate a Snapshot without one, so its status could not be set.
		Spec: storagev1alpha1.SnapshotSpec{Repository: repoName, BackupSession: "backup-" + name, DeletionPolicy: storagev1alpha1.SnapshotRetain},
		Status: storagev1alpha1.SnapshotStatus{
			Phase:           phase,
			SnapshotTime:    &metav1.Time{Time: at},
			TotalComponents: int32(len(components)),
			Components:      map[string]storagev1alpha1.ComponentStatus{},
		},
	}
	for c, id := range components {
		s.Status.Components[c] = storagev1alpha1.ComponentStatus{Phase: storagev1alpha1.ComponentSucceeded, ResticSnapshotID: id}
	}
	return s
}

// createSnapshot creates snap with its status, as a backup would leave it.
func createSnapshot(t *testing.T, snap *storagev1alpha1.Snapshot) {
	t.Helper()
	st := snap.Status
	testenv.Default.Create(t, snap)
	setSnapshotStatus(t, snap, st)
}

// setSnapshotStatus replaces the status of snap.
func setSnapshotStatus(t *testing.T, snap *storagev1alpha1.Snapshot, st storagev1alpha1.SnapshotStatus) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(snap), snap); err != nil {
			return false, err.Error()
		}
		snap.Status = st
		if err := testenv.Default.Client.Status().Update(ctx, snap); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// restore is a RestoreSession of the fixtures' repository and Addon task,
// restoring snapshot into the StatefulSet db; mutate changes its spec.
func restore(ns, name, snapshot string, mutate func(*corev1alpha1.RestoreSessionSpec)) *corev1alpha1.RestoreSession {
	rs := &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target: storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: targetName},
			DataSource: corev1alpha1.RestoreDataSource{
				Repository: storagev1alpha1.ObjectReference{Name: repoName},
				Snapshot:   snapshot,
			},
			Addon: corev1alpha1.AddonInfo{Name: addonName, Tasks: []corev1alpha1.TaskReference{{
				Name: taskName, Params: map[string]string{"url": "http://db:8086", "auth": authSecret},
			}}},
			RestoreTimeout: &metav1.Duration{Duration: 30 * time.Minute},
		},
	}
	if mutate != nil {
		mutate(&rs.Spec)
	}
	return rs
}

// waitPhase waits until rs has phase and its condition condType has
// reason, and returns that condition.
func waitPhase(t *testing.T, rs *corev1alpha1.RestoreSession, phase corev1alpha1.RestoreSessionPhase,
	condType, reason string) metav1.Condition {
	t.Helper()
	return testenv.WaitPhase(t, rs, func() string { return string(rs.Status.Phase) }, string(phase),
		func() []metav1.Condition { return rs.Status.Conditions }, condType, reason, func() any { return rs.Status })
}

// getJob waits for the RestoreSession's Job and returns it.
func getJob(t *testing.T, rs *corev1alpha1.RestoreSession) *batchv1.Job {
	t.Helper()
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: rs.Namespace, Name: restoresession.JobName(rs.Name)}}
	testenv.WaitExists(t, job)
	return job
}

// reportComponent plays the runtime in the Job's pod: it merges the
// component's result into the RestoreSession's status.
func reportComponent(t *testing.T, rs *corev1alpha1.RestoreSession, component string, st corev1alpha1.RestoreComponentStatus) {
	t.Helper()
	data, err := json.Marshal(map[string]any{"status": map[string]any{"components": map[string]any{component: st}}})
	if err != nil {
		t.Fatal(err)
	}
	patch := client.RawPatch("application/merge-patch+json", data)
	if err := testenv.Default.Client.Status().Patch(context.Background(), rs.DeepCopy(), patch); err != nil {
		t.Fatalf("report component %s: %v", component, err)
	}
}

// jobsOf lists the Jobs labelled with the RestoreSession's name.
func jobsOf(t *testing.T, rs *corev1alpha1.RestoreSession) []batchv1.Job {
	t.Helper()
	var list batchv1.JobList
	if err := testenv.Default.Client.List(context.Background(), &list, client.InNamespace(rs.Namespace),
		client.MatchingLabels{corev1alpha1.LabelRestoreSession: rs.Name}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// waitEvent waits for an Event of evType and reason about rs, as users see
// it in `kubectl describe`.
func waitEvent(t *testing.T, rs *corev1alpha1.RestoreSession, evType, reason string) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := testenv.Default.Client.List(ctx, &list, client.InNamespace(rs.Namespace)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name == rs.Name && e.Regarding.Kind == "RestoreSession" && e.Type == evType && e.Reason == reason {
				return true, ""
			}
			seen = append(seen, e.Type+"/"+e.Reason+" "+e.Regarding.Name)
		}
		return false, fmt.Sprintf("no %s Event %s; Events: %v", evType, reason, seen)
	})
}

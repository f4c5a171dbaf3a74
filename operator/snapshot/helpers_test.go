package snapshot_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/operator/snapshot"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

// Names of the fixtures.
const (
	storageName    = "s3"
	credsName      = "s3-creds"
	passwordSecret = "restic-password"
	repoName       = "db-repo"
	repoPath       = "db"
)

// fixtures creates a namespace holding an S3 BackupStorage with its
// credentials Secret, the encryption Secret and a Repository, and returns
// the namespace. The storage is never contacted: the forget Job would.
func fixtures(t *testing.T) string {
	t.Helper()
	env := testenv.Default
	ns := env.Namespace(t, nil)
	env.Create(t,
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credsName},
			StringData: map[string]string{"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: passwordSecret},
			StringData: map[string]string{"RESTIC_PASSWORD": "not-a-real-password"},
		},
		&storagev1alpha1.BackupStorage{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: storageName},
			Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.StorageBackend{
				Provider: storagev1alpha1.ProviderS3,
				S3: &storagev1alpha1.S3Storage{
					Endpoint: "http://127.0.0.1:1", Bucket: "backups", ForcePathStyle: true, SecretName: credsName,
				},
			}},
		},
		repository(ns, repoName),
	)
	return ns
}

// repository is a Repository of ns in the fixtures' storage.
func repository(ns, name string) *storagev1alpha1.Repository {
	return &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: storagev1alpha1.RepositorySpec{
			StorageRef:       storagev1alpha1.ObjectReference{Name: storageName},
			Path:             repoPath,
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: passwordSecret},
		},
	}
}

// newSnapshot creates a Snapshot of repo without finalizers, with the
// given restic IDs as the runtime records them (one component each), and
// waits until the reconciler has added the forget finalizer.
func newSnapshot(t *testing.T, ns, name, repo string, ids ...string) *storagev1alpha1.Snapshot {
	t.Helper()
	env := testenv.Default
	snap := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       storagev1alpha1.SnapshotSpec{Repository: repo},
	}
	env.Create(t, snap)
	if len(ids) > 0 {
		before := snap.DeepCopy()
		snap.Status.Phase = storagev1alpha1.SnapshotSucceeded
		snap.Status.Components = map[string]storagev1alpha1.ComponentStatus{}
		for i, id := range ids {
			snap.Status.Components[fmt.Sprintf("component-%d", i)] = storagev1alpha1.ComponentStatus{
				Phase: storagev1alpha1.ComponentSucceeded, ResticSnapshotID: id,
			}
		}
		if err := env.Client.Status().Patch(context.Background(), snap, client.MergeFrom(before)); err != nil {
			t.Fatalf("update Snapshot status: %v", err)
		}
	}
	waitFinalizer(t, snap, true)
	return snap
}

// waitFinalizer waits until snap has, or has not, the forget finalizer.
func waitFinalizer(t *testing.T, snap *storagev1alpha1.Snapshot, want bool) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(snap), snap); err != nil {
			return false, err.Error()
		}
		has := slices.Contains(snap.Finalizers, storagev1alpha1.FinalizerForget)
		return has == want, fmt.Sprintf("finalizers %v, want forget finalizer: %v", snap.Finalizers, want)
	})
}

// deleteSnapshot deletes snap.
func deleteSnapshot(t *testing.T, snap *storagev1alpha1.Snapshot) {
	t.Helper()
	if err := testenv.Default.Client.Delete(context.Background(), snap); err != nil {
		t.Fatalf("delete Snapshot %s: %v", snap.Name, err)
	}
}

// waitGone waits until obj no longer exists.
func waitGone(t *testing.T, obj client.Object) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		return false, fmt.Sprintf("%T %s still exists (err %v): finalizers %v", obj, obj.GetName(), err, obj.GetFinalizers())
	})
}

// waitJob waits for the forget Job of snap other than the one with UID
// notUID, and returns it.
func waitJob(t *testing.T, snap *storagev1alpha1.Snapshot, notUID string) *batchv1.Job {
	t.Helper()
	var job batchv1.Job
	key := client.ObjectKey{Namespace: snap.Namespace, Name: snapshot.JobName(snap.Name)}
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, key, &job); err != nil {
			return false, err.Error()
		}
		return string(job.UID) != notUID, "only the old Job " + notUID + " exists"
	})
	return &job
}

// jobsIn lists the Jobs of ns.
func jobsIn(t *testing.T, ns string) []batchv1.Job {
	t.Helper()
	var list batchv1.JobList
	if err := testenv.Default.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// waitEvent waits until an Event about the object named name has reason.
func waitEvent(t *testing.T, ns, name, reason string) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := testenv.Default.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, ev := range list.Items {
			if ev.Regarding.Name == name {
				if ev.Reason == reason {
					return true, ""
				}
				seen = append(seen, ev.Reason)
			}
		}
		return false, fmt.Sprintf("events about %s have reasons %v, want %s", name, seen, reason)
	})
}

package repository_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	"github.com/keepsake-dev/keepsake/repository/storage"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// minioFixture is a MinIO bucket, a namespace with a Ready S3 BackupStorage
// on it, and a store reaching the storage's prefix as the test's own eyes.
type minioFixture struct {
	ns    string
	store storage.Store
}

func newMinIOFixture(t *testing.T) *minioFixture {
	t.Helper()
	minio := servers.StartMinIO(t)
	minio.CreateBucket(t, bucket)
	ns := testenv.Default.Namespace(t, nil)
	testenv.Default.Create(t,
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credsName},
			StringData: map[string]string{"AWS_ACCESS_KEY_ID": minio.AccessKey, "AWS_SECRET_ACCESS_KEY": minio.SecretKey},
		},
		s3Storage(ns, minio.Endpoint),
		passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "not-a-real-password"}),
	)
	store, err := storage.Open(storage.Config{
		Provider:    storage.ProviderS3,
		S3:          storage.S3Config{Endpoint: minio.Endpoint, Bucket: bucket, Prefix: prefix, ForcePathStyle: true},
		Credentials: storage.Credentials{AccessKeyID: minio.AccessKey, SecretAccessKey: minio.SecretKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &minioFixture{ns: ns, store: store}
}

// repository creates a Ready Repository at dir with deletionPolicy policy,
// and restic-like objects in its directory, whose keys it returns.
func (f *minioFixture) repository(t *testing.T, name, dir string, policy storagev1alpha1.RepositoryDeletionPolicy) (*storagev1alpha1.Repository, []string) {
	t.Helper()
	repo := newRepository(f.ns, name, "minio")
	repo.Spec.Path, repo.Spec.DeletionPolicy = dir, policy
	testenv.Default.Create(t, repo)
	waitReady(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
	keys := []string{f.ns + "/" + dir + "/" + storage.RepositoryMetadataFile}
	for _, k := range []string{"config", "keys/k1", "data/00/0011", "snapshots/s1"} {
		key := f.ns + "/" + dir + "/" + k
		if err := f.store.Put(context.Background(), key, []byte("x")); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	waitObjects(t, f.store, keys, true) // repository.yaml is written by the reconciler
	return repo, keys
}

// storedRepository writes, without any Repository object, the
// repository.yaml of Repository name and restic-like objects at dir, as
// another cluster would have, and returns their keys.
func (f *minioFixture) storedRepository(t *testing.T, name, dir string) []string {
	t.Helper()
	ctx := context.Background()
	m := storage.RepositoryMetadata{Name: name, Namespace: f.ns, Path: dir}
	if err := storage.WriteRepositoryMetadata(ctx, f.store, f.ns, dir, m); err != nil {
		t.Fatal(err)
	}
	keys := []string{f.ns + "/" + dir + "/" + storage.RepositoryMetadataFile}
	for _, k := range []string{"config", "keys/k1", "data/00/0011"} {
		key := f.ns + "/" + dir + "/" + k
		if err := f.store.Put(ctx, key, []byte("x")); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	return keys
}

// waitObjects waits until every key exists (want) or none does (!want).
func waitObjects(t *testing.T, s storage.Store, keys []string, want bool) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		for _, k := range keys {
			_, err := s.Get(ctx, k)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return false, err.Error()
			}
			if (err == nil) != want {
				return false, fmt.Sprintf("object %s exists: %v, want %v", k, err == nil, want)
			}
		}
		return true, ""
	})
}

// checkObjects fails unless every key exists.
func checkObjects(t *testing.T, s storage.Store, keys []string) {
	t.Helper()
	for _, k := range keys {
		if _, err := s.Get(context.Background(), k); err != nil {
			t.Errorf("object %s: %v; want it kept", k, err)
		}
	}
}

// waitFinalizer waits until repo holds the wipe-out finalizer (want) or not.
func waitFinalizer(t *testing.T, repo *storagev1alpha1.Repository, want bool) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(repo), repo); err != nil {
			return false, err.Error()
		}
		has := slices.Contains(repo.Finalizers, storagev1alpha1.FinalizerWipeOut)
		return has == want, fmt.Sprintf("finalizers %v, want %s: %v", repo.Finalizers, storagev1alpha1.FinalizerWipeOut, want)
	})
}

// deleteAndWaitGone deletes obj and waits until the API server has let it
// go.
func deleteAndWaitGone(t *testing.T, obj client.Object) {
	t.Helper()
	if err := testenv.Default.Client.Delete(context.Background(), obj); err != nil {
		t.Fatalf("delete %s: %v", obj.GetName(), err)
	}
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		return false, fmt.Sprintf("%s still exists (%v), finalizers %v", obj.GetName(), err, obj.GetFinalizers())
	})
}

// waitEvent waits until an Event about obj has type evType and reason, and
// returns its note.
func waitEvent(t *testing.T, obj client.Object, evType, reason string) string {
	t.Helper()
	var note string
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := testenv.Default.Client.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, ev := range list.Items {
			if ev.Regarding.Name != obj.GetName() || ev.Regarding.Kind != "Repository" {
				continue
			}
			if ev.Type == evType && ev.Reason == reason {
				note = ev.Note
				return true, ""
			}
			seen = append(seen, ev.Type+"/"+ev.Reason)
		}
		return false, fmt.Sprintf("events about %s: %v, want %s/%s", obj.GetName(), seen, evType, reason)
	})
	return note
}

// TestWipeOut checks that deleting a Repository with deletionPolicy WipeOut
// deletes its directory from MinIO, and nothing of a sibling repository
// whose directory name starts the same.
func TestWipeOut(t *testing.T) {
	f := newMinIOFixture(t)
	repo, gone := f.repository(t, "wiped", "db/logical", storagev1alpha1.RepositoryWipeOut)
	_, kept := f.repository(t, "sibling", "db/logical2", storagev1alpha1.RepositoryWipeOut)
	waitFinalizer(t, repo, true)

	deleteAndWaitGone(t, repo)
	waitObjects(t, f.store, gone, false)
	checkObjects(t, f.store, kept)
	note := waitEvent(t, repo, corev1.EventTypeNormal, storagev1alpha1.ReasonWipedOut)
	if want := fmt.Sprintf("deleted %d objects", len(gone)); !strings.Contains(note, want) {
		t.Errorf("event note %q, want it to say %q", note, want)
	}
}

// TestDeletePolicyKeepsData checks that a Repository with deletionPolicy
// Delete holds no finalizer and leaves its data behind, and that switching
// a WipeOut Repository to Delete takes the finalizer off.
func TestDeletePolicyKeepsData(t *testing.T) {
	f := newMinIOFixture(t)
	repo, kept := f.repository(t, "kept", "db/logical", storagev1alpha1.RepositoryDelete)
	if slices.Contains(repo.Finalizers, storagev1alpha1.FinalizerWipeOut) {
		t.Errorf("finalizers %v of a Delete Repository", repo.Finalizers)
	}
	deleteAndWaitGone(t, repo)
	checkObjects(t, f.store, kept)

	switched, kept2 := f.repository(t, "switched", "db/other", storagev1alpha1.RepositoryWipeOut)
	waitFinalizer(t, switched, true)
	before := switched.DeepCopy()
	switched.Spec.DeletionPolicy = storagev1alpha1.RepositoryDelete
	if err := testenv.Default.Client.Patch(context.Background(), switched, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	waitFinalizer(t, switched, false)
	deleteAndWaitGone(t, switched)
	checkObjects(t, f.store, kept2)
}

// TestWipeOutLeavesData checks the Repositories let go with their data
// left and a Warning: a local storage the operator cannot reach, a storage
// that is gone, and a repository with another one inside its directory.
func TestWipeOutLeavesData(t *testing.T) {
	t.Run("local storage", func(t *testing.T) {
		env := testenv.Default
		ns := env.Namespace(t, nil)
		repo := newRepository(ns, repoName, "local")
		repo.Spec.DeletionPolicy = storagev1alpha1.RepositoryWipeOut
		env.Create(t, localStorage(ns), passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "x"}), repo)
		waitFinalizer(t, repo, true)
		deleteAndWaitGone(t, repo)
		waitEvent(t, repo, corev1.EventTypeWarning, storagev1alpha1.ReasonDataLeft)
	})
	t.Run("storage gone", func(t *testing.T) {
		f := newMinIOFixture(t)
		repo, kept := f.repository(t, "orphan", "db/logical", storagev1alpha1.RepositoryWipeOut)
		waitFinalizer(t, repo, true)
		deleteAndWaitGone(t, &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "minio"}})
		deleteAndWaitGone(t, repo)
		waitEvent(t, repo, corev1.EventTypeWarning, storagev1alpha1.ReasonDataLeft)
		checkObjects(t, f.store, kept)
	})
	t.Run("credentials gone", func(t *testing.T) {
		f := newMinIOFixture(t)
		repo, kept := f.repository(t, "no-creds", "db/logical", storagev1alpha1.RepositoryWipeOut)
		waitFinalizer(t, repo, true)
		deleteAndWaitGone(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: credsName}})
		deleteAndWaitGone(t, repo)
		waitEvent(t, repo, corev1.EventTypeWarning, storagev1alpha1.ReasonDataLeft)
		checkObjects(t, f.store, kept)
	})
	t.Run("repository inside", func(t *testing.T) {
		f := newMinIOFixture(t)
		outer, keptOuter := f.repository(t, "outer", "db", storagev1alpha1.RepositoryWipeOut)
		// Another cluster's repository, seen only in the storage, deep inside.
		keptInner := f.storedRepository(t, "inner", "db/a/b/c/d/logical")
		waitFinalizer(t, outer, true)
		deleteAndWaitGone(t, outer)
		note := waitEvent(t, outer, corev1.EventTypeWarning, storagev1alpha1.ReasonDataLeft)
		if !strings.Contains(note, "Repository inner") {
			t.Errorf("event note %q, want it to name Repository inner", note)
		}
		checkObjects(t, f.store, append(keptOuter, keptInner...))
	})
}

// TestWipeOutRetries checks that a wipe-out that fails (the credentials
// are wrong) holds the Repository with a Warning and the WipedOut
// condition, and that a later attempt deletes the data once they are right.
func TestWipeOutRetries(t *testing.T) {
	f := newMinIOFixture(t)
	repo, gone := f.repository(t, "retried", "db/logical", storagev1alpha1.RepositoryWipeOut)
	waitFinalizer(t, repo, true)
	secret := setSecretKey(t, f.ns, "wrong-wrong-wrong")

	if err := testenv.Default.Client.Delete(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, repo, corev1.EventTypeWarning, storagev1alpha1.ReasonWipeOutFailed)
	c := testenv.Default.WaitCondition(t, repo, func() []metav1.Condition { return repo.Status.Conditions },
		storagev1alpha1.ConditionWipedOut, metav1.ConditionFalse, storagev1alpha1.ReasonWipeOutFailed)
	if !strings.Contains(c.Message, "deletionPolicy to Retain") {
		t.Errorf("condition message %q, want it to say how to let the Repository go", c.Message)
	}
	checkObjects(t, f.store, gone)

	setSecretKey(t, f.ns, secret)
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(repo), repo)
		return apierrors.IsNotFound(err), fmt.Sprintf("Repository still there (%v), conditions %+v", err, repo.Status.Conditions)
	})
	waitObjects(t, f.store, gone, false)
	waitEvent(t, repo, corev1.EventTypeNormal, storagev1alpha1.ReasonWipedOut)
}

// setSecretKey sets the secret access key of the storage's credentials
// Secret in ns and returns the one it replaced.
func setSecretKey(t *testing.T, ns, key string) string {
	t.Helper()
	var secret corev1.Secret
	ctx := context.Background()
	if err := testenv.Default.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: credsName}, &secret); err != nil {
		t.Fatal(err)
	}
	old := string(secret.Data["AWS_SECRET_ACCESS_KEY"])
	secret.Data["AWS_SECRET_ACCESS_KEY"] = []byte(key)
	if err := testenv.Default.Client.Update(ctx, &secret); err != nil {
		t.Fatal(err)
	}
	return old
}

// TestWipeOutWithSnapshots checks the Repository and its Snapshots deleted
// together, as a namespace deletion does: the Snapshot reconciler lets the
// Snapshots go without a forget Job (the Repository is being deleted), and
// the wipe-out deletes the whole repository, their restic snapshots with it.
func TestWipeOutWithSnapshots(t *testing.T) {
	f := newMinIOFixture(t)
	repo, gone := f.repository(t, "with-snaps", "db/logical", storagev1alpha1.RepositoryWipeOut)
	waitFinalizer(t, repo, true)
	newSnapshot(t, f.ns, "snap-1", repo.Name, storagev1alpha1.SnapshotStatus{
		Phase:      storagev1alpha1.SnapshotSucceeded,
		Components: map[string]storagev1alpha1.ComponentStatus{"dump": {ResticSnapshotID: "0123abcd"}},
	})
	snap := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "snap-1"}}
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(snap), snap); err != nil {
			return false, err.Error()
		}
		return slices.Contains(snap.Finalizers, storagev1alpha1.FinalizerForget), fmt.Sprintf("Snapshot finalizers %v", snap.Finalizers)
	})

	if err := testenv.Default.Client.Delete(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
	deleteAndWaitGone(t, snap)
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(repo), repo)
		return apierrors.IsNotFound(err), fmt.Sprintf("Repository still there (%v)", err)
	})
	waitObjects(t, f.store, gone, false)
	var jobs batchv1.JobList
	if err := testenv.Default.Client.List(context.Background(), &jobs, client.InNamespace(f.ns),
		client.HasLabels{snapshot.LabelForgetOf}); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 0 {
		t.Errorf("Jobs %v, want no forget Job", jobs.Items[0].Name)
	}
}

package backupstorage_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/repository/storage"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// wipeFixture is a Ready S3 BackupStorage in a namespace of its own, and a
// store reaching the whole bucket as the test's own eyes.
type wipeFixture struct {
	bs     *storagev1alpha1.BackupStorage
	bucket storage.Store
}

// newWipeFixture creates a BackupStorage with prefix and policy and waits
// until it is Ready.
func newWipeFixture(t *testing.T, prefix string, policy storagev1alpha1.BackupStorageDeletionPolicy) *wipeFixture {
	t.Helper()
	env := testenv.Default
	minio := servers.StartMinIO(t)
	minio.CreateBucket(t, "backups")
	ns := env.Namespace(t, nil)
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minio"},
		Spec: storagev1alpha1.BackupStorageSpec{
			Storage: storagev1alpha1.StorageBackend{
				Provider: storagev1alpha1.ProviderS3,
				S3: &storagev1alpha1.S3Storage{
					Endpoint: minio.Endpoint, Bucket: "backups", Prefix: prefix, ForcePathStyle: true, SecretName: "s3-creds",
				},
			},
			DeletionPolicy: policy,
		},
	}
	env.Create(t,
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3-creds"},
			StringData: map[string]string{"AWS_ACCESS_KEY_ID": minio.AccessKey, "AWS_SECRET_ACCESS_KEY": minio.SecretKey},
		},
		bs,
	)
	env.WaitCondition(t, bs, func() []metav1.Condition { return bs.Status.Conditions },
		storagev1alpha1.ConditionReady, metav1.ConditionTrue, storagev1alpha1.ReasonStorageAvailable)
	store, err := storage.Open(storage.Config{
		Provider:    storage.ProviderS3,
		S3:          storage.S3Config{Endpoint: minio.Endpoint, Bucket: "backups", ForcePathStyle: true},
		Credentials: storage.Credentials{AccessKeyID: minio.AccessKey, SecretAccessKey: minio.SecretKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &wipeFixture{bs: bs, bucket: store}
}

// put writes a small object at each key of the bucket.
func (f *wipeFixture) put(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := f.bucket.Put(context.Background(), k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
}

// check fails unless each key of the bucket exists (want) or none does.
func (f *wipeFixture) check(t *testing.T, keys []string, want bool) {
	t.Helper()
	for _, k := range keys {
		_, err := f.bucket.Get(context.Background(), k)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get %s: %v", k, err)
		}
		if (err == nil) != want {
			t.Errorf("object %s exists: %v, want %v", k, err == nil, want)
		}
	}
}

// waitFinalizer waits until bs holds the wipe-out finalizer (want) or not.
func waitFinalizer(t *testing.T, bs *storagev1alpha1.BackupStorage, want bool) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(bs), bs); err != nil {
			return false, err.Error()
		}
		has := slices.Contains(bs.Finalizers, storagev1alpha1.FinalizerWipeOut)
		return has == want, fmt.Sprintf("finalizers %v, want %s: %v", bs.Finalizers, storagev1alpha1.FinalizerWipeOut, want)
	})
}

// deleteAndWaitGone deletes obj and waits until the API server let it go.
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

// waitTypedEvent waits until an Event about the BackupStorage has type
// evType and reason.
func waitTypedEvent(t *testing.T, bs *storagev1alpha1.BackupStorage, evType, reason string) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := testenv.Default.Client.List(ctx, &list, client.InNamespace(bs.Namespace)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, ev := range list.Items {
			if ev.Regarding.Kind == "BackupStorage" && ev.Regarding.Name == bs.Name {
				if ev.Type == evType && ev.Reason == reason {
					return true, ""
				}
				seen = append(seen, ev.Type+"/"+ev.Reason)
			}
		}
		return false, fmt.Sprintf("events about %s: %v, want %s/%s", bs.Name, seen, evType, reason)
	})
}

// TestWipeOut checks that deleting a BackupStorage with deletionPolicy
// WipeOut deletes everything under its prefix, metadata.yaml included, and
// nothing beside it, not even under a prefix that starts the same.
func TestWipeOut(t *testing.T) {
	f := newWipeFixture(t, "cluster/a", storagev1alpha1.BackupStorageWipeOut)
	waitFinalizer(t, f.bs, true)
	gone := []string{"cluster/a/metadata.yaml", "cluster/a/team/db/repository.yaml", "cluster/a/team/db/data/00/0011"}
	kept := []string{"cluster/a2/metadata.yaml", "cluster/a.yaml", "cluster/b/team/db/config", "top"}
	f.put(t, append(gone[1:], kept...)...) // metadata.yaml is the reconciler's
	f.check(t, gone, true)

	deleteAndWaitGone(t, f.bs)
	f.check(t, gone, false)
	f.check(t, kept, true)
	waitTypedEvent(t, f.bs, corev1.EventTypeNormal, storagev1alpha1.ReasonWipedOut)
}

// TestWipeOutLeavesData checks the BackupStorages let go with their data
// left: deletionPolicy Delete (no finalizer at all), an empty prefix (the
// whole bucket would go), credentials that are gone.
func TestWipeOutLeavesData(t *testing.T) {
	t.Run("delete policy", func(t *testing.T) {
		t.Parallel()
		f := newWipeFixture(t, "cluster", storagev1alpha1.BackupStorageDelete)
		if slices.Contains(f.bs.Finalizers, storagev1alpha1.FinalizerWipeOut) {
			t.Errorf("finalizers %v of a Delete BackupStorage", f.bs.Finalizers)
		}
		f.put(t, "cluster/team/db/config")
		deleteAndWaitGone(t, f.bs)
		f.check(t, []string{"cluster/metadata.yaml", "cluster/team/db/config"}, true)
	})
	t.Run("empty prefix", func(t *testing.T) {
		t.Parallel()
		f := newWipeFixture(t, "", storagev1alpha1.BackupStorageWipeOut)
		waitFinalizer(t, f.bs, true)
		f.put(t, "team/db/config")
		deleteAndWaitGone(t, f.bs)
		waitTypedEvent(t, f.bs, corev1.EventTypeWarning, storagev1alpha1.ReasonDataLeft)
		f.check(t, []string{"metadata.yaml", "team/db/config"}, true)
	})
	t.Run("credentials gone", func(t *testing.T) {
		t.Parallel()
		f := newWipeFixture(t, "cluster", storagev1alpha1.BackupStorageWipeOut)
		waitFinalizer(t, f.bs, true)
		deleteAndWaitGone(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.bs.Namespace, Name: "s3-creds"}})
		deleteAndWaitGone(t, f.bs)
		waitTypedEvent(t, f.bs, corev1.EventTypeWarning, storagev1alpha1.ReasonDataLeft)
		f.check(t, []string{"cluster/metadata.yaml"}, true)
	})
}

// TestWipeOutRetries checks that a wipe-out that fails (the credentials
// are wrong) holds the BackupStorage with a Warning, and that a later
// attempt deletes the data once they are right.
func TestWipeOutRetries(t *testing.T) {
	f := newWipeFixture(t, "cluster", storagev1alpha1.BackupStorageWipeOut)
	waitFinalizer(t, f.bs, true)
	ctx := context.Background()
	var secret corev1.Secret
	key := client.ObjectKey{Namespace: f.bs.Namespace, Name: "s3-creds"}
	if err := testenv.Default.Client.Get(ctx, key, &secret); err != nil {
		t.Fatal(err)
	}
	right := secret.Data["AWS_SECRET_ACCESS_KEY"]
	secret.Data["AWS_SECRET_ACCESS_KEY"] = []byte("wrong-wrong-wrong")
	if err := testenv.Default.Client.Update(ctx, &secret); err != nil {
		t.Fatal(err)
	}

	if err := testenv.Default.Client.Delete(ctx, f.bs); err != nil {
		t.Fatal(err)
	}
	waitTypedEvent(t, f.bs, corev1.EventTypeWarning, storagev1alpha1.ReasonWipeOutFailed)
	f.check(t, []string{"cluster/metadata.yaml"}, true)

	secret.Data["AWS_SECRET_ACCESS_KEY"] = right
	if err := testenv.Default.Client.Update(ctx, &secret); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(f.bs), f.bs)
		return apierrors.IsNotFound(err), fmt.Sprintf("BackupStorage still there (%v), conditions %+v", err, f.bs.Status.Conditions)
	})
	f.check(t, []string{"cluster/metadata.yaml"}, false)
	waitTypedEvent(t, f.bs, corev1.EventTypeNormal, storagev1alpha1.ReasonWipedOut)
}

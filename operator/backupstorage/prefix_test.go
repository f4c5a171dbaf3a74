package backupstorage_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/repository/storage"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// otherOwner is the metadata.yaml another cluster's BackupStorage wrote.
var otherOwner = storage.StorageMetadata{
	Name: "minio", Namespace: "keepsake-storage", UID: "0b8e6a4e-other-cluster",
	CreatedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
}

// s3StorageAt creates, in a new namespace, credentials and a BackupStorage
// with deletionPolicy WipeOut on prefix of minio's bucket "backups".
func s3StorageAt(t *testing.T, minio *servers.MinIO, prefix string, attach storagev1alpha1.AttachMode) *storagev1alpha1.BackupStorage {
	t.Helper()
	return s3StorageIn(t, minio, testenv.Default.Namespace(t, nil), prefix, attach)
}

// s3StorageIn is s3StorageAt in namespace ns.
func s3StorageIn(t *testing.T, minio *servers.MinIO, ns, prefix string, attach storagev1alpha1.AttachMode) *storagev1alpha1.BackupStorage {
	t.Helper()
	env := testenv.Default
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minio"},
		Spec: storagev1alpha1.BackupStorageSpec{
			Storage: storagev1alpha1.StorageBackend{
				Provider: storagev1alpha1.ProviderS3,
				S3: &storagev1alpha1.S3Storage{
					Endpoint: minio.Endpoint, Bucket: "backups", Prefix: prefix, ForcePathStyle: true, SecretName: "s3-creds",
				},
			},
			DeletionPolicy: storagev1alpha1.BackupStorageWipeOut,
			Attach:         attach,
		},
	}
	env.Create(t,
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3-creds"},
			StringData: map[string]string{"AWS_ACCESS_KEY_ID": minio.AccessKey, "AWS_SECRET_ACCESS_KEY": minio.SecretKey},
		},
		bs,
	)
	return bs
}

// bucketStore reaches the whole bucket "backups" of minio.
func bucketStore(t *testing.T, minio *servers.MinIO) storage.Store {
	t.Helper()
	store, err := storage.Open(storage.Config{
		Provider:    storage.ProviderS3,
		S3:          storage.S3Config{Endpoint: minio.Endpoint, Bucket: "backups", ForcePathStyle: true},
		Credentials: storage.Credentials{AccessKeyID: minio.AccessKey, SecretAccessKey: minio.SecretKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// prefixStore reaches prefix of minio's bucket "backups".
func prefixStore(t *testing.T, minio *servers.MinIO, prefix string) storage.Store {
	t.Helper()
	store, err := storage.Open(storage.Config{
		Provider:    storage.ProviderS3,
		S3:          storage.S3Config{Endpoint: minio.Endpoint, Bucket: "backups", Prefix: prefix, ForcePathStyle: true},
		Credentials: storage.Credentials{AccessKeyID: minio.AccessKey, SecretAccessKey: minio.SecretKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// checkOwner fails unless the metadata.yaml of prefix still names want.
func checkOwner(t *testing.T, minio *servers.MinIO, prefix string, want storage.StorageMetadata) {
	t.Helper()
	m, err := storage.ReadStorageMetadata(context.Background(), prefixStore(t, minio, prefix))
	if err != nil {
		t.Fatalf("read %s/metadata.yaml: %v", prefix, err)
	}
	if m.UID != want.UID || m.Name != want.Name || m.Namespace != want.Namespace {
		t.Errorf("%s/metadata.yaml names %s/%s (uid %s), want %s/%s (uid %s)",
			prefix, m.Namespace, m.Name, m.UID, want.Namespace, want.Name, want.UID)
	}
}

// TestPrefixOfAnotherOwner checks a prefix whose metadata.yaml another
// cluster's BackupStorage wrote: a BackupStorage on it is NotReady with
// PrefixInUse and leaves metadata.yaml alone; one attached with attach:
// Shared is Ready without rewriting it; neither deletes anything of the
// owner's when deleted with deletionPolicy WipeOut.
func TestPrefixOfAnotherOwner(t *testing.T) {
	env := testenv.Default
	minio := servers.StartMinIO(t)
	minio.CreateBucket(t, "backups")
	if err := storage.WriteStorageMetadata(context.Background(), prefixStore(t, minio, "dr"), otherOwner); err != nil {
		t.Fatal(err)
	}
	f := &wipeFixture{bucket: bucketStore(t, minio)}
	owners := []string{"dr/metadata.yaml", "dr/team/db/repository.yaml", "dr/team/db/config", "dr/team/db/data/00/0011"}
	f.put(t, owners[1:]...)
	conds := func(bs *storagev1alpha1.BackupStorage) func() []metav1.Condition {
		return func() []metav1.Condition { return bs.Status.Conditions }
	}

	taker := s3StorageAt(t, minio, "dr", "")
	env.WaitCondition(t, taker, conds(taker), storagev1alpha1.ConditionReady, metav1.ConditionFalse, storagev1alpha1.ReasonPrefixInUse)
	waitEvent(t, taker, storagev1alpha1.ReasonPrefixInUse)
	checkOwner(t, minio, "dr", otherOwner)

	attached := s3StorageAt(t, minio, "dr", storagev1alpha1.AttachShared)
	env.WaitCondition(t, attached, conds(attached), storagev1alpha1.ConditionReady, metav1.ConditionTrue, storagev1alpha1.ReasonPrefixAttached)
	checkOwner(t, minio, "dr", otherOwner)

	for _, bs := range []*storagev1alpha1.BackupStorage{taker, attached} {
		waitFinalizer(t, bs, true)
		deleteAndWaitGone(t, bs)
		waitTypedEvent(t, bs, corev1.EventTypeWarning, storagev1alpha1.ReasonDataLeft)
		f.check(t, owners, true)
	}
	checkOwner(t, minio, "dr", otherOwner)
}

// TestRecreatedStorageReclaimsPrefix is the second `make demo`: the
// namespace of a BackupStorage is deleted and made again with the same
// BackupStorage, whose metadata.yaml (kept, as deletionPolicy Delete keeps
// it) names the old object's UID. Same cluster, namespace and name: it is
// the same storage, and it takes its prefix back; the same names from
// another cluster still get PrefixInUse.
func TestRecreatedStorageReclaimsPrefix(t *testing.T) {
	env := testenv.Default
	minio := servers.StartMinIO(t)
	minio.CreateBucket(t, "backups")
	var kubeSystem corev1.Namespace
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: metav1.NamespaceSystem}, &kubeSystem); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cluster string // the cluster metadata.yaml names
		reason  string // the recreated storage's Ready reason
	}{
		"this cluster":    {cluster: string(kubeSystem.UID), reason: storagev1alpha1.ReasonStorageAvailable},
		"another cluster": {cluster: "a-dr-cluster", reason: storagev1alpha1.ReasonPrefixInUse},
	} {
		t.Run(name, func(t *testing.T) {
			ns := env.Namespace(t, nil)
			prefix := "again-" + ns
			before := storage.StorageMetadata{Kind: "BackupStorage", Name: "minio", Namespace: ns, UID: "uid-of-the-deleted-one",
				Cluster: tc.cluster, CreatedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
			if err := storage.WriteStorageMetadata(context.Background(), prefixStore(t, minio, prefix), before); err != nil {
				t.Fatal(err)
			}
			bs := s3StorageIn(t, minio, ns, prefix, "")
			want := metav1.ConditionTrue
			if tc.reason == storagev1alpha1.ReasonPrefixInUse {
				want = metav1.ConditionFalse
			}
			env.WaitCondition(t, bs, func() []metav1.Condition { return bs.Status.Conditions }, storagev1alpha1.ConditionReady, want, tc.reason)
			after := before
			if want == metav1.ConditionTrue {
				after.UID = string(bs.UID)
			}
			checkOwner(t, minio, prefix, after)
		})
	}
}

// TestWipeOutLeavesNestedOwner checks that the WipeOut of a prefix leaves
// everything when another BackupStorage's prefix lies inside it.
func TestWipeOutLeavesNestedOwner(t *testing.T) {
	f := newWipeFixture(t, "outer", storagev1alpha1.BackupStorageWipeOut)
	waitFinalizer(t, f.bs, true)
	minioPrefix := "outer/inner"
	if err := storage.WriteStorageMetadata(context.Background(), &prefixed{f.bucket, minioPrefix}, otherOwner); err != nil {
		t.Fatal(err)
	}
	kept := []string{"outer/metadata.yaml", "outer/inner/metadata.yaml", "outer/inner/team/db/config", "outer/team/db/config"}
	f.put(t, "outer/inner/team/db/config", "outer/team/db/config")
	deleteAndWaitGone(t, f.bs)
	waitTypedEvent(t, f.bs, corev1.EventTypeWarning, storagev1alpha1.ReasonDataLeft)
	f.check(t, kept, true)
}

// prefixed is a Store under a prefix of another, enough to write one
// metadata.yaml.
type prefixed struct {
	storage.Store
	prefix string
}

// Put writes data at prefix/key.
func (p *prefixed) Put(ctx context.Context, key string, data []byte) error {
	return p.Store.Put(ctx, p.prefix+"/"+key, data)
}

package repository_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/operator/repository"
	"github.com/keepsake-dev/keepsake/repository/storage"
	"github.com/keepsake-dev/keepsake/test/servers"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

// Names of the fixtures.
const (
	passwordSecret = "restic-password"
	credsName      = "s3-creds"
	repoName       = "db-repo"
	repoPath       = "db/logical"
	bucket         = "backups"
	prefix         = "cluster"
)

// newRepository is a Repository of ns in BackupStorage storageName.
func newRepository(ns, name, storageName string) *storagev1alpha1.Repository {
	return &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: storagev1alpha1.RepositorySpec{
			StorageRef:       storagev1alpha1.ObjectReference{Name: storageName},
			Path:             repoPath,
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: passwordSecret},
			AppRef:           &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: "db"},
		},
	}
}

// passwordSecretOf is the encryption Secret of ns with data.
func passwordSecretOf(ns string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: passwordSecret}, StringData: data}
}

// localStorage is a BackupStorage of ns that is Ready without being
// contacted.
func localStorage(ns string) *storagev1alpha1.BackupStorage {
	return &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "local"},
		Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.StorageBackend{
			Provider: storagev1alpha1.ProviderLocal,
			Local: &storagev1alpha1.LocalStorage{VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "backups"},
			}},
		}},
	}
}

// s3Storage is a BackupStorage of ns in the bucket of endpoint, with
// credentials Secret credsName.
func s3Storage(ns, endpoint string) *storagev1alpha1.BackupStorage {
	return &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minio"},
		Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.StorageBackend{
			Provider: storagev1alpha1.ProviderS3,
			S3: &storagev1alpha1.S3Storage{
				Endpoint: endpoint, Bucket: bucket, Prefix: prefix, ForcePathStyle: true, SecretName: credsName,
			},
		}},
	}
}

// waitReady waits until repo's Ready condition has status want and reason,
// and checks the phase.
func waitReady(t *testing.T, repo *storagev1alpha1.Repository, want metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	c := testenv.Default.WaitCondition(t, repo, func() []metav1.Condition { return repo.Status.Conditions },
		storagev1alpha1.ConditionReady, want, reason)
	phase := storagev1alpha1.RepositoryNotReady
	if want == metav1.ConditionTrue {
		phase = storagev1alpha1.RepositoryReady
	}
	if repo.Status.Phase != phase {
		t.Errorf("phase = %s, want %s", repo.Status.Phase, phase)
	}
	return c
}

// TestReadyWritesMetadata checks a Repository in MinIO: Ready, with its
// repository.yaml beside the restic repository, written again when its
// content changes.
func TestReadyWritesMetadata(t *testing.T) {
	env := testenv.Default
	minio := servers.StartMinIO(t)
	minio.CreateBucket(t, bucket)
	ns := env.Namespace(t, nil)
	repo := newRepository(ns, repoName, "minio")
	env.Create(t,
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credsName},
			StringData: map[string]string{"AWS_ACCESS_KEY_ID": minio.AccessKey, "AWS_SECRET_ACCESS_KEY": minio.SecretKey},
		},
		s3Storage(ns, minio.Endpoint),
		passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "not-a-real-password"}),
		repo,
	)
	waitReady(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)

	store, err := storage.Open(storage.Config{
		Provider:    storage.ProviderS3,
		S3:          storage.S3Config{Endpoint: minio.Endpoint, Bucket: bucket, Prefix: prefix, ForcePathStyle: true},
		Credentials: storage.Credentials{AccessKeyID: minio.AccessKey, SecretAccessKey: minio.SecretKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := waitMetadata(t, store, ns, "StatefulSet/"+ns+"/db")
	want := storage.RepositoryMetadata{
		Name: repoName, Namespace: ns, Path: repoPath, StorageRef: ns + "/minio",
		EncryptionSecret: passwordSecret, AppRef: "StatefulSet/" + ns + "/db",
		CreatedAt: repo.CreationTimestamp.UTC(),
	}
	// Times compare with Equal; the rest field by field.
	if !m.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("repository.yaml createdAt = %v, want the Repository's creation %v", m.CreatedAt, want.CreatedAt)
	}
	m.CreatedAt = want.CreatedAt
	if *m != want {
		t.Errorf("repository.yaml = %+v, want %+v", *m, want)
	}
	if repo.Annotations[repository.AnnotationMetadataHash] == "" {
		t.Errorf("annotations %v, want %s", repo.Annotations, repository.AnnotationMetadataHash)
	}

	before := repo.DeepCopy()
	repo.Spec.AppRef.Name = "db-2"
	if err := env.Client.Patch(context.Background(), repo, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	waitMetadata(t, store, ns, "StatefulSet/"+ns+"/db-2")
}

// waitMetadata waits until the repository.yaml of the fixtures' Repository
// in ns names appRef, and returns it.
func waitMetadata(t *testing.T, store storage.Store, ns, appRef string) *storage.RepositoryMetadata {
	t.Helper()
	var m *storage.RepositoryMetadata
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var err error
		m, err = storage.ReadRepositoryMetadata(ctx, store, ns, repoPath)
		if err != nil {
			return false, err.Error()
		}
		return m.AppRef == appRef, fmt.Sprintf("repository.yaml = %+v, want appRef %s", *m, appRef)
	})
	return m
}

// TestNotReady checks the reasons of Repositories that cannot take backups.
func TestNotReady(t *testing.T) {
	tests := map[string]struct {
		// objects creates the namespace's objects besides the Repository,
		// which uses storage.
		objects func(ns string) []client.Object
		// storage is the name of the Repository's BackupStorage.
		storage string
		// wantReason is the Ready condition's reason.
		wantReason string
	}{
		"storage not found": {
			objects:    func(ns string) []client.Object { return nil },
			storage:    "missing",
			wantReason: storagev1alpha1.ReasonStorageNotFound,
		},
		"storage not ready": {
			// The storage's credentials Secret does not exist.
			objects: func(ns string) []client.Object {
				return []client.Object{s3Storage(ns, "http://127.0.0.1:1"), passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "x"})}
			},
			storage:    "minio",
			wantReason: storagev1alpha1.ReasonStorageNotReady,
		},
		"encryption secret missing": {
			objects:    func(ns string) []client.Object { return []client.Object{localStorage(ns)} },
			storage:    "local",
			wantReason: storagev1alpha1.ReasonEncryptionSecretMissing,
		},
		"encryption secret without password": {
			objects: func(ns string) []client.Object {
				return []client.Object{localStorage(ns), passwordSecretOf(ns, map[string]string{"password": "x"})}
			},
			storage:    "local",
			wantReason: repository.ReasonEncryptionKeyMissing,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := testenv.Default
			ns := env.Namespace(t, nil)
			env.Create(t, tc.objects(ns)...)
			repo := newRepository(ns, repoName, tc.storage)
			env.Create(t, repo)
			waitReady(t, repo, metav1.ConditionFalse, tc.wantReason)
		})
	}
}

// TestSecretAppears checks that a Repository waiting for its encryption
// Secret becomes Ready once the Secret is created.
func TestSecretAppears(t *testing.T) {
	env := testenv.Default
	ns := env.Namespace(t, nil)
	repo := newRepository(ns, repoName, "local")
	env.Create(t, localStorage(ns), repo)
	waitReady(t, repo, metav1.ConditionFalse, storagev1alpha1.ReasonEncryptionSecretMissing)
	env.Create(t, passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "not-a-real-password"}))
	waitReady(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
}

// TestSecretWatched checks that a Ready Repository turns NotReady as soon
// as its encryption Secret loses the password or is deleted, and Ready
// again when it is back: Secrets are watched (once its first sync is done
// nothing else wakes the Repository: the re-check is 10 minutes away, past
// every wait of the test).
func TestSecretWatched(t *testing.T) {
	env := testenv.Default
	ns := env.Namespace(t, nil)
	secret := passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "not-a-real-password"})
	repo := newRepository(ns, repoName, "local")
	env.Create(t, localStorage(ns), secret, repo)
	waitReady(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
	sync := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: repository.SyncJobName(repoName)}}
	testenv.WaitExists(t, sync)
	testenv.FinishJob(t, sync, "")
	waitSynced(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonSyncSucceeded)

	ctx := context.Background()
	secret.Data, secret.StringData = map[string][]byte{"password": []byte("x")}, nil
	if err := env.Client.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	waitReady(t, repo, metav1.ConditionFalse, repository.ReasonEncryptionKeyMissing)
	if err := env.Client.Delete(ctx, secret); err != nil {
		t.Fatal(err)
	}
	waitReady(t, repo, metav1.ConditionFalse, storagev1alpha1.ReasonEncryptionSecretMissing)
	env.Create(t, passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "not-a-real-password"}))
	waitReady(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
}

// TestEncryptionSecretOfAnotherNamespace checks encryptionSecret.namespace
// is honoured: the Secret is looked for there (a Secret of the same name in
// the Repository's namespace does not count), and used only when it allows
// the Repository's namespace (docs/multi-namespace.md).
func TestEncryptionSecretOfAnotherNamespace(t *testing.T) {
	env := testenv.Default
	ns, keys := env.Namespace(t, nil), env.Namespace(t, nil)
	repo := newRepository(ns, repoName, "local")
	repo.Spec.EncryptionSecret.Namespace = keys
	// Only the Repository's namespace has the Secret at first: not the one
	// named.
	env.Create(t, localStorage(ns), passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "local"}), repo)
	c := waitReady(t, repo, metav1.ConditionFalse, storagev1alpha1.ReasonEncryptionSecretMissing)
	if want := "encryption secret " + keys + "/" + passwordSecret + " not found"; c.Message != want {
		t.Errorf("message %q, want %q", c.Message, want)
	}
	shared := passwordSecretOf(keys, map[string]string{"RESTIC_PASSWORD": "shared"})
	env.Create(t, shared)
	c = waitReady(t, repo, metav1.ConditionFalse, corev1alpha1.ReasonNamespaceNotAllowed)
	if !strings.Contains(c.Message, corev1alpha1.AnnotationAllowFrom+"="+ns) {
		t.Errorf("message %q does not say how to share the Secret", c.Message)
	}
	shared.Annotations = map[string]string{corev1alpha1.AnnotationAllowFrom: ns}
	if err := env.Client.Update(context.Background(), shared); err != nil {
		t.Fatal(err)
	}
	c = waitReady(t, repo, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
	if !strings.Contains(c.Message, keys+"/"+passwordSecret) {
		t.Errorf("message %q does not name the Secret used", c.Message)
	}
}

// TestSummary checks the counts the status sums up from the Snapshots:
// their sum is the logical size, and the stored size a Job measured in
// the storage stays as the Job wrote it (issue 13: size showed the sum of
// the dumps, 23 MiB, where the bucket held 754 KiB).
func TestSummary(t *testing.T) {
	env := testenv.Default
	ns := env.Namespace(t, nil)
	repo := newRepository(ns, repoName, "local")
	env.Create(t, localStorage(ns), passwordSecretOf(ns, map[string]string{"RESTIC_PASSWORD": "x"}), repo)
	stored := repo.DeepCopy()
	stored.Status.Size, stored.Status.SizeBytes = "754 KiB", 754<<10 // as a sync Job writes it
	if err := env.Client.Status().Patch(context.Background(), stored, client.MergeFrom(repo)); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	at := func(ago time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(-ago)} }
	newSnapshot(t, ns, "oldest", repoName, storagev1alpha1.SnapshotStatus{
		Phase: storagev1alpha1.SnapshotSucceeded, SnapshotTime: at(3 * time.Hour), Size: "1000 B", SizeBytes: 1000})
	newSnapshot(t, ns, "latest-success", repoName, storagev1alpha1.SnapshotStatus{
		Phase: storagev1alpha1.SnapshotSucceeded, SnapshotTime: at(time.Hour), Size: "2.0 KiB", SizeBytes: 2048})
	newSnapshot(t, ns, "failed", repoName, storagev1alpha1.SnapshotStatus{
		Phase: storagev1alpha1.SnapshotFailed, SnapshotTime: at(30 * time.Minute)})
	newSnapshot(t, ns, "running", repoName, storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotRunning})
	newSnapshot(t, ns, "elsewhere", "other-repo", storagev1alpha1.SnapshotStatus{
		Phase: storagev1alpha1.SnapshotSucceeded, SnapshotTime: at(time.Minute), SizeBytes: 1 << 30})

	waitSummary(t, repo, 2, "3.0 KiB", []string{"running", "failed", "latest-success", "oldest"})
	st := repo.Status
	if st.LogicalSizeBytes != 3048 || st.LastBackupTime == nil || !st.LastBackupTime.Equal(at(time.Hour)) {
		t.Errorf("logicalSizeBytes %d lastBackupTime %v, want 3048 and %v", st.LogicalSizeBytes, st.LastBackupTime, at(time.Hour))
	}
	if st.Size != "754 KiB" || st.SizeBytes != 754<<10 {
		t.Errorf("stored size %q (%d bytes), want the 754 KiB the Job measured", st.Size, st.SizeBytes)
	}
	if r := st.RecentSnapshots[2]; r.Phase != storagev1alpha1.SnapshotSucceeded || r.Size != "2.0 KiB" || !r.SnapshotTime.Equal(at(time.Hour)) {
		t.Errorf("recentSnapshots[2] = %+v", r)
	}

	// A deleted Snapshot no longer counts.
	old := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "oldest"}}
	if err := env.Client.Delete(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	waitSummary(t, repo, 1, "2.0 KiB", []string{"running", "failed", "latest-success"})
}

// newSnapshot creates a Snapshot of repo with status st.
func newSnapshot(t *testing.T, ns, name, repo string, st storagev1alpha1.SnapshotStatus) {
	t.Helper()
	createSnapshot(t, &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       storagev1alpha1.SnapshotSpec{Repository: repo, BackupSession: "bks-" + name},
	}, st)
}

// createSnapshot creates snap with status st.
func createSnapshot(t *testing.T, snap *storagev1alpha1.Snapshot, st storagev1alpha1.SnapshotStatus) {
	t.Helper()
	testenv.Default.Create(t, snap)
	before := snap.DeepCopy()
	snap.Status = st
	if err := testenv.Default.Client.Status().Patch(context.Background(), snap, client.MergeFrom(before)); err != nil {
		t.Fatalf("patch status of Snapshot %s: %v", snap.Name, err)
	}
}

// waitSummary waits until repo's status counts count Snapshots of logical size and
// lists names, newest first, as its recent Snapshots.
func waitSummary(t *testing.T, repo *storagev1alpha1.Repository, count int32, size string, names []string) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(repo), repo)
		if err != nil {
			return false, err.Error()
		}
		var got []string
		for _, s := range repo.Status.RecentSnapshots {
			got = append(got, s.Name)
		}
		st := repo.Status
		return st.SnapshotCount == count && st.LogicalSize == size && fmt.Sprint(got) == fmt.Sprint(names),
			fmt.Sprintf("snapshotCount %d logicalSize %q recent %v, want %d %q %v", st.SnapshotCount, st.LogicalSize, got, count, size, names)
	})
}

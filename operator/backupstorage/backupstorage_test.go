package backupstorage_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/repository/storage"
	"github.com/keepsake-dev/keepsake/test/servers"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

// listOnly is an IAM policy that lets the bucket be found but nothing be
// written to it.
const listOnly = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListBucket","s3:GetBucketLocation"],"Resource":["arn:aws:s3:::*"]}]}`

// TestBackupStorage checks each way a BackupStorage can be wrong against a
// real MinIO, and that a right one becomes Ready with its metadata.yaml.
func TestBackupStorage(t *testing.T) {
	env := testenv.Default
	minio := servers.StartMinIO(t)
	minio.CreateBucket(t, "backups")
	ak, sk, token := minio.TemporaryCredentials(t, listOnly)

	tests := map[string]struct {
		// secret is the credentials Secret's data; nil creates no Secret.
		secret map[string]string
		// mutate changes the valid S3 section.
		mutate func(s3 *storagev1alpha1.S3Storage)
		// wantReady is the expected Ready status.
		wantReady metav1.ConditionStatus
		// wantReason is the expected Ready reason.
		wantReason string
	}{
		"valid": {
			secret:     map[string]string{"AWS_ACCESS_KEY_ID": minio.AccessKey, "AWS_SECRET_ACCESS_KEY": minio.SecretKey},
			wantReady:  metav1.ConditionTrue,
			wantReason: storagev1alpha1.ReasonStorageAvailable,
		},
		"operator-style secret keys": {
			secret:     map[string]string{"access_key_id": minio.AccessKey, "secret_access_key": minio.SecretKey},
			wantReady:  metav1.ConditionTrue,
			wantReason: storagev1alpha1.ReasonStorageAvailable,
		},
		"missing secret": {
			wantReady:  metav1.ConditionFalse,
			wantReason: storagev1alpha1.ReasonSecretMissing,
		},
		"secret without keys": {
			secret:     map[string]string{"password": "x"},
			wantReady:  metav1.ConditionFalse,
			wantReason: storagev1alpha1.ReasonSecretMissing,
		},
		"wrong bucket": {
			secret:     map[string]string{"AWS_ACCESS_KEY_ID": minio.AccessKey, "AWS_SECRET_ACCESS_KEY": minio.SecretKey},
			mutate:     func(s3 *storagev1alpha1.S3Storage) { s3.Bucket = "no-such-bucket" },
			wantReady:  metav1.ConditionFalse,
			wantReason: storagev1alpha1.ReasonBucketNotFound,
		},
		"wrong secret key": {
			secret:     map[string]string{"AWS_ACCESS_KEY_ID": minio.AccessKey, "AWS_SECRET_ACCESS_KEY": "wrong-wrong-wrong"},
			wantReady:  metav1.ConditionFalse,
			wantReason: storagev1alpha1.ReasonInvalidCredentials,
		},
		"read-only credentials": {
			secret:     map[string]string{"AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk, "AWS_SESSION_TOKEN": token},
			wantReady:  metav1.ConditionFalse,
			wantReason: storagev1alpha1.ReasonAccessDenied,
		},
		"nothing listening": {
			secret:     map[string]string{"AWS_ACCESS_KEY_ID": minio.AccessKey, "AWS_SECRET_ACCESS_KEY": minio.SecretKey},
			mutate:     func(s3 *storagev1alpha1.S3Storage) { s3.Endpoint = "http://127.0.0.1:1" },
			wantReady:  metav1.ConditionFalse,
			wantReason: storagev1alpha1.ReasonUnreachable,
		},
		"missing CA bundle": {
			secret: map[string]string{"AWS_ACCESS_KEY_ID": minio.AccessKey, "AWS_SECRET_ACCESS_KEY": minio.SecretKey},
			mutate: func(s3 *storagev1alpha1.S3Storage) {
				s3.CABundle = &storagev1alpha1.CABundleSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "no-such-ca"}, Key: "ca.crt",
				}}
			},
			wantReady:  metav1.ConditionFalse,
			wantReason: storagev1alpha1.ReasonCABundleMissing,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := env.Namespace(t, nil)
			if tc.secret != nil {
				env.Create(t, &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3-creds"},
					StringData: tc.secret,
				})
			}
			s3 := &storagev1alpha1.S3Storage{
				Endpoint: minio.Endpoint, Bucket: "backups", Prefix: "cluster/" + ns,
				ForcePathStyle: true, SecretName: "s3-creds",
			}
			if tc.mutate != nil {
				tc.mutate(s3)
			}
			bs := &storagev1alpha1.BackupStorage{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minio"},
				Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.StorageBackend{
					Provider: storagev1alpha1.ProviderS3, S3: s3,
				}},
			}
			env.Create(t, bs)
			env.WaitCondition(t, bs, func() []metav1.Condition { return bs.Status.Conditions },
				storagev1alpha1.ConditionReady, tc.wantReady, tc.wantReason)
			wantPhase := storagev1alpha1.BackupStorageNotReady
			if tc.wantReady == metav1.ConditionTrue {
				wantPhase = storagev1alpha1.BackupStorageReady
				checkMetadata(t, minio, s3.Prefix, bs)
			}
			if bs.Status.Phase != wantPhase {
				t.Errorf("phase = %s, want %s", bs.Status.Phase, wantPhase)
			}
			waitEvent(t, bs, tc.wantReason)
		})
	}
}

// TestStorageRecovers checks that a storage waiting for its Secret becomes
// Ready once the Secret is created, and NotReady at once when it is
// deleted (Secrets are watched; the re-check of a Ready storage is 10
// minutes away).
func TestStorageRecovers(t *testing.T) {
	env := testenv.Default
	minio := servers.StartMinIO(t)
	minio.CreateBucket(t, "late")
	ns := env.Namespace(t, nil)
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minio"},
		Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.StorageBackend{
			Provider: storagev1alpha1.ProviderS3,
			S3: &storagev1alpha1.S3Storage{
				Endpoint: minio.Endpoint, Bucket: "late", ForcePathStyle: true, SecretName: "late-creds",
			},
		}},
	}
	env.Create(t, bs)
	conds := func() []metav1.Condition { return bs.Status.Conditions }
	env.WaitCondition(t, bs, conds, storagev1alpha1.ConditionReady, metav1.ConditionFalse, storagev1alpha1.ReasonSecretMissing)
	creds := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "late-creds"},
		StringData: map[string]string{"AWS_ACCESS_KEY_ID": minio.AccessKey, "AWS_SECRET_ACCESS_KEY": minio.SecretKey},
	}
	env.Create(t, creds)
	env.WaitCondition(t, bs, conds, storagev1alpha1.ConditionReady, metav1.ConditionTrue, storagev1alpha1.ReasonStorageAvailable)
	waitEvent(t, bs, storagev1alpha1.ReasonStorageAvailable)
	if err := env.Client.Delete(context.Background(), creds); err != nil {
		t.Fatal(err)
	}
	env.WaitCondition(t, bs, conds, storagev1alpha1.ConditionReady, metav1.ConditionFalse, storagev1alpha1.ReasonSecretMissing)
}

// waitEvent waits until an Event about obj has the given reason.
func waitEvent(t *testing.T, obj client.Object, reason string) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := testenv.Default.Client.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, ev := range list.Items {
			if ev.Regarding.Name == obj.GetName() {
				if ev.Reason == reason {
					return true, ""
				}
				seen = append(seen, ev.Reason)
			}
		}
		return false, fmt.Sprintf("events about %s have reasons %v, want %s", obj.GetName(), seen, reason)
	})
}

// checkMetadata reads <prefix>/metadata.yaml back from MinIO.
func checkMetadata(t *testing.T, minio *servers.MinIO, prefix string, bs *storagev1alpha1.BackupStorage) {
	t.Helper()
	store, err := storage.Open(storage.Config{
		Provider:    storage.ProviderS3,
		S3:          storage.S3Config{Endpoint: minio.Endpoint, Bucket: "backups", Prefix: prefix, ForcePathStyle: true},
		Credentials: storage.Credentials{AccessKeyID: minio.AccessKey, SecretAccessKey: minio.SecretKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := storage.ReadStorageMetadata(context.Background(), store)
	if err != nil {
		t.Fatalf("read metadata.yaml: %v", err)
	}
	if m.Name != bs.Name || m.Namespace != bs.Namespace || m.UID != string(bs.UID) {
		t.Errorf("metadata.yaml names %s/%s (uid %s), want %s/%s (uid %s)",
			m.Namespace, m.Name, m.UID, bs.Namespace, bs.Name, bs.UID)
	}
}

// TestLocalStorage checks that a local storage, which only Jobs mount, is
// Ready without being contacted.
func TestLocalStorage(t *testing.T) {
	env := testenv.Default
	ns := env.Namespace(t, nil)
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "local"},
		Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.StorageBackend{
			Provider: storagev1alpha1.ProviderLocal,
			Local: &storagev1alpha1.LocalStorage{VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "backups"},
			}},
		}},
	}
	env.Create(t, bs)
	env.WaitCondition(t, bs, func() []metav1.Condition { return bs.Status.Conditions },
		storagev1alpha1.ConditionReady, metav1.ConditionTrue, storagev1alpha1.ReasonStorageAvailable)
}

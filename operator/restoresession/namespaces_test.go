package restoresession_test

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/operator/restoresession"
)

// Restores across namespaces: a BackupStorage shared from a storage
// namespace, and targets in other namespaces.

const (
	sharedStorage = "shared-s3"
	sharedRepo    = "shared-repo"
	credsName     = "s3-creds"
	caName        = "s3-ca"
	testPEM       = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
)

// sharedStorageIn creates, in a namespace of its own, an S3 BackupStorage
// with a credentials Secret and a CA bundle ConfigMap under policy, and in
// ns a Repository on it with a succeeded Snapshot "good". It returns the
// storage namespace.
func sharedStorageIn(t *testing.T, ns string, policy *storagev1alpha1.UsagePolicy) string {
	t.Helper()
	env := testenv.Default
	storageNS := env.Namespace(t, nil)
	env.Create(t,
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: storageNS, Name: credsName},
			StringData: map[string]string{"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "not-a-real-key"},
		},
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: storageNS, Name: caName},
			Data:       map[string]string{"ca.crt": testPEM},
		},
		&storagev1alpha1.BackupStorage{
			ObjectMeta: metav1.ObjectMeta{Namespace: storageNS, Name: sharedStorage},
			Spec: storagev1alpha1.BackupStorageSpec{
				Storage: storagev1alpha1.StorageBackend{
					Provider: storagev1alpha1.ProviderS3,
					S3: &storagev1alpha1.S3Storage{
						Endpoint: "https://s3.invalid", Bucket: "backups", SecretName: credsName,
						CABundle: &storagev1alpha1.CABundleSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: caName}, Key: "ca.crt",
						}},
					},
				},
				UsagePolicy: policy,
			},
		},
		&storagev1alpha1.Repository{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sharedRepo},
			Spec: storagev1alpha1.RepositorySpec{
				StorageRef:       storagev1alpha1.ObjectReference{Name: sharedStorage, Namespace: storageNS},
				Path:             "team/db",
				EncryptionSecret: storagev1alpha1.ObjectReference{Name: secretName},
			},
		},
	)
	snap := snapshotOf(ns, "good", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID})
	snap.Spec.Repository = sharedRepo
	createSnapshot(t, snap)
	return storageNS
}

var allNamespaces = &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: storagev1alpha1.NamespacesFromAll}}

// TestStorageOfAnotherNamespace restores from a BackupStorage of a storage
// namespace that allows all namespaces. Every Secret the Job mounts must
// exist in the Job's own namespace (else its pod waits in FailedMount
// forever): the credentials are a copy owned by the Job, and the CA bundle
// reaches the Job as the file the settings name.
func TestStorageOfAnotherNamespace(t *testing.T) {
	ns := fixtures(t)
	storageNS := sharedStorageIn(t, ns, allNamespaces)
	rs := restore(ns, "restore-shared", "good", func(s *corev1alpha1.RestoreSessionSpec) {
		s.DataSource.Repository.Name = sharedRepo
	})
	testenv.Default.Create(t, rs)
	waitPhase(t, rs, corev1alpha1.RestoreRunning, corev1alpha1.ConditionRestoreJobCreated, corev1alpha1.ReasonJobCreated)
	job := getJob(t, rs)
	ctx := context.Background()
	pod := job.Spec.Template.Spec
	var copied *corev1.Secret
	for _, v := range pod.Volumes {
		if v.Secret == nil || v.Secret.SecretName == authSecret { // a task parameter the test leaves unset
			continue
		}
		var s corev1.Secret
		testenv.Eventually(t, func(ctx context.Context) (bool, string) {
			err := testenv.Default.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: v.Secret.SecretName}, &s)
			return err == nil, "Secret " + v.Secret.SecretName + " the Job mounts in its namespace: " + errString(err)
		})
		if s.Annotations[corev1alpha1.AnnotationCopyOf] != "" {
			copied = s.DeepCopy()
		}
	}
	var source corev1.Secret
	if err := testenv.Default.Client.Get(ctx, client.ObjectKey{Namespace: storageNS, Name: credsName}, &source); err != nil {
		t.Fatal(err)
	}
	if copied == nil || copied.Annotations[corev1alpha1.AnnotationCopyOf] != storageNS+"/"+credsName ||
		!metav1.IsControlledBy(copied, job) || !maps.EqualFunc(copied.Data, source.Data, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("copy of the credentials: %+v; want a copy of %s/%s controlled by Job %s", copied, storageNS, credsName, job.Name)
	}
	repoFlag := envOf(job.Spec.Template.Spec.Containers[0].Env, "KEEPSAKE_REPOSITORY")
	if want := "credentials=/keepsake/shared/" + storageNS + "/" + credsName; !strings.Contains(repoFlag, want) {
		t.Errorf("KEEPSAKE_REPOSITORY = %q, want %s", repoFlag, want)
	}
	checkCABundle(t, rs)
}

// checkCABundle checks the settings file names the CA bundle file, and the
// settings ConfigMap holds it.
func checkCABundle(t *testing.T, rs *corev1alpha1.RestoreSession) {
	t.Helper()
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: rs.Namespace, Name: restoresession.JobName(rs.Name) + "-settings"}
	if err := testenv.Default.Client.Get(context.Background(), key, &cm); err != nil {
		t.Fatal(err)
	}
	var settings struct{ S3 struct{ CABundleFile string } }
	if err := json.Unmarshal([]byte(cm.Data[sharedRepo+".json"]), &settings); err != nil {
		t.Fatal(err)
	}
	if settings.S3.CABundleFile != "/keepsake/settings/"+sharedRepo+".ca.pem" || cm.Data[sharedRepo+".ca.pem"] != testPEM {
		t.Errorf("settings %s, CA file %q; want caBundleFile /keepsake/settings/%s.ca.pem holding the bundle",
			cm.Data[sharedRepo+".json"], cm.Data[sharedRepo+".ca.pem"], sharedRepo)
	}
}

// TestStorageNotAllowed: a BackupStorage whose usage policy leaves the
// restore's namespace out cannot be restored from, even though the
// Repository object exists there.
func TestStorageNotAllowed(t *testing.T) {
	ns := fixtures(t)
	sharedStorageIn(t, ns, nil)
	rs := restore(ns, "restore-not-allowed", "good", func(s *corev1alpha1.RestoreSessionSpec) {
		s.DataSource.Repository.Name = sharedRepo
	})
	testenv.Default.Create(t, rs)
	c := waitPhase(t, rs, corev1alpha1.RestoreInvalid, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonStorageNotAllowed)
	if !strings.Contains(c.Message, "does not allow namespace "+ns) {
		t.Errorf("message %q does not say which namespace is not allowed", c.Message)
	}
	if len(jobsOf(t, rs)) != 0 {
		t.Error("a Job was created")
	}
}

// TestTargetNamespaceConsent: a restore into another namespace's target
// needs that namespace's keepsake.dev/allow-restore-from annotation.
func TestTargetNamespaceConsent(t *testing.T) {
	ns := fixtures(t)
	createSnapshot(t, snapshotOf(ns, "good", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
	env := testenv.Default
	other := env.Namespace(t, nil)
	refused := restore(ns, "restore-elsewhere", "good", func(s *corev1alpha1.RestoreSessionSpec) { s.Target.Namespace = other })
	env.Create(t, refused)
	c := waitPhase(t, refused, corev1alpha1.RestoreInvalid, corev1alpha1.ConditionRestoreSucceeded, corev1alpha1.ReasonNamespaceNotAllowed)
	if !strings.Contains(c.Message, corev1alpha1.AnnotationAllowRestoreFrom) {
		t.Errorf("message %q does not say how to allow it", c.Message)
	}

	consenting := env.Namespace(t, nil)
	var n corev1.Namespace
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: consenting}, &n); err != nil {
		t.Fatal(err)
	}
	n.Annotations = map[string]string{corev1alpha1.AnnotationAllowRestoreFrom: "someone-else, " + ns}
	if err := env.Client.Update(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	env.Create(t, target(consenting))
	allowed := restore(ns, "restore-allowed", "good", func(s *corev1alpha1.RestoreSessionSpec) { s.Target.Namespace = consenting })
	env.Create(t, allowed)
	waitPhase(t, allowed, corev1alpha1.RestoreRunning, corev1alpha1.ConditionRestoreJobCreated, corev1alpha1.ReasonJobCreated)
}

// TestSameSecretTwice: the repository's encryption Secret used as the
// driver's auth Secret too is mounted once; mounted twice at one path, the
// API server refused the Job.
func TestSameSecretTwice(t *testing.T) {
	ns := fixtures(t)
	createSnapshot(t, snapshotOf(ns, "good", storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
	rs := restore(ns, "restore-one-secret", "good", func(s *corev1alpha1.RestoreSessionSpec) {
		s.Addon.Tasks[0].Params["auth"] = secretName
	})
	testenv.Default.Create(t, rs)
	waitPhase(t, rs, corev1alpha1.RestoreRunning, corev1alpha1.ConditionRestoreJobCreated, corev1alpha1.ReasonJobCreated)
	checkSecretMounted(t, getJob(t, rs).Spec.Template.Spec, secretName)
}

func envOf(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

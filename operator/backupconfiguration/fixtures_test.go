package backupconfiguration_test

import (
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// Names of the fixtures every test namespace gets.
const (
	addonName   = "bc-test-db"
	taskName    = "logical-backup"
	storageName = "local"
	policyName  = "keep"
	targetName  = "db"
	secretName  = "restic-password"
	sessionName = "frequent"
	repoName    = "db-repo"
)

var catalogOnce sync.Once

// createCatalog creates, once for the package, the cluster-scoped Addon
// and Function the configurations use.
func createCatalog(t *testing.T) {
	catalogOnce.Do(func() {
		testenv.Default.Create(t,
			&addonsv1alpha1.Function{
				ObjectMeta: metav1.ObjectMeta{Name: addonName + "-backup"},
				Spec:       addonsv1alpha1.FunctionSpec{Image: "db-tools:1"},
			},
			&addonsv1alpha1.Addon{
				ObjectMeta: metav1.ObjectMeta{Name: addonName},
				Spec: addonsv1alpha1.AddonSpec{BackupTasks: []addonsv1alpha1.Task{{
					Name: taskName, Function: addonName + "-backup", Driver: "/drivers/db",
					Parameters: []addonsv1alpha1.ParameterDefinition{
						{Name: "url", Required: true},
						{Name: "databases", Default: ptr.To("all")},
						{Name: "authSecret", Type: addonsv1alpha1.ParameterSecret},
					},
				}}},
			})
	})
}

// fixtures creates a namespace holding what a valid configuration needs:
// the target StatefulSet, a local BackupStorage, a RetentionPolicy and the
// encryption Secret. It returns the namespace.
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
		localStorage(ns, storageName, nil),
		&storagev1alpha1.RetentionPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: policyName},
			Spec: storagev1alpha1.RetentionPolicySpec{
				SuccessfulSnapshots: &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](3)},
			},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secretName},
			StringData: map[string]string{"RESTIC_PASSWORD": "not-a-real-password"},
		},
	)
	return ns
}

// localStorage is a BackupStorage on a local volume, which the operator
// reports Ready without contacting anything.
func localStorage(ns, name string, policy *storagev1alpha1.UsagePolicy) *storagev1alpha1.BackupStorage {
	return &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: storagev1alpha1.BackupStorageSpec{
			Storage: storagev1alpha1.StorageBackend{
				Provider: storagev1alpha1.ProviderLocal,
				Local: &storagev1alpha1.LocalStorage{VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "backups"},
				}},
			},
			UsagePolicy: policy,
		},
	}
}

// validConfig is a BackupConfiguration that the fixtures of ns satisfy.
func validConfig(ns string) *corev1alpha1.BackupConfiguration {
	return &corev1alpha1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-backup"},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target: storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: targetName},
			Backends: []corev1alpha1.BackendReference{{
				Name:            "main",
				StorageRef:      storagev1alpha1.ObjectReference{Name: storageName},
				RetentionPolicy: &storagev1alpha1.ObjectReference{Name: policyName},
			}},
			Sessions: []corev1alpha1.Session{session(sessionName, repoName)},
		},
	}
}

// session is a valid session backing up into one repository.
func session(name, repo string) corev1alpha1.Session {
	return corev1alpha1.Session{
		Name: name,
		Scheduler: corev1alpha1.SchedulerSpec{
			Schedule:                   "*/5 * * * *",
			TimeZone:                   ptr.To("Europe/Paris"),
			ConcurrencyPolicy:          "Forbid",
			StartingDeadlineSeconds:    ptr.To[int64](60),
			SuccessfulJobsHistoryLimit: ptr.To[int32](2),
			FailedJobsHistoryLimit:     ptr.To[int32](3),
		},
		Addon: corev1alpha1.AddonInfo{Name: addonName, Tasks: []corev1alpha1.TaskReference{{
			Name: taskName, Params: map[string]string{"url": "http://db:8086"},
		}}},
		Repositories: []corev1alpha1.RepositoryInfo{{
			Name: repo, Backend: "main", Directory: repo,
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: secretName},
		}},
	}
}

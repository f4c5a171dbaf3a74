package backupconfiguration_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

// TestInvalidConfigurations checks, for each kind of mistake, the condition
// and reason users see, the phase, and that nothing is scheduled.
func TestInvalidConfigurations(t *testing.T) {
	env := testenv.Default
	tests := map[string]struct {
		// mutate breaks the valid configuration of namespace ns.
		mutate func(t *testing.T, ns string, bc *corev1alpha1.BackupConfiguration)
		// wantCondition is the condition that reports the mistake.
		wantCondition string
		// wantReason is that condition's reason, and the Ready condition's.
		wantReason string
		// wantPhase is Invalid when the spec must change, NotReady when a
		// dependency is missing.
		wantPhase corev1alpha1.BackupConfigurationPhase
		// wantMessage, with the namespace for %s, is part of the Ready
		// condition's message when set: it names the object and the key.
		wantMessage string
	}{
		"encryption secret without the password": {
			mutate: func(t *testing.T, ns string, bc *corev1alpha1.BackupConfiguration) {
				testenv.Default.Create(t, &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-password"},
					StringData: map[string]string{"PASSWORD": "misnamed"},
				})
				bc.Spec.Sessions[0].Repositories[0].EncryptionSecret.Name = "no-password"
			},
			wantCondition: corev1alpha1.ConditionSecretsFound,
			wantReason:    corev1alpha1.ReasonSecretKeyMissing,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
			wantMessage:   "Secret %s/no-password has no key RESTIC_PASSWORD",
		},
		"missing encryption secret": {
			mutate: func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				bc.Spec.Sessions[0].Repositories[0].EncryptionSecret.Name = "no-such-secret"
			},
			wantCondition: corev1alpha1.ConditionSecretsFound,
			wantReason:    corev1alpha1.ReasonSecretNotFound,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
			wantMessage:   "encryptionSecret: Secret %s/no-such-secret not found",
		},
		"secret parameter naming a missing Secret": {
			mutate: func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				bc.Spec.Sessions[0].Addon.Tasks[0].Params["authSecret"] = "db-auth"
			},
			wantCondition: corev1alpha1.ConditionSecretsFound,
			wantReason:    corev1alpha1.ReasonSecretNotFound,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
			wantMessage:   "parameter authSecret: Secret %s/db-auth not found",
		},
		"repository whose location another Repository holds": {
			mutate: func(t *testing.T, ns string, _ *corev1alpha1.BackupConfiguration) {
				// Of two Repositories created in the same second, the one
				// whose name sorts first holds the location.
				older := &storagev1alpha1.Repository{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a-older"},
					Spec: storagev1alpha1.RepositorySpec{
						StorageRef:       storagev1alpha1.ObjectReference{Name: storageName},
						Path:             repoName,
						EncryptionSecret: storagev1alpha1.ObjectReference{Name: secretName},
					},
				}
				testenv.Default.Create(t, older)
				testenv.Default.WaitCondition(t, older, func() []metav1.Condition { return older.Status.Conditions },
					storagev1alpha1.ConditionReady, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
			},
			wantCondition: corev1alpha1.ConditionRepositoryReady,
			wantReason:    corev1alpha1.ReasonRepositoryNotReady,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
			wantMessage:   "Repository %s/" + repoName + " is not Ready: LocationInUse",
		},
		"unknown addon": {
			mutate: func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				bc.Spec.Sessions[0].Addon.Name = "no-such-addon"
			},
			wantCondition: corev1alpha1.ConditionAddonResolved,
			wantReason:    corev1alpha1.ReasonAddonNotFound,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
		},
		"unknown task": {
			mutate: func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				bc.Spec.Sessions[0].Addon.Tasks[0].Name = "physical-backup"
			},
			wantCondition: corev1alpha1.ConditionAddonResolved,
			wantReason:    corev1alpha1.ReasonTaskNotFound,
			wantPhase:     corev1alpha1.BackupConfigurationInvalid,
		},
		"missing required parameter": {
			mutate: func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				bc.Spec.Sessions[0].Addon.Tasks[0].Params = nil
			},
			wantCondition: corev1alpha1.ConditionAddonResolved,
			wantReason:    corev1alpha1.ReasonMissingRequiredParameter,
			wantPhase:     corev1alpha1.BackupConfigurationInvalid,
		},
		"unknown parameter": {
			mutate: func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				bc.Spec.Sessions[0].Addon.Tasks[0].Params["colour"] = "blue"
			},
			wantCondition: corev1alpha1.ConditionAddonResolved,
			wantReason:    corev1alpha1.ReasonUnknownParameter,
			wantPhase:     corev1alpha1.BackupConfigurationInvalid,
			wantMessage:   "has no parameter colour; its parameters are: url, databases, authSecret",
		},
		"unknown time zone": {
			mutate: func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				bc.Spec.Sessions[0].Scheduler.TimeZone = ptr.To("Mars/Olympus")
			},
			wantCondition: corev1alpha1.ConditionScheduleReady,
			wantReason:    corev1alpha1.ReasonInvalidTimeZone,
			wantPhase:     corev1alpha1.BackupConfigurationInvalid,
		},
		"missing target": {
			mutate:        func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) { bc.Spec.Target.Name = "no-such-db" },
			wantCondition: corev1alpha1.ConditionTargetFound,
			wantReason:    corev1alpha1.ReasonTargetNotFound,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
		},
		"target of an unknown kind": {
			mutate: func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				bc.Spec.Target.APIGroup, bc.Spec.Target.Kind = "hyperbytedb.example.com", "HyperbytedbCluster"
			},
			wantCondition: corev1alpha1.ConditionTargetFound,
			wantReason:    corev1alpha1.ReasonTargetNotFound,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
		},
		"target the operator may not read": {
			mutate: func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				// The operator may get pods (the lock keeper's Roles need
				// it) but not ReplicationControllers.
				bc.Spec.Target.APIGroup, bc.Spec.Target.Kind = "", "ReplicationController"
			},
			wantCondition: corev1alpha1.ConditionTargetFound,
			wantReason:    corev1alpha1.ReasonTargetNotAccessible,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
		},
		"missing storage": {
			mutate: func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				bc.Spec.Backends[0].StorageRef.Name = "no-such-storage"
			},
			wantCondition: corev1alpha1.ConditionStorageReady,
			wantReason:    corev1alpha1.ReasonStorageNotFound,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
		},
		"storage of another namespace that allows only its own": {
			mutate: func(t *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				other := testenv.Default.Namespace(t, nil)
				testenv.Default.Create(t, localStorage(other, "shared", &storagev1alpha1.UsagePolicy{
					AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: storagev1alpha1.NamespacesFromSame},
				}))
				bc.Spec.Backends[0].StorageRef = storagev1alpha1.ObjectReference{Namespace: other, Name: "shared"}
			},
			wantCondition: corev1alpha1.ConditionStorageReady,
			wantReason:    corev1alpha1.ReasonStorageNotAllowed,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
		},
		"storage not ready": {
			mutate: func(t *testing.T, ns string, bc *corev1alpha1.BackupConfiguration) {
				testenv.Default.Create(t, &storagev1alpha1.BackupStorage{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3-without-secret"},
					Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.StorageBackend{
						Provider: storagev1alpha1.ProviderS3,
						S3: &storagev1alpha1.S3Storage{
							Endpoint: "http://127.0.0.1:1", Bucket: "backups", SecretName: "no-such-secret",
						},
					}},
				})
				bc.Spec.Backends[0].StorageRef.Name = "s3-without-secret"
			},
			wantCondition: corev1alpha1.ConditionStorageReady,
			wantReason:    corev1alpha1.ReasonStorageNotReady,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
		},
		"missing retention policy": {
			mutate: func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				bc.Spec.Backends[0].RetentionPolicy.Name = "no-such-policy"
			},
			wantCondition: corev1alpha1.ConditionStorageReady,
			wantReason:    corev1alpha1.ReasonRetentionPolicyNotFound,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
		},
		"repository of the same name elsewhere": {
			mutate: func(t *testing.T, ns string, bc *corev1alpha1.BackupConfiguration) {
				testenv.Default.Create(t, &storagev1alpha1.Repository{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: repoName},
					Spec: storagev1alpha1.RepositorySpec{
						StorageRef:       storagev1alpha1.ObjectReference{Name: storageName},
						Path:             "someone-else",
						EncryptionSecret: storagev1alpha1.ObjectReference{Name: secretName},
					},
				})
			},
			wantCondition: corev1alpha1.ConditionRepositoryReady,
			wantReason:    corev1alpha1.ReasonRepositoryConflict,
			wantPhase:     corev1alpha1.BackupConfigurationNotReady,
		},
		"two sessions describing one repository differently": {
			mutate: func(_ *testing.T, _ string, bc *corev1alpha1.BackupConfiguration) {
				other := session("daily", repoName)
				other.Repositories[0].Directory = "elsewhere"
				bc.Spec.Sessions = append(bc.Spec.Sessions, other)
			},
			wantCondition: corev1alpha1.ConditionRepositoryReady,
			wantReason:    corev1alpha1.ReasonRepositoryConflict,
			wantPhase:     corev1alpha1.BackupConfigurationInvalid,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := fixtures(t)
			bc := validConfig(ns)
			tc.mutate(t, ns, bc)
			env.Create(t, bc)
			conds := func() []metav1.Condition { return bc.Status.Conditions }
			env.WaitCondition(t, bc, conds, tc.wantCondition, metav1.ConditionFalse, tc.wantReason)
			ready := env.WaitCondition(t, bc, conds, corev1alpha1.ConditionReady, metav1.ConditionFalse, tc.wantReason)
			if bc.Status.Phase != tc.wantPhase {
				t.Errorf("phase = %s, want %s", bc.Status.Phase, tc.wantPhase)
			}
			want := tc.wantMessage
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, ns)
			}
			if !strings.Contains(ready.Message, want) {
				t.Errorf("Ready message %q, want it to contain %q", ready.Message, want)
			}
			assertNothingScheduled(t, ns)
		})
	}
}

// TestStorageOfAnotherNamespaceThatAllowsAll checks the usage policy's
// positive side: a storage shared with every namespace can be used.
func TestStorageOfAnotherNamespaceThatAllowsAll(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	other := env.Namespace(t, nil)
	env.Create(t, localStorage(other, "shared", &storagev1alpha1.UsagePolicy{
		AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: storagev1alpha1.NamespacesFromAll},
	}))
	bc := validConfig(ns)
	bc.Spec.Backends[0].StorageRef = storagev1alpha1.ObjectReference{Namespace: other, Name: "shared"}
	env.Create(t, bc)
	env.WaitCondition(t, bc, func() []metav1.Condition { return bc.Status.Conditions },
		corev1alpha1.ConditionReady, metav1.ConditionTrue, corev1alpha1.ReasonAllReady)
}

// assertNothingScheduled fails when ns holds a CronJob or a BackupSession.
func assertNothingScheduled(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	var cronJobs batchv1.CronJobList
	var sessions corev1alpha1.BackupSessionList
	for _, list := range []client.ObjectList{&cronJobs, &sessions} {
		if err := testenv.Default.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
	}
	if len(cronJobs.Items)+len(sessions.Items) > 0 {
		t.Errorf("an invalid configuration scheduled %d CronJobs and %d BackupSessions",
			len(cronJobs.Items), len(sessions.Items))
	}
}

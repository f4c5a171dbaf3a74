package functions

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// TestTrigger creates BackupSessions on a real kube-apiserver, where the
// CRD's schema judges them.
func TestTrigger(t *testing.T) {
	servers.SkipIfShort(t, "kube-apiserver")
	api, err := servers.StartAPIServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Stop() })
	s := runtime.NewScheme()
	if err := corev1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(api.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := Trigger(ctx, c, "default", "db-backup", "hourly"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("trigger without its BackupConfiguration: err = %v, want not found", err)
	}
	bc := triggerConfig()
	if err := c.Create(ctx, bc); err != nil {
		t.Fatal(err)
	}
	a, err := Trigger(ctx, c, "default", "db-backup", "hourly")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Trigger(ctx, c, "default", "db-backup", "hourly")
	if err != nil {
		t.Fatal(err)
	}
	if a.Name == b.Name || !strings.HasPrefix(a.Name, "db-backup-hourly-") {
		t.Fatalf("names %q and %q: want two distinct db-backup-hourly-* sessions", a.Name, b.Name)
	}
	var list corev1alpha1.BackupSessionList
	if err := c.List(ctx, &list, client.InNamespace("default"), client.MatchingLabels{
		corev1alpha1.LabelBackupConfiguration: "db-backup", corev1alpha1.LabelSession: "hourly",
	}); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 || list.Items[0].Spec.Session != "hourly" {
		t.Fatalf("labelled sessions: %+v", list.Items)
	}
	// Owned by the configuration, so the garbage collector deletes them
	// with it.
	for _, b := range list.Items {
		if refs := b.OwnerReferences; len(refs) != 1 || refs[0].UID != bc.UID || refs[0].Kind != "BackupConfiguration" {
			t.Errorf("BackupSession %s owners = %+v, want BackupConfiguration %s", b.Name, refs, bc.UID)
		}
	}
	// A session name the schema refuses surfaces as the API server's error.
	if _, err := Trigger(ctx, c, "default", "db-backup", strings.Repeat("x", 41)); err == nil ||
		!strings.Contains(err.Error(), "spec.session") {
		t.Fatalf("over-long session name: err = %v, want the schema's spec.session error", err)
	}
}

// triggerConfig is the smallest BackupConfiguration db-backup the schema
// accepts.
func triggerConfig() *corev1alpha1.BackupConfiguration {
	return &corev1alpha1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db-backup"},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target:   storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: "db"},
			Backends: []corev1alpha1.BackendReference{{Name: "main", StorageRef: storagev1alpha1.ObjectReference{Name: "s3"}}},
			Sessions: []corev1alpha1.Session{{
				Name:      "hourly",
				Scheduler: corev1alpha1.SchedulerSpec{Schedule: "@hourly"},
				Addon:     corev1alpha1.AddonInfo{Name: "db", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup"}}},
				Repositories: []corev1alpha1.RepositoryInfo{{
					Name: "db", Backend: "main", Directory: "db",
					EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic"},
				}},
			}},
		},
	}
}

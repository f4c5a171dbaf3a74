package functions

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
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
	// A session name the schema refuses surfaces as the API server's error.
	if _, err := Trigger(ctx, c, "default", "db-backup", strings.Repeat("x", 41)); err == nil ||
		!strings.Contains(err.Error(), "spec.session") {
		t.Fatalf("over-long session name: err = %v, want the schema's spec.session error", err)
	}
}

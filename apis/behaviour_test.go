package apis_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "apis-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// typedClient reads Keepsake objects into their Go types, so the tests also
// catch a Go type that disagrees with its generated schema.
func typedClient(t *testing.T) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		storagev1alpha1.AddToScheme, corev1alpha1.AddToScheme, addonsv1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(apiServer.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDefaults checks the defaults users get for fields they leave out.
func TestDefaults(t *testing.T) {
	ns := newNamespace(t)
	c := typedClient(t)

	storage := example(t, "backupstorage", ns)
	unstructured.RemoveNestedField(storage.Object, "spec", "deletionPolicy")
	create(t, storage)
	var bs storagev1alpha1.BackupStorage
	get(t, c, storage, &bs)
	if bs.Spec.DeletionPolicy != storagev1alpha1.BackupStorageRetain {
		t.Errorf("BackupStorage deletionPolicy defaulted to %q, want Retain", bs.Spec.DeletionPolicy)
	}

	config := example(t, "backupconfiguration", ns)
	create(t, config)
	var bc corev1alpha1.BackupConfiguration
	get(t, c, config, &bc)
	s := bc.Spec.Sessions[0]
	if s.Scheduler.ConcurrencyPolicy != "Forbid" || s.SessionHistoryLimit != 3 {
		t.Errorf("session defaults: concurrencyPolicy %q, sessionHistoryLimit %d; want Forbid, 3",
			s.Scheduler.ConcurrencyPolicy, s.SessionHistoryLimit)
	}
	if s.BackupTimeout == nil || s.BackupTimeout.Duration.Minutes() != 30 {
		t.Errorf("backupTimeout read back as %v, want 30m", s.BackupTimeout)
	}

	restore := example(t, "restoresession", ns)
	unstructured.RemoveNestedField(restore.Object, "spec", "dataSource", "snapshot")
	create(t, restore)
	var rs corev1alpha1.RestoreSession
	get(t, c, restore, &rs)
	if rs.Spec.DataSource.Snapshot != corev1alpha1.SnapshotLatest {
		t.Errorf("dataSource.snapshot defaulted to %q, want latest", rs.Spec.DataSource.Snapshot)
	}

	snap := example(t, "snapshot", ns)
	unstructured.RemoveNestedField(snap.Object, "spec", "type")
	unstructured.RemoveNestedField(snap.Object, "spec", "deletionPolicy")
	create(t, snap)
	var sn storagev1alpha1.Snapshot
	get(t, c, snap, &sn)
	if sn.Spec.Type != storagev1alpha1.SnapshotFull || sn.Spec.DeletionPolicy != storagev1alpha1.SnapshotWipeOut {
		t.Errorf("snapshot defaults: type %q deletionPolicy %q; want Full, WipeOut", sn.Spec.Type, sn.Spec.DeletionPolicy)
	}
}

// TestImmutableSpecs checks that what identifies a run cannot be edited
// after the fact.
func TestImmutableSpecs(t *testing.T) {
	cases := map[string]struct {
		example string   // docs/examples/<example>.yaml
		path    []string // field to change after creation
		value   string   // new value
		wantErr string   // substring of the rejection
	}{
		"backup session's session":   {example: "backupsession", path: []string{"spec", "session"}, value: "daily", wantErr: "backupConfiguration and session are immutable"},
		"restore session's snapshot": {example: "restoresession", path: []string{"spec", "dataSource", "snapshot"}, value: "other", wantErr: "spec is immutable"},
		"snapshot's repository":      {example: "snapshot", path: []string{"spec", "repository"}, value: "other", wantErr: "repository and backupSession are immutable"},
	}
	ns := newNamespace(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			obj := example(t, tc.example, ns)
			create(t, obj)
			if err := unstructured.SetNestedField(obj.Object, tc.value, tc.path...); err != nil {
				t.Fatal(err)
			}
			err := k8s.Update(context.Background(), obj)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("update of %v: got %v, want error containing %q", tc.path, err, tc.wantErr)
			}
		})
	}
}

// TestExplain checks that `kubectl explain` shows the field documentation
// users rely on.
func TestExplain(t *testing.T) {
	out := explain(t, "backupconfiguration.spec.sessions")
	t.Logf("kubectl explain backupconfiguration.spec.sessions:\n%s", out)
	for _, want := range []string{
		"GROUP:      core.keepsake.dev",
		"Sessions are the backups to take, each on its own schedule.",
		"scheduler\t<Object> -required-",
		"Scheduler says when the session runs.",
		"backupTimeout\t<string>",
		"sessionHistoryLimit\t<integer>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl explain output lacks %q", want)
		}
	}
}

// explain runs `kubectl explain field`, retrying while the API server is
// still publishing the CRDs' OpenAPI (it lags their Established condition).
func explain(t *testing.T, field string) string {
	t.Helper()
	admin, err := apiServer.Env.ControlPlane.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubectl, err := admin.Kubectl()
	if err != nil {
		t.Fatal(err)
	}
	var out, lastErr string
	err = wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) {
			stdout, stderr, err := kubectl.Run("explain", field)
			if err != nil {
				data, _ := io.ReadAll(stderr)
				lastErr = fmt.Sprintf("%v: %s", err, data)
				return false, nil
			}
			data, err := io.ReadAll(stdout)
			out = string(data)
			return true, err
		})
	if err != nil {
		t.Fatalf("kubectl explain %s: %v (last attempt: %s)", field, err, lastErr)
	}
	return out
}

func create(t *testing.T, obj *unstructured.Unstructured) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), err)
	}
}

func get(t *testing.T, c client.Client, obj *unstructured.Unstructured, into client.Object) {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), into); err != nil {
		t.Fatalf("get %s %s: %v", obj.GetKind(), obj.GetName(), err)
	}
}

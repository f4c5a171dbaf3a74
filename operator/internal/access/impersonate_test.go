package access

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// objects are what a namespace holds when a Job runs there.
type objects struct {
	ns       string
	config   *corev1alpha1.BackupConfiguration
	session  *corev1alpha1.BackupSession
	restore  *corev1alpha1.RestoreSession
	snapshot *storagev1alpha1.Snapshot
	secret   *corev1.Secret
}

// call is one API call a runtime command makes (or must not be able to),
// made with client c on the objects of o.
type call func(ctx context.Context, c client.Client, o *objects) error

// calls are the API calls of the runtime commands (functions/trigger.go,
// kubereport_*.go, sync.go), and some they must not make, by name.
var calls = map[string]call{
	"get BackupConfiguration": func(ctx context.Context, c client.Client, o *objects) error {
		return c.Get(ctx, client.ObjectKeyFromObject(o.config), &corev1alpha1.BackupConfiguration{})
	},
	"create BackupSession": func(ctx context.Context, c client.Client, o *objects) error {
		return c.Create(ctx, &corev1alpha1.BackupSession{
			ObjectMeta: metav1.ObjectMeta{Namespace: o.ns, GenerateName: "triggered-"},
			Spec:       corev1alpha1.BackupSessionSpec{BackupConfiguration: o.config.Name, Session: "daily"},
		})
	},
	"delete BackupSession": func(ctx context.Context, c client.Client, o *objects) error {
		return c.Delete(ctx, o.session.DeepCopy())
	},
	"list Snapshots of a session": func(ctx context.Context, c client.Client, o *objects) error {
		return c.List(ctx, &storagev1alpha1.SnapshotList{}, client.InNamespace(o.ns),
			client.MatchingLabels{corev1alpha1.LabelBackupSession: o.session.Name})
	},
	"get Snapshot": func(ctx context.Context, c client.Client, o *objects) error {
		return c.Get(ctx, client.ObjectKeyFromObject(o.snapshot), &storagev1alpha1.Snapshot{})
	},
	"create Snapshot": func(ctx context.Context, c client.Client, o *objects) error {
		return c.Create(ctx, &storagev1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Namespace: o.ns, GenerateName: "discovered-"},
			Spec:       storagev1alpha1.SnapshotSpec{Repository: "repo"},
		})
	},
	"patch Snapshot status": func(ctx context.Context, c client.Client, o *objects) error {
		return c.Status().Patch(ctx, o.snapshot.DeepCopy(), mergePatch(`{"status":{"components":{"db":{"phase":"Running"}}}}`))
	},
	"update Snapshot status": func(ctx context.Context, c client.Client, o *objects) error {
		snap := &storagev1alpha1.Snapshot{}
		if err := api.Get(ctx, client.ObjectKeyFromObject(o.snapshot), snap); err != nil {
			return fmt.Errorf("read as the administrator: %w", err)
		}
		snap.Status.TotalComponents = 1
		return c.Status().Update(ctx, snap)
	},
	"patch Snapshot": func(ctx context.Context, c client.Client, o *objects) error {
		return c.Patch(ctx, o.snapshot.DeepCopy(), mergePatch(`{"metadata":{"annotations":{"`+storagev1alpha1.AnnotationForgotten+`":"true"}}}`))
	},
	"delete Snapshot": func(ctx context.Context, c client.Client, o *objects) error {
		return c.Delete(ctx, o.snapshot.DeepCopy())
	},
	"get RestoreSession": func(ctx context.Context, c client.Client, o *objects) error {
		return c.Get(ctx, client.ObjectKeyFromObject(o.restore), &corev1alpha1.RestoreSession{})
	},
	"patch RestoreSession status": func(ctx context.Context, c client.Client, o *objects) error {
		return c.Status().Patch(ctx, o.restore.DeepCopy(), mergePatch(`{"status":{"components":{"db":{"phase":"Running"}}}}`))
	},
	// The lock keeper asks about the pod a lock names, which is often gone:
	// NotFound comes only past the authorizer, so it counts as allowed.
	"get Pod": func(ctx context.Context, c client.Client, o *objects) error {
		err := c.Get(ctx, client.ObjectKey{Namespace: o.ns, Name: "backup-pod-gone"}, &corev1.Pod{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	},
	"get Secret": func(ctx context.Context, c client.Client, o *objects) error {
		return c.Get(ctx, client.ObjectKeyFromObject(o.secret), &corev1.Secret{})
	},
	"create Job": func(ctx context.Context, c client.Client, o *objects) error {
		return c.Create(ctx, &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Namespace: o.ns, GenerateName: "escape-"},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "x", Image: "x"}},
			}}},
		})
	},
}

func mergePatch(s string) client.Patch { return client.RawPatch(types.MergePatchType, []byte(s)) }

// TestEachKindMakesItsCallsOnly impersonates the ServiceAccount of each
// kind of Job against the API server: it can make every call its runtime
// command makes, in the order the command makes them, and is refused the
// calls it has no business making. Before each kind had its own, one
// shared Role let the trigger and the backup Job delete Snapshots.
func TestEachKindMakesItsCallsOnly(t *testing.T) {
	tests := map[string]struct {
		// kind is the identity under test.
		kind Kind
		// allowed are the runtime's calls, in order (delete last).
		allowed []string
		// refused must answer Forbidden.
		refused []string
	}{
		"trigger": {
			kind:    Trigger,
			allowed: []string{"get BackupConfiguration", "create BackupSession"},
			refused: []string{"get Snapshot", "list Snapshots of a session", "delete Snapshot", "patch Snapshot status",
				"get Secret", "get Pod", "delete BackupSession", "create Job"},
		},
		"backup": {
			kind:    Backup,
			allowed: []string{"get Pod", "list Snapshots of a session", "get Snapshot", "patch Snapshot status"},
			refused: []string{"delete Snapshot", "patch Snapshot", "create Snapshot", "create BackupSession",
				"delete BackupSession", "get RestoreSession", "patch RestoreSession status", "get Secret", "create Job"},
		},
		"restore": {
			kind:    Restore,
			allowed: []string{"get Pod", "get RestoreSession", "patch RestoreSession status"},
			refused: []string{"create BackupSession", "list Snapshots of a session", "get Snapshot", "patch Snapshot status", "delete Snapshot",
				"get Secret", "create Job"},
		},
		"retention": {
			kind:    Retention,
			allowed: []string{"get Pod", "list Snapshots of a session", "patch Snapshot", "delete Snapshot"},
			refused: []string{"create BackupSession", "create Snapshot", "patch Snapshot status", "patch RestoreSession status",
				"delete BackupSession", "get Secret", "create Job"},
		},
		"forget": {
			kind:    Forget,
			allowed: []string{"get Pod", "list Snapshots of a session", "patch Snapshot status"},
			refused: []string{"get Snapshot", "delete Snapshot", "patch Snapshot", "create BackupSession", "get Secret", "create Job"},
		},
		"sync": {
			kind:    Sync,
			allowed: []string{"get Pod", "list Snapshots of a session", "create Snapshot", "get Snapshot", "update Snapshot status"},
			refused: []string{"delete Snapshot", "patch Snapshot", "create BackupSession", "get Secret", "create Job"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			o := createObjects(t, name)
			if err := (&Provisioner{Client: api, Reader: api}).Ensure(ctx, o.ns, tc.kind); err != nil {
				t.Fatal(err)
			}
			c := impersonate(t, o.ns, tc.kind.Name)
			for _, name := range tc.allowed {
				// RBAC reaches the authorizer through an informer: a
				// Forbidden right after Ensure may be its lag.
				var err error
				_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
					err = calls[name](ctx, c, o)
					return !apierrors.IsForbidden(err), nil
				})
				if err != nil {
					t.Errorf("%s as %s: %v, want allowed", name, tc.kind.Name, err)
				}
			}
			for _, name := range tc.refused {
				if err := calls[name](ctx, c, o); !apierrors.IsForbidden(err) {
					t.Errorf("%s as %s: err %v, want Forbidden", name, tc.kind.Name, err)
				}
			}
		})
	}
}

// TestSharedAccountMakesEveryCall checks --job-service-account: the one
// ServiceAccount every kind then runs as can make each kind's calls.
func TestSharedAccountMakesEveryCall(t *testing.T) {
	ctx := context.Background()
	accounts := NewAccounts("keepsake-job", "")
	o := createObjects(t, "shared")
	p := &Provisioner{Client: api, Reader: api}
	for _, k := range accounts.all() {
		if err := p.Ensure(ctx, o.ns, *k); err != nil {
			t.Fatal(err)
		}
	}
	c := impersonate(t, o.ns, "keepsake-job")
	for _, name := range []string{"get BackupConfiguration", "create BackupSession", "list Snapshots of a session",
		"patch Snapshot status", "patch RestoreSession status", "patch Snapshot", "delete Snapshot"} {
		var err error
		_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			err = calls[name](ctx, c, o)
			return !apierrors.IsForbidden(err), nil
		})
		if err != nil {
			t.Errorf("%s as keepsake-job: %v, want allowed", name, err)
		}
	}
	if err := calls["get Secret"](ctx, c, o); !apierrors.IsForbidden(err) {
		t.Errorf("get Secret as keepsake-job: err %v, want Forbidden", err)
	}
}

// impersonate returns a client that acts as ServiceAccount name of ns, as
// a pod with its token would.
func impersonate(t *testing.T, ns, name string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createObjects makes a namespace holding one object of each kind the
// Jobs touch, as the operator and users would have made them.
func createObjects(t *testing.T, prefix string) *objects {
	t.Helper()
	ctx := context.Background()
	ns := namespace(t, strings.ToLower(prefix))
	o := &objects{
		ns: ns,
		config: &corev1alpha1.BackupConfiguration{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-backup"},
			Spec: corev1alpha1.BackupConfigurationSpec{
				Target:   storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: "db"},
				Backends: []corev1alpha1.BackendReference{{Name: "main", StorageRef: storagev1alpha1.ObjectReference{Name: "local"}}},
				Sessions: []corev1alpha1.Session{{
					Name:      "daily",
					Scheduler: corev1alpha1.SchedulerSpec{Schedule: "0 3 * * *"},
					Addon:     corev1alpha1.AddonInfo{Name: "db", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup"}}},
					Repositories: []corev1alpha1.RepositoryInfo{{
						Name: "repo", Backend: "main", Directory: "db", EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic"},
					}},
				}},
			},
		},
		session: &corev1alpha1.BackupSession{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-backup-daily-1"},
			Spec:       corev1alpha1.BackupSessionSpec{BackupConfiguration: "db-backup", Session: "daily"},
		},
		restore: &corev1alpha1.RestoreSession{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "restore-db"},
			Spec: corev1alpha1.RestoreSessionSpec{
				Target:     storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: "db"},
				DataSource: corev1alpha1.RestoreDataSource{Repository: storagev1alpha1.ObjectReference{Name: "repo"}},
				Addon:      corev1alpha1.AddonInfo{Name: "db", Tasks: []corev1alpha1.TaskReference{{Name: "logical-restore"}}},
			},
		},
		snapshot: &storagev1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-backup-daily-1-repo",
				Labels: map[string]string{corev1alpha1.LabelBackupSession: "db-backup-daily-1"}},
			Spec: storagev1alpha1.SnapshotSpec{Repository: "repo", BackupSession: "db-backup-daily-1"},
		},
		secret: &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "restic"},
			StringData: map[string]string{"RESTIC_PASSWORD": "not-a-real-password"},
		},
	}
	for _, obj := range []client.Object{o.config, o.session, o.restore, o.snapshot, o.secret} {
		if err := api.Create(ctx, obj); err != nil {
			t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
		}
	}
	return o
}

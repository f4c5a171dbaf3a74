package access

import (
	"context"
	"flag"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/test/servers"
)

var (
	api    client.Client
	config *rest.Config
	scheme = runtime.NewScheme()
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return 0
	}
	srv, err := servers.StartAPIServer()
	if err != nil {
		panic(err)
	}
	defer srv.Stop()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, corev1alpha1.AddToScheme, storagev1alpha1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	config = srv.Config
	api, err = client.New(config, client.Options{Scheme: scheme})
	if err != nil {
		panic(err)
	}
	return m.Run()
}

// namespace creates a namespace of its own for a test.
func namespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-"}}
	if err := api.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// TestEnsureAfterNamespaceRecreated is the second `make demo`: the
// namespace, and with it the ServiceAccount, Role and RoleBinding, went away
// while the operator ran on; the next Ensure must make them again, not
// trust what it made the first time.
func TestEnsureAfterNamespaceRecreated(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "recreated"}}
	if err := api.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	p := &Provisioner{Client: api, Reader: api}
	if err := p.Ensure(ctx, ns.Name, Backup); err != nil {
		t.Fatal(err)
	}
	// envtest runs no namespace controller: delete what a namespace
	// deletion would.
	meta := metav1.ObjectMeta{Namespace: ns.Name, Name: Backup.Name}
	for _, obj := range []client.Object{&corev1.ServiceAccount{ObjectMeta: meta}, &rbacv1.Role{ObjectMeta: meta}, &rbacv1.RoleBinding{ObjectMeta: meta}} {
		if err := api.Delete(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Ensure(ctx, ns.Name, Backup); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKey{Namespace: ns.Name, Name: Backup.Name}
	for _, obj := range []client.Object{&corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}} {
		if err := api.Get(ctx, key, obj); err != nil {
			t.Errorf("after the namespace was emptied, Ensure left %T missing: %v", obj, err)
		}
	}
}

// TestEnsureRepairsRole checks that a Role whose rules someone widened is
// put back to the kind's rules by the next Ensure of a new provisioner (a
// restarted operator).
func TestEnsureRepairsRole(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "repair")
	if err := (&Provisioner{Client: api, Reader: api}).Ensure(ctx, ns, Trigger); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{}
	if err := api.Get(ctx, client.ObjectKey{Namespace: ns, Name: Trigger.Name}, role); err != nil {
		t.Fatal(err)
	}
	role.Rules = append(role.Rules, rule(storageGroup, "snapshots", "delete"))
	if err := api.Update(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := (&Provisioner{Client: api, Reader: api}).Ensure(ctx, ns, Trigger); err != nil {
		t.Fatal(err)
	}
	if err := api.Get(ctx, client.ObjectKeyFromObject(role), role); err != nil {
		t.Fatal(err)
	}
	if !equalRules(role.Rules, Trigger.Rules) {
		t.Errorf("Role rules = %+v, want the trigger's %+v", role.Rules, Trigger.Rules)
	}
}

// TestKindWithoutRulesHasNoRole checks that a kind without rules gets its
// ServiceAccount and neither a Role nor a RoleBinding.
func TestKindWithoutRulesHasNoRole(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "norules")
	quiet := Kind{Name: "keepsake-quiet"}
	if err := (&Provisioner{Client: api, Reader: api}).Ensure(ctx, ns, quiet); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKey{Namespace: ns, Name: quiet.Name}
	if err := api.Get(ctx, key, &corev1.ServiceAccount{}); err != nil {
		t.Errorf("ServiceAccount %s: %v", key, err)
	}
	for _, obj := range []client.Object{&rbacv1.Role{}, &rbacv1.RoleBinding{}} {
		if err := api.Get(ctx, key, obj); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s: err %v, want NotFound", obj, key, err)
		}
	}
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equalRule(a[i], b[i]) {
			return false
		}
	}
	return true
}

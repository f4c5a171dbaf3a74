package access

import (
	"context"
	"flag"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/test/servers"
)

var api client.Client

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
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	api, err = client.New(srv.Config, client.Options{Scheme: scheme})
	if err != nil {
		panic(err)
	}
	return m.Run()
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
	if err := p.Ensure(ctx, ns.Name, DefaultServiceAccount); err != nil {
		t.Fatal(err)
	}
	// envtest runs no namespace controller: delete what a namespace
	// deletion would.
	meta := metav1.ObjectMeta{Namespace: ns.Name, Name: DefaultServiceAccount}
	for _, obj := range []client.Object{&corev1.ServiceAccount{ObjectMeta: meta}, &rbacv1.Role{ObjectMeta: meta}, &rbacv1.RoleBinding{ObjectMeta: meta}} {
		if err := api.Delete(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Ensure(ctx, ns.Name, DefaultServiceAccount); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKey{Namespace: ns.Name, Name: DefaultServiceAccount}
	for _, obj := range []client.Object{&corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}} {
		if err := api.Get(ctx, key, obj); err != nil {
			t.Errorf("after the namespace was emptied, Ensure left %T missing: %v", obj, err)
		}
	}
}

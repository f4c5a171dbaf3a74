package apis_test

import (
	"context"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestShortNamesAreOurs checks that no short name of a Keepsake kind is a
// name or short name a built-in kind answers to: `rs` was one
// (`kubectl describe rs x` looked for a ReplicaSet).
func TestShortNamesAreOurs(t *testing.T) {
	dc, err := discovery.NewDiscoveryClientForConfig(apiServer.Config)
	if err != nil {
		t.Fatal(err)
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		t.Fatal(err)
	}
	builtin := map[string]string{} // name or short name -> resource
	for _, l := range lists {
		if strings.Contains(l.GroupVersion, "keepsake.dev") {
			continue
		}
		for _, r := range l.APIResources {
			builtin[r.Name], builtin[r.SingularName] = r.Name, r.Name
			for _, s := range r.ShortNames {
				builtin[s] = r.Name
			}
		}
	}
	for _, crd := range keepsakeCRDs(t) {
		for _, s := range crd.Spec.Names.ShortNames {
			if other, taken := builtin[s]; taken {
				t.Errorf("%s's short name %q is also %s's", crd.Spec.Names.Kind, s, other)
			}
		}
	}
}

// TestFirstColumns checks what `kubectl get` shows without -o wide: for a
// BackupConfiguration, when the next backup runs and when the last one
// succeeded, the two columns users ask for first.
func TestFirstColumns(t *testing.T) {
	for _, crd := range keepsakeCRDs(t) {
		if crd.Spec.Names.Kind != "BackupConfiguration" {
			continue
		}
		shown := map[string]bool{}
		for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
			shown[c.Name] = c.Priority == 0
		}
		for _, want := range []string{"Next-Backup", "Last-Success", "Phase"} {
			if !shown[want] {
				t.Errorf("kubectl get backupconfigurations does not show %s without -o wide", want)
			}
		}
		return
	}
	t.Fatal("no BackupConfiguration CRD")
}

func keepsakeCRDs(t *testing.T) []apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	c, err := client.New(apiServer.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(c.Scheme()); err != nil {
		t.Fatal(err)
	}
	var list apiextensionsv1.CustomResourceDefinitionList
	if err := c.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	var out []apiextensionsv1.CustomResourceDefinition
	for _, crd := range list.Items {
		if strings.HasSuffix(crd.Spec.Group, "keepsake.dev") {
			out = append(out, crd)
		}
	}
	return out
}

package functions

import (
	"fmt"
	"io"

	"github.com/go-logr/logr/funcr"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// newClient returns a client for Keepsake's objects, configured as
// controller-runtime finds it: KUBECONFIG, else the Job's in-cluster
// service account. controller-runtime's logs (API server warnings) go to
// log; unset, it would print a stack trace about that after 30 s.
func newClient(log io.Writer) (client.Client, error) {
	ctrl.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(log, prefix, args) }, funcr.Options{}))
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes config: %w", err)
	}
	return newClientFor(cfg)
}

func newClientFor(cfg *rest.Config) (client.Client, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1alpha1.AddToScheme, storagev1alpha1.AddToScheme, corev1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return client.New(cfg, client.Options{Scheme: s})
}

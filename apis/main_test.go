// Package apis_test checks Keepsake's CRD schemas against a real
// kube-apiserver: what the API server accepts, rejects and defaults is what
// users get, so it is tested there rather than by reading the YAML.
package apis_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/test/servers"
)

var (
	apiServer *servers.APIServer
	k8s       client.Client
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping CRD tests in -short mode: they need kube-apiserver and etcd")
		return 0
	}
	var err error
	apiServer, err = servers.StartAPIServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := apiServer.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}()
	k8s, err = client.New(apiServer.Config, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

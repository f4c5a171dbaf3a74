package operator_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

var probeAddr, metricsAddr string

func TestMain(m *testing.M) {
	if os.Getenv("KEEPSAKE_INSTALL_LOGGER_CHILD") == "1" {
		// TestInstallLogger's own process needs no API server.
		os.Exit(m.Run())
	}
	var err error
	if probeAddr, err = freeAddress(); err == nil {
		metricsAddr, err = freeAddress()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testenv.Options.HealthProbeBindAddress = probeAddr
	testenv.Options.MetricsBindAddress = metricsAddr
	os.Exit(testenv.Main(m))
}

// TestEndpoints checks that the running manager answers its health probes
// and serves the reconcilers' metrics.
func TestEndpoints(t *testing.T) {
	tests := map[string]struct {
		// url is the endpoint.
		url string
		// want is a substring of a healthy answer.
		want string
	}{
		"liveness":  {url: "http://" + probeAddr + "/healthz", want: "ok"},
		"readiness": {url: "http://" + probeAddr + "/readyz", want: "ok"},
		"metrics":   {url: "http://" + metricsAddr + "/metrics", want: `controller="backupconfiguration"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			testenv.Eventually(t, func(ctx context.Context) (bool, string) {
				code, body, err := get(ctx, tc.url)
				if err != nil {
					return false, err.Error()
				}
				return code == http.StatusOK && strings.Contains(body, tc.want),
					fmt.Sprintf("GET %s: %d, want 200 with %q", tc.url, code, tc.want)
			})
		})
	}
}

func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// freeAddress returns a loopback address with a port free right now.
func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

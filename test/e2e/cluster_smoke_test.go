// Package e2e holds Keepsake's end-to-end suites. They run against the local
// single-node cluster of test/cluster and drive it only as a user would.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/test/cluster"
)

// TestLocalClusterSmoke checks, on a fresh cluster, what every later e2e
// suite relies on, then that tearing it down leaves nothing behind.
func TestLocalClusterSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts a local Kubernetes cluster")
	}
	c := cluster.Fresh(t)
	ns := c.Namespace(t, "smoke", "restricted")

	t.Run("restricted namespace rejects a privileged pod", func(t *testing.T) {
		err := createPrivilegedPod(t, c, ns)
		if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
			t.Fatalf("privileged pod in a restricted namespace: got %v, want a PodSecurity violation", err)
		}
	})
	t.Run("job reads a mounted secret as non-root", func(t *testing.T) {
		secret := randomText(t)
		createSecret(t, c, ns, "smoke-secret", map[string]string{"message": secret})
		job := createJob(t, c, ns, "read-secret", "id -u; cat /secret/message", withSecretVolume("smoke-secret"))
		waitJobComplete(t, c, ns, job, 3*time.Minute)
		logs := c.Kubectl(t, "logs", "-n", ns, "job/"+job)
		if want := "65532\n" + secret; !strings.Contains(logs, want) {
			t.Fatalf("kubectl logs job/%s = %q, want it to contain %q", job, logs, want)
		}
	})
	t.Run("cronjob fires a job", func(t *testing.T) {
		cj := createCronJob(t, c, ns, "tick", "* * * * *", "echo tick")
		job := waitCronJobRun(t, c, ns, cj, 3*time.Minute)
		waitJobComplete(t, c, ns, job, 2*time.Minute)
		if logs := c.Kubectl(t, "logs", "-n", ns, "job/"+job); !strings.Contains(logs, "tick") {
			t.Fatalf("kubectl logs job/%s = %q, want tick", job, logs)
		}
	})
	t.Run("pod reaches the test servers by service DNS name", func(t *testing.T) {
		job := createJob(t, c, ns, "reach-servers", reachServersScript())
		waitJobComplete(t, c, ns, job, 3*time.Minute)
		logs := c.Kubectl(t, "logs", "-n", ns, "job/"+job)
		for _, want := range []string{"minio-ok", "influxdb-ok", "postgres-ok"} {
			if !strings.Contains(logs, want) {
				t.Errorf("kubectl logs job/%s = %q, want %s", job, logs, want)
			}
		}
	})
	t.Run("statefulset with a volume claim becomes ready", func(t *testing.T) {
		sts := createStatefulSet(t, c, ns, "store")
		waitStatefulSetReady(t, c, ns, sts, 1, 3*time.Minute)
		waitClaimsBound(t, c, ns, "app="+sts, time.Minute)
	})
	t.Run("teardown leaves nothing behind", func(t *testing.T) {
		// The leak check must see a running cluster, or its silence later
		// proves nothing.
		if held := c.Leftovers(); len(held) < 10 {
			t.Fatalf("a running cluster should hold processes, mounts, chains and links; Leftovers sees only %q", held)
		}
		c.Stop(t)
		if left := c.Leftovers(); len(left) > 0 {
			t.Fatalf("left behind after down: %s", strings.Join(left, "; "))
		}
	})
}

// reachServersScript checks each test server through its Service's DNS
// name: MinIO's liveness endpoint, an InfluxQL query, and PostgreSQL's
// answer to an SSLRequest ("N": no TLS), which only PostgreSQL gives.
func reachServersScript() string {
	minio := cluster.ServiceHost("minio", cluster.ServersNamespace)
	influx := cluster.ServiceHost("influxdb", cluster.ServersNamespace)
	pg := cluster.ServiceHost("postgres", cluster.ServersNamespace)
	return strings.Join([]string{
		"set -e",
		"wget -q -O /dev/null http://" + minio + ":9000/minio/health/live && echo minio-ok",
		"wget -q -O - 'http://" + influx + ":8086/query?q=SHOW+DATABASES' | grep -q '\"databases\"' && echo influxdb-ok",
		`resp=$(printf '\000\000\000\010\004\322\026\057' | nc -w 10 ` + pg + ` 5432)`,
		`[ "$resp" = N ] && echo postgres-ok`,
	}, "\n")
}

func randomText(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func testContext(t *testing.T, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Cluster is a ready local cluster as an e2e test uses it.
type Cluster struct {
	Config
	// Kubeconfig is the admin kubeconfig, for kubectl and helm.
	Kubeconfig string
	REST       *rest.Config
	Client     kubernetes.Interface

	use     *os.File
	stopped bool
}

// KeepEnv, when "1", keeps a cluster a test started running after the test,
// for a developer to look at or to speed up the next run.
const KeepEnv = "KEEPSAKE_CLUSTER_KEEP"

// usePath is flocked shared by every test using the cluster and exclusively
// by whoever stops or restarts it, so one test package never tears down the
// cluster under another running in parallel.
const usePath = "/run/keepsake-cluster.use"

// upTimeout bounds a cold Up on a loaded two-core machine.
const upTimeout = 10 * time.Minute

// Ensure returns a ready cluster: the running one, or one it starts. A
// cluster Ensure started is stopped when the test ends (unless KeepEnv is
// set); a cluster that was already running is left as it was.
func Ensure(t testing.TB) *Cluster {
	t.Helper()
	cfg := testConfig(t)
	use := openUse(t)
	flock(t, use, syscall.LOCK_SH)
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	timings, err := cfg.Up(ctx, TestLog{T: t})
	if err != nil {
		use.Close()
		t.Fatalf("start local cluster: %v", err)
	}
	c := newCluster(t, cfg, use)
	if timings.AlreadyUp {
		t.Cleanup(func() { use.Close() })
	} else {
		t.Logf("local cluster up: node Ready in %s, all ready in %s", timings.NodeReady, timings.AllReady)
		t.Cleanup(func() { c.release(t) })
	}
	return c
}

// Fresh stops any running cluster, starts a new one, and stops it again
// when the test ends, failing the test if anything of it is left behind.
// With KeepEnv set the new cluster keeps running.
func Fresh(t testing.TB) *Cluster {
	t.Helper()
	cfg := testConfig(t)
	use := openUse(t)
	flock(t, use, syscall.LOCK_EX)
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	if err := cfg.Down(ctx, TestLog{T: t}, false); err != nil {
		use.Close()
		t.Fatalf("stop the previous local cluster: %v", err)
	}
	timings, err := cfg.Up(ctx, TestLog{T: t})
	if err != nil {
		use.Close()
		t.Fatalf("start local cluster: %v", err)
	}
	t.Logf("fresh local cluster: node Ready in %s, all ready in %s", timings.NodeReady, timings.AllReady)
	flock(t, use, syscall.LOCK_SH)
	c := newCluster(t, cfg, use)
	t.Cleanup(func() { c.release(t) })
	return c
}

// release stops a cluster this test started, once no other test uses it.
func (c *Cluster) release(t testing.TB) {
	if c.stopped {
		return
	}
	if os.Getenv(KeepEnv) == "1" {
		c.use.Close()
		t.Logf("%s=1: leaving the cluster running; stop it with keepsake-cluster down", KeepEnv)
		return
	}
	if err := c.stop(t); err != nil {
		t.Errorf("stop local cluster: %v", err)
	}
}

// Stop stops a cluster the test started (with Fresh), once no other test
// uses it, and fails the test if Down leaves anything behind.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if err := c.stop(t); err != nil {
		t.Fatalf("stop local cluster: %v", err)
	}
}

func (c *Cluster) stop(t testing.TB) error {
	if c.stopped {
		return nil
	}
	c.stopped = true
	defer c.use.Close()
	flock(t, c.use, syscall.LOCK_EX)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return c.Down(ctx, TestLog{T: t}, false)
}

func testConfig(t testing.TB) Config {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("the local cluster needs root (it runs a kubelet, containerd and iptables)")
	}
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatalf("cluster config: %v", err)
	}
	return cfg
}

func newCluster(t testing.TB, cfg Config, use *os.File) *Cluster {
	t.Helper()
	cs, err := cfg.Clientset()
	if err != nil {
		t.Fatalf("cluster client: %v", err)
	}
	return &Cluster{Config: cfg, Kubeconfig: cfg.AdminKubeconfig(), REST: cfg.RESTConfig(), Client: cs, use: use}
}

func openUse(t testing.TB) *os.File {
	t.Helper()
	f, err := os.OpenFile(usePath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("open %s: %v", usePath, err)
	}
	return f
}

func flock(t testing.TB, f *os.File, how int) {
	t.Helper()
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		t.Fatalf("flock %s: %v", f.Name(), err)
	}
}

// TestLog sends progress lines (Up's, Down's, an installer's) to the log of
// a test or benchmark.
type TestLog struct{ T testing.TB }

func (l TestLog) Write(p []byte) (int, error) {
	l.T.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Namespace creates a namespace named after prefix with the given Pod
// Security level enforced ("restricted", "baseline", "privileged"), waits
// for its default ServiceAccount, and deletes it when the test ends.
func (c *Cluster) Namespace(t testing.TB, prefix, level string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: prefix + "-",
		Labels: map[string]string{
			"pod-security.kubernetes.io/enforce": level, "pod-security.kubernetes.io/warn": level,
		},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	err = poll(ctx, "default ServiceAccount in "+ns.Name, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// Kubectl runs kubectl against the cluster and fails the test on error.
func (c *Cluster) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := c.Config.Kubectl(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ServiceHost is the in-cluster DNS name of a Service.
func ServiceHost(name, namespace string) string {
	return fmt.Sprintf("%s.%s.svc.cluster.local", name, namespace)
}

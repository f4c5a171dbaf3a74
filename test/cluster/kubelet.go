package cluster

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// kubeletStopGrace is how long the kubelet gets to exit on SIGTERM before
// it is killed.
const kubeletStopGrace = 30 * time.Second

// RestartKubelet stops the node's kubelet by its recorded PID (SIGTERM,
// SIGKILL after a grace time) and starts it again with the same binary and
// configuration, as a node agent upgrade or crash does, then waits until
// the new kubelet serves: its health endpoint answers, it renewed the
// node's Lease, and the node is Ready. The pods keep running
// meanwhile: containerd runs them, not the kubelet. The kubelet is
// node-wide, so every pod of the cluster sees the restart.
func (c Config) RestartKubelet(ctx context.Context) error {
	rec, err := readPIDFile(c.pidFile("kubelet"))
	if err != nil || !alive(rec) {
		return fmt.Errorf("restart kubelet: it is not running (%v)", err)
	}
	if err := c.stop("kubelet", syscall.SIGTERM, kubeletStopGrace); err != nil {
		return fmt.Errorf("restart kubelet: %w", err)
	}
	// A heartbeat of the old kubelet is older than this.
	stopped := time.Now()
	// The same binary as before, whichever checkout started the cluster,
	// while it is there.
	kubelet := c.kubelet()
	if _, err := os.Stat(rec.exe); err == nil {
		kubelet.path = rec.exe
	}
	if err := c.start(kubelet); err != nil {
		return fmt.Errorf("restart kubelet: %w", err)
	}
	if err := waitHTTP(ctx, "kubelet /healthz", "http://127.0.0.1:10248/healthz"); err != nil {
		return fmt.Errorf("restart kubelet: %w", err)
	}
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	return c.waitNodeHeartbeat(ctx, cs, stopped)
}

// waitNodeHeartbeat waits until the node's Lease (the kubelet's
// heartbeat, renewed every few seconds, stored to the microsecond) was
// renewed after since, and the node is Ready. The Ready condition's own
// heartbeat is no use here: it is stored to the second and, with leases,
// refreshed only every few minutes.
func (c Config) waitNodeHeartbeat(ctx context.Context, cs kubernetes.Interface, since time.Time) error {
	return poll(ctx, "node "+c.NodeName+" Ready from the restarted kubelet", 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		lease, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, c.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if renew := lease.Spec.RenewTime; renew == nil || !renew.After(since) {
			return false, fmt.Errorf("node lease last renewed %v, before the restart", renew)
		}
		return c.nodeReady(ctx, cs)
	})
}

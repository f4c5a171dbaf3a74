package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
)

// Timings says how long Up took.
type Timings struct {
	// NodeReady runs from the start of Up to the node's Ready condition.
	NodeReady time.Duration
	// AllReady runs to the moment DNS, storage and the test servers serve.
	AllReady time.Duration
	// AlreadyUp is set when Up found a healthy cluster and did nothing.
	AlreadyUp bool
}

// lockPath serialises Up and Down between processes (a test and a shell).
const lockPath = "/run/keepsake-cluster.lock"

func lock() (func(), error) {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	return func() { f.Close() }, nil
}

// Up starts the cluster and waits until it serves. A healthy cluster is
// left as it is; anything else, such as the remains of a killed run, is
// cleaned up first and a fresh cluster started. Progress goes to log.
func (c Config) Up(ctx context.Context, log io.Writer) (Timings, error) {
	unlock, err := lock()
	if err != nil {
		return Timings{}, err
	}
	defer unlock()
	start := time.Now()
	if c.healthy(ctx) {
		return Timings{AlreadyUp: true}, nil
	}
	if err := c.checkBinaries(); err != nil {
		return Timings{}, err
	}
	fmt.Fprintln(log, "cleaning up stale state")
	if err := c.cleanUp(ctx, log); err != nil {
		return Timings{}, err
	}
	if err := c.prepare(); err != nil {
		return Timings{}, err
	}
	t, err := c.boot(ctx, log, start)
	if err != nil {
		return t, fmt.Errorf("%w (logs in %s)", err, c.state("logs"))
	}
	return t, nil
}

// prepare wipes the previous cluster's state (keeping the image cache) and
// writes certificates, configuration, the bridge and the cgroup root.
func (c Config) prepare() error {
	if left := c.ownedMounts(); len(left) > 0 {
		return fmt.Errorf("refusing to wipe %s: still mounted: %v", c.StateDir, left)
	}
	if err := wipeExcept(c.StateDir, "image-cache", "sysctl.orig"); err != nil {
		return err
	}
	if err := os.RemoveAll(c.RunDir); err != nil {
		return err
	}
	for _, dir := range []string{c.StateDir, c.RunDir, c.state("logs"), c.state("local-path")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	steps := []func() error{c.writePKI, c.writeConfigs, c.setUpNetwork, createCgroupRoot}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// boot starts the parts in dependency order and waits for each stage.
func (c Config) boot(ctx context.Context, log io.Writer, start time.Time) (Timings, error) {
	var t Timings
	for _, p := range []process{c.etcd(), c.containerd()} {
		if err := c.start(p); err != nil {
			return t, err
		}
	}
	images := make(chan error, 1)
	go func() { images <- c.importImages(ctx) }()
	postgres := make(chan error, 1)
	go func() { postgres <- c.startPostgres(ctx) }()
	if err := waitHTTP(ctx, "etcd", fmt.Sprintf("http://127.0.0.1:%d/health", c.EtcdPort)); err != nil {
		return t, err
	}
	cs, err := c.startControlPlane(ctx)
	if err != nil {
		return t, err
	}
	fmt.Fprintf(log, "control plane ready after %s\n", time.Since(start).Round(time.Millisecond))
	if err := c.apply(ctx); err != nil {
		return t, err
	}
	if err := <-images; err != nil {
		return t, err
	}
	if err := c.start(c.kubelet()); err != nil {
		return t, err
	}
	if err := c.waitNodeReady(ctx, cs); err != nil {
		return t, err
	}
	t.NodeReady = time.Since(start)
	fmt.Fprintf(log, "node %s Ready after %s\n", c.NodeName, t.NodeReady.Round(time.Millisecond))
	if err := <-postgres; err != nil {
		return t, err
	}
	if err := c.waitAddons(ctx, cs); err != nil {
		return t, err
	}
	t.AllReady = time.Since(start)
	return t, nil
}

// startControlPlane starts the API server, waits for it, then starts the
// controllers, kube-proxy and CoreDNS, which all talk to it.
func (c Config) startControlPlane(ctx context.Context) (kubernetes.Interface, error) {
	if err := c.start(c.apiServer()); err != nil {
		return nil, err
	}
	cs, err := c.Clientset()
	if err != nil {
		return nil, err
	}
	if err := c.waitAPIServer(ctx, cs); err != nil {
		return nil, err
	}
	for _, p := range []process{c.controllerManager(), c.scheduler(), c.kubeProxy(), c.coreDNS()} {
		if err := c.start(p); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

// apply creates the add-ons (CoreDNS's RBAC, local-path-provisioner and its
// StorageClass) and the test servers.
func (c Config) apply(ctx context.Context) error {
	files := []string{c.state("config", "addons.yaml")}
	if c.Servers {
		files = append(files, c.state("config", "servers.yaml"))
	}
	for _, f := range files {
		err := poll(ctx, "kubectl apply "+filepath.Base(f), time.Second, func(ctx context.Context) (bool, error) {
			_, err := c.Kubectl(ctx, "apply", "--server-side", "-f", f)
			return err == nil, err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// waitAddons waits for cluster DNS, the storage provisioner and the test
// servers.
func (c Config) waitAddons(ctx context.Context, cs kubernetes.Interface) error {
	if err := c.waitDNS(ctx); err != nil {
		return err
	}
	workloads := []string{"deployment/local-path-storage/local-path-provisioner"}
	if c.Servers {
		workloads = append(workloads, "deployment/"+ServersNamespace+"/minio",
			"statefulset/"+ServersNamespace+"/influxdb")
	}
	return c.waitWorkloads(ctx, cs, workloads...)
}

// healthy reports whether every recorded part runs and the node is Ready.
func (c Config) healthy(ctx context.Context) bool {
	for _, name := range stopOrder {
		if name == "postgres" && !c.Servers {
			continue
		}
		if _, ok := c.running(name); !ok {
			return false
		}
	}
	cs, err := c.Clientset()
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ready, err := c.nodeReady(ctx, cs)
	return err == nil && ready
}

// checkBinaries fails early, naming what to build, when a part is missing.
func (c Config) checkBinaries() error {
	need := []string{etcdBinary, containerdBinary, ctrBinary, "/usr/sbin/runc", busyboxBinary,
		"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"}
	for _, b := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
		"kube-proxy", "kubectl", "coredns", "local-path-provisioner", "keepsake-images", "pause"} {
		need = append(need, c.bin(b))
	}
	if c.Servers {
		need = append(need, c.bin("minio"), influxdBinary, postgresBinDir+"/postgres", postgresBinDir+"/initdb")
	}
	var missing []string
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %v: build the tools (make cluster-tools) and install the Debian packages "+
			"etcd-server containerd runc containernetworking-plugins iptables busybox-static influxdb postgresql",
			missing)
	}
	return nil
}

// wipeExcept removes everything in dir but the named entries.
func wipeExcept(dir string, keep ...string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	kept := map[string]bool{}
	for _, k := range keep {
		kept[k] = true
	}
	for _, e := range entries {
		if !kept[e.Name()] {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

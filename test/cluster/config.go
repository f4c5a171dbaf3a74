// Package cluster starts and stops Keepsake's local single-node Kubernetes
// cluster, built from upstream parts without Docker: etcd (Debian), the
// Kubernetes components built from k8s.io/kubernetes into ./bin, containerd +
// runc + the CNI bridge plugin (Debian), CoreDNS and local-path-provisioner
// built from their modules, and images assembled by test/images.
//
// Everything the cluster owns lives under two directories (Config.StateDir,
// Config.RunDir), one bridge (Config.Bridge), the iptables chains named
// KUBE-*, CNI-* and KEEPSAKE-*, and cgroups under /keepsake. Down removes all
// of it; Up first cleans whatever a killed run left behind.
package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Config says where the cluster lives and which addresses it uses. The pod
// and Service ranges are benchmarking ranges (RFC 2544) no real network
// uses; they exist only on the cluster's bridge and in its pods' network
// namespaces, and a KEEPSAKE-GUARD rule drops anything routed between them
// and any other interface.
type Config struct {
	// StateDir holds certificates, kubeconfigs, logs, etcd data, the
	// kubelet's root and the containerd root.
	StateDir string
	// RunDir holds sockets, PID files and containerd's runtime state.
	RunDir string
	// BinDir holds the binaries built from Go modules (`make tools`).
	BinDir string
	// NodeName is the Kubernetes node's name.
	NodeName string
	// Bridge is the CNI bridge; NodeIP, its address, is the node's InternalIP,
	// the API server's address and the cluster DNS server.
	Bridge      string
	NodeIP      string
	PodCIDR     string
	ServiceCIDR string
	// KubernetesServiceIP is the first address of ServiceCIDR.
	KubernetesServiceIP string
	APIServerPort       int
	EtcdPort            int
	EtcdPeerPort        int
	PostgresPort        int
	// Servers says whether Up also starts the test servers (MinIO,
	// InfluxDB, PostgreSQL) in namespace ServersNamespace.
	Servers bool
}

// ServersNamespace holds the test servers' Services and workloads.
const ServersNamespace = "keepsake-test"

// DefaultConfig is the one cluster this machine runs. KEEPSAKE_CLUSTER_DIR
// moves the state directory; KEEPSAKE_BIN points at the tools directory
// (default: ./bin of the repository holding the working directory).
func DefaultConfig() (Config, error) {
	bin := os.Getenv("KEEPSAKE_BIN")
	if bin == "" {
		root, err := repoRoot()
		if err != nil {
			return Config{}, err
		}
		bin = filepath.Join(root, "bin")
	}
	state := os.Getenv("KEEPSAKE_CLUSTER_DIR")
	if state == "" {
		state = "/var/lib/keepsake-cluster"
	}
	return Config{
		StateDir: state, RunDir: "/run/keepsake-cluster", BinDir: bin,
		NodeName: "keepsake-node", Bridge: "keepsake0",
		NodeIP: "198.18.0.1", PodCIDR: "198.18.0.0/24",
		ServiceCIDR: "198.19.0.0/24", KubernetesServiceIP: "198.19.0.1",
		APIServerPort: 6443, EtcdPort: 2479, EtcdPeerPort: 2480, PostgresPort: 15432,
		Servers: true,
	}, nil
}

// AdminKubeconfig is the path of the cluster-admin kubeconfig.
func (c Config) AdminKubeconfig() string { return c.state("kubeconfig", "admin.kubeconfig") }

// APIServerURL is the API server's address on the bridge.
func (c Config) APIServerURL() string {
	return fmt.Sprintf("https://%s:%d", c.NodeIP, c.APIServerPort)
}

func (c Config) state(parts ...string) string {
	return filepath.Join(append([]string{c.StateDir}, parts...)...)
}

func (c Config) run(parts ...string) string {
	return filepath.Join(append([]string{c.RunDir}, parts...)...)
}

func (c Config) bin(name string) string { return filepath.Join(c.BinDir, name) }

func (c Config) containerdSocket() string { return c.run("containerd", "containerd.sock") }

// repoRoot walks up from the working directory to Keepsake's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/keepsake-dev/keepsake\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of github.com/keepsake-dev/keepsake above the working directory; set KEEPSAKE_BIN")
		}
		dir = parent
	}
}

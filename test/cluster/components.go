package cluster

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"
)

// Debian packages the cluster runs from the system.
const (
	etcdBinary       = "/usr/bin/etcd"
	containerdBinary = "/usr/bin/containerd"
	ctrBinary        = "/usr/bin/ctr"
	busyboxBinary    = "/bin/busybox"
	influxdBinary    = "/usr/bin/influxd"
	postgresBinDir   = "/usr/lib/postgresql/15/bin"
)

// stopOrder lists the long-running parts in the order Down stops them:
// the node first, so nothing restarts what the control plane loses.
var stopOrder = []string{"kubelet", "kube-proxy", "coredns", "kube-scheduler",
	"kube-controller-manager", "kube-apiserver", "etcd", "containerd", "postgres"}

func (c Config) etcd() process {
	client := fmt.Sprintf("http://127.0.0.1:%d", c.EtcdPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", c.EtcdPeerPort)
	return process{name: "etcd", path: etcdBinary, args: []string{
		"--name", "keepsake", "--data-dir", c.state("etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "keepsake=" + peer, "--initial-cluster-state", "new",
		"--listen-metrics-urls", "", "--log-level", "warn",
	}}
}

func (c Config) containerd() process {
	return process{name: "containerd", path: containerdBinary,
		args: []string{"--config", c.state("config", "containerd.toml")}}
}

func (c Config) apiServer() process {
	pki := c.state("pki")
	return process{name: "kube-apiserver", path: c.bin("kube-apiserver"), args: []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", c.EtcdPort),
		"--bind-address=" + c.NodeIP, "--advertise-address=" + c.NodeIP,
		fmt.Sprintf("--secure-port=%d", c.APIServerPort),
		"--service-cluster-ip-range=" + c.ServiceCIDR,
		"--client-ca-file=" + pki + "/ca.crt",
		"--tls-cert-file=" + pki + "/apiserver.crt", "--tls-private-key-file=" + pki + "/apiserver.key",
		"--kubelet-client-certificate=" + pki + "/apiserver-kubelet-client.crt",
		"--kubelet-client-key=" + pki + "/apiserver-kubelet-client.key",
		"--kubelet-certificate-authority=" + pki + "/ca.crt",
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki + "/sa.pub",
		"--service-account-signing-key-file=" + pki + "/sa.key",
		"--authorization-mode=Node,RBAC",
		"--requestheader-client-ca-file=" + pki + "/front-proxy-ca.crt",
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + pki + "/front-proxy-client.crt",
		"--proxy-client-key-file=" + pki + "/front-proxy-client.key",
		// PodSecurity is on by default; NodeRestriction is not.
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true", "--profiling=false", "--v=1",
	}}
}

func (c Config) controllerManager() process {
	pki := c.state("pki")
	kubeconfig := c.state("kubeconfig", "kube-controller-manager.kubeconfig")
	return process{name: "kube-controller-manager", path: c.bin("kube-controller-manager"), args: []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1", "--leader-elect=false",
		"--service-account-private-key-file=" + pki + "/sa.key",
		"--root-ca-file=" + pki + "/ca.crt",
		"--cluster-signing-cert-file=" + pki + "/ca.crt", "--cluster-signing-key-file=" + pki + "/ca.key",
		"--use-service-account-credentials=true",
		"--cluster-cidr=" + c.PodCIDR, "--service-cluster-ip-range=" + c.ServiceCIDR,
		"--allocate-node-cidrs=false", "--profiling=false", "--v=1",
	}}
}

func (c Config) scheduler() process {
	kubeconfig := c.state("kubeconfig", "kube-scheduler.kubeconfig")
	return process{name: "kube-scheduler", path: c.bin("kube-scheduler"), args: []string{
		"--config=" + c.state("config", "kube-scheduler.yaml"),
		"--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1", "--profiling=false", "--v=1",
	}}
}

func (c Config) kubelet() process {
	return process{name: "kubelet", path: c.bin("kubelet"), args: []string{
		"--config=" + c.state("config", "kubelet.yaml"),
		"--kubeconfig=" + c.state("kubeconfig", "kubelet.kubeconfig"),
		"--root-dir=" + c.state("kubelet"),
		"--hostname-override=" + c.NodeName, "--node-ip=" + c.NodeIP, "--v=1",
	}}
}

func (c Config) kubeProxy() process {
	return process{name: "kube-proxy", path: c.bin("kube-proxy"),
		args: []string{"--config=" + c.state("config", "kube-proxy.yaml"), "--v=1"}}
}

func (c Config) coreDNS() process {
	return process{name: "coredns", path: c.bin("coredns"),
		args: []string{"-conf", c.state("config", "Corefile")}}
}

// postgres runs PostgreSQL as the Debian postgres user, listening on the
// node address only.
func (c Config) postgres() (process, error) {
	cred, err := postgresCredential()
	if err != nil {
		return process{}, err
	}
	return process{name: "postgres", path: postgresBinDir + "/postgres", credential: cred,
		stopSignal: syscall.SIGINT, args: []string{
			"-D", c.state("postgres", "data"), "-c", "listen_addresses=" + c.NodeIP,
			"-p", strconv.Itoa(c.PostgresPort), "-c", "unix_socket_directories=" + c.state("postgres", "run"),
			"-c", "hba_file=" + c.state("config", "pg_hba.conf"), "-c", "fsync=off",
			"-c", "max_connections=50", "-c", "shared_buffers=32MB",
		}}, nil
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("user postgres (Debian package postgresql): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

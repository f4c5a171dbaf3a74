package cluster

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
)

//go:embed templates/*
var templates embed.FS

// Images the cluster itself runs, as test/images names them.
const (
	PauseImage     = "keepsake.local/pause:3.10"
	BusyboxImage   = "keepsake.local/busybox:1.35"
	MinIOImage     = "keepsake.local/minio:dev"
	InfluxDBImage  = "keepsake.local/influxdb:1.6"
	LocalPathImage = "keepsake.local/local-path-provisioner:v0.0.30"
)

// Credentials of the test servers. They guard nothing: the servers are
// reachable only from this machine's cluster.
const (
	MinIOUser        = "keepsake"
	MinIOPassword    = "keepsake-minio-secret"
	PostgresUser     = "keepsake"
	PostgresPassword = "keepsake-postgres-secret"
)

// templateData is what the templates under templates/ may refer to.
type templateData struct {
	Config
	PKI, Kubeconfigs, CNIConfDir, ContainerdRoot, ContainerdState string
	ContainerdSocket, LocalPathDir, PauseImage, BusyboxImage      string
	MinIOImage, InfluxDBImage, LocalPathImage                     string
	MinIOUser, MinIOPassword, PostgresUser, PostgresPassword      string
	CgroupRoot, ServersNamespace                                  string
}

func (c Config) templateData() templateData {
	return templateData{
		Config: c, PKI: c.state("pki"), Kubeconfigs: c.state("kubeconfig"),
		CNIConfDir: c.state("cni", "net.d"), ContainerdRoot: c.state("containerd"),
		ContainerdState: c.run("containerd"), ContainerdSocket: c.containerdSocket(),
		LocalPathDir: c.state("local-path"), PauseImage: PauseImage, BusyboxImage: BusyboxImage,
		MinIOImage: MinIOImage, InfluxDBImage: InfluxDBImage, LocalPathImage: LocalPathImage,
		MinIOUser: MinIOUser, MinIOPassword: MinIOPassword,
		PostgresUser: PostgresUser, PostgresPassword: PostgresPassword,
		CgroupRoot: "/" + cgroupRoot, ServersNamespace: ServersNamespace,
	}
}

// render fills templates/<name> with the cluster's settings.
func (c Config) render(name string) ([]byte, error) {
	t, err := template.ParseFS(templates, "templates/"+name)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, c.templateData()); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// configFiles maps each template to the file Up writes from it.
func (c Config) configFiles() map[string]string {
	return map[string]string{
		"containerd.toml":     c.state("config", "containerd.toml"),
		"cni.conflist":        c.state("cni", "net.d", "10-keepsake.conflist"),
		"kubelet.yaml":        c.state("config", "kubelet.yaml"),
		"kube-proxy.yaml":     c.state("config", "kube-proxy.yaml"),
		"Corefile":            c.state("config", "Corefile"),
		"resolv.conf":         c.state("config", "resolv.conf"),
		"addons.yaml":         c.state("config", "addons.yaml"),
		"servers.yaml":        c.state("config", "servers.yaml"),
		"postgres-hba.conf":   c.state("config", "pg_hba.conf"),
		"kube-scheduler.yaml": c.state("config", "kube-scheduler.yaml"),
	}
}

// writeConfigs writes every component's configuration and kubeconfig.
func (c Config) writeConfigs() error {
	for tmpl, dst := range c.configFiles() {
		data, err := c.render(tmpl)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	for _, id := range []string{"admin", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet", "coredns"} {
		if err := c.writeKubeconfig(id); err != nil {
			return err
		}
	}
	return nil
}

package servers

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"gopkg.in/yaml.v3"
)

// PrometheusReadyTimeout bounds how long StartPrometheus waits for
// /-/ready; generous because the machines running tests are small.
const PrometheusReadyTimeout = 2 * time.Minute

// PrometheusConfig is what the started Prometheus scrapes and evaluates.
type PrometheusConfig struct {
	// Interval is both the scrape and the rule evaluation interval.
	Interval time.Duration
	// Scrape lists the scrape jobs.
	Scrape []ScrapeConfig
	// RuleFiles are rule files (alerting or recording) it loads as they are.
	RuleFiles []string
}

// ScrapeConfig is one scrape job, of static targets or of a Kubernetes
// Service's endpoints, in Prometheus' own configuration format.
type ScrapeConfig struct {
	JobName string `yaml:"job_name"`
	// Targets are host:port addresses serving /metrics.
	Targets []string `yaml:"-"`
	// Service, when set, finds the targets as Prometheus finds them in a
	// cluster (and as a ServiceMonitor does): the ready endpoints of the
	// Service's port, from its EndpointSlices, followed as pods come and
	// go.
	Service *ServiceTargets `yaml:"-"`
	// MetricRelabel filters or rewrites the scraped series before they are
	// stored (e.g. keep only one namespace's).
	MetricRelabel []RelabelConfig `yaml:"metric_relabel_configs,omitempty"`
}

// ServiceTargets names a Service port whose endpoints are scraped.
type ServiceTargets struct {
	// Kubeconfig is the file Prometheus reads the cluster from.
	Kubeconfig      string
	Namespace, Name string
	// Port is the Service port's name.
	Port string
}

// RelabelConfig is one of Prometheus' relabelling steps.
type RelabelConfig struct {
	SourceLabels []string `yaml:"source_labels,omitempty"`
	Regex        string   `yaml:"regex,omitempty"`
	Action       string   `yaml:"action,omitempty"`
}

// Prometheus is a Prometheus server started from ./bin/prometheus on
// loopback for one test, with its data in a temporary directory.
type Prometheus struct {
	// URL is the server's address, e.g. "http://127.0.0.1:39123".
	URL string
	// API is its HTTP API (queries, alerts, targets).
	API promv1.API

	log  *syncBuffer
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPrometheus writes cfg as prometheus.yml, starts the server, waits
// until /-/ready answers, and registers a cleanup that kills it by PID.
// The server log is printed when the test fails.
func StartPrometheus(t testing.TB, cfg PrometheusConfig) *Prometheus {
	t.Helper()
	SkipIfShort(t, "Prometheus")
	dir := t.TempDir()
	file := filepath.Join(dir, "prometheus.yml")
	if err := writePrometheusConfig(file, cfg); err != nil {
		t.Fatal(err)
	}
	address := freeLoopbackAddress(t)
	p := &Prometheus{URL: "http://" + address, log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(Bin(t, "prometheus"), "--config.file="+file,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+address,
		"--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.log.String())
		}
	})
	if err := p.waitReady(); err != nil {
		t.Fatalf("prometheus at %s: %v\nlog:\n%s", p.URL, err, p.log.String())
	}
	client, err := api.NewClient(api.Config{Address: p.URL})
	if err != nil {
		t.Fatal(err)
	}
	p.API = promv1.NewAPI(client)
	return p
}

// writePrometheusConfig writes cfg in Prometheus' configuration format.
func writePrometheusConfig(file string, cfg PrometheusConfig) error {
	type static struct {
		Targets []string `yaml:"targets"`
	}
	type kubernetesSD struct {
		Role       string              `yaml:"role"`
		Kubeconfig string              `yaml:"kubeconfig_file"`
		Namespaces map[string][]string `yaml:"namespaces"`
	}
	type job struct {
		ScrapeConfig `yaml:",inline"`
		Static       []static        `yaml:"static_configs,omitempty"`
		Kubernetes   []kubernetesSD  `yaml:"kubernetes_sd_configs,omitempty"`
		Relabel      []RelabelConfig `yaml:"relabel_configs,omitempty"`
	}
	jobs := make([]job, 0, len(cfg.Scrape))
	for _, s := range cfg.Scrape {
		j := job{ScrapeConfig: s}
		if len(s.Targets) > 0 {
			j.Static = []static{{Targets: s.Targets}}
		}
		if svc := s.Service; svc != nil {
			j.Kubernetes = []kubernetesSD{{Role: "endpointslice", Kubeconfig: svc.Kubeconfig,
				Namespaces: map[string][]string{"names": {svc.Namespace}}}}
			j.Relabel = []RelabelConfig{
				{SourceLabels: []string{"__meta_kubernetes_service_name"}, Regex: svc.Name, Action: "keep"},
				{SourceLabels: []string{"__meta_kubernetes_endpointslice_port_name"}, Regex: svc.Port, Action: "keep"},
				{SourceLabels: []string{"__meta_kubernetes_endpointslice_endpoint_conditions_ready"}, Regex: "true", Action: "keep"},
			}
		}
		jobs = append(jobs, j)
	}
	data, err := yaml.Marshal(map[string]any{
		"global": map[string]string{
			"scrape_interval": cfg.Interval.String(), "evaluation_interval": cfg.Interval.String(),
		},
		"rule_files":     cfg.RuleFiles,
		"scrape_configs": jobs,
	})
	if err != nil {
		return fmt.Errorf("prometheus config: %w", err)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return fmt.Errorf("write prometheus config: %w", err)
	}
	return nil
}

// waitReady polls /-/ready until it answers 200, the process exits, or
// PrometheusReadyTimeout passes.
func (p *Prometheus) waitReady() error {
	deadline := time.After(PrometheusReadyTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := client.Get(p.URL + "/-/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before it was ready")
		case <-deadline:
			return fmt.Errorf("not ready after %v", PrometheusReadyTimeout)
		case <-tick.C:
		}
	}
}

// stop kills the server by PID and waits for it to exit.
func (p *Prometheus) stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

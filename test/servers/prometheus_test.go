package servers

import (
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestPrometheus: the started Prometheus scrapes an exporter, keeps only
// the series its relabelling keeps, evaluates a rule file and reports the
// alert firing in /api/v1/alerts.
func TestPrometheus(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_value"}, []string{"namespace"})
	reg.MustRegister(g)
	g.WithLabelValues("kept").Set(1)
	g.WithLabelValues("dropped").Set(1)
	exporter := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer exporter.Close()
	target, err := url.Parse(exporter.URL)
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	err = os.WriteFile(rules, []byte(`
groups:
  - name: test
    rules:
      - alert: ValueIsOne
        expr: test_value == 1
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p := StartPrometheus(t, PrometheusConfig{
		Interval: time.Second,
		Scrape: []ScrapeConfig{{JobName: "exporter", Targets: []string{target.Host},
			MetricRelabel: []RelabelConfig{{SourceLabels: []string{"namespace"}, Regex: "kept", Action: "keep"}}}},
		RuleFiles: []string{rules},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var firing []string
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		alerts, err := p.API.Alerts(ctx)
		if err != nil {
			return false, err
		}
		firing = firing[:0]
		for _, a := range alerts.Alerts {
			if a.State == "firing" {
				firing = append(firing, string(a.Labels["namespace"]))
			}
		}
		return len(firing) > 0, nil
	})
	if err != nil {
		t.Fatalf("no alert fired: %v", err)
	}
	if len(firing) != 1 || firing[0] != "kept" {
		t.Errorf("alerts fire for namespaces %v, want only [kept]", firing)
	}
	v, _, err := p.API.Query(ctx, "test_value", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if vec, ok := v.(model.Vector); !ok || len(vec) != 1 || vec[0].Metric["namespace"] != "kept" {
		t.Errorf("test_value = %v, want the kept series alone", v)
	}
}

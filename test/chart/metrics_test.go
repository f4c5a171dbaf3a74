package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/keepsake-dev/keepsake/test/servers"
)

// TestAlertRules checks the chart's alert rules with promtool: they parse
// (`check rules`) and fire and resolve as their unit tests say (`test
// rules`, testdata/alerts_test.yaml).
func TestAlertRules(t *testing.T) {
	promtool := servers.Bin(t, "promtool")
	rules := filepath.Join(chartDir(t), "files", "alerts.yaml")
	run(t, promtool, "check", "rules", rules)
	run(t, promtool, "test", "rules", filepath.Join("testdata", "alerts_test.yaml"))
}

// dashboard is the part of files/dashboard.json the tests read.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "files", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("dashboard.json has no panels")
	}
	return d
}

// TestDashboardQueriesParse makes a recording rule of every panel's query
// and has promtool check them, so a query Prometheus would refuse fails
// here; each query must read a keepsake_* metric.
func TestDashboardQueriesParse(t *testing.T) {
	var rules []map[string]string
	for i, p := range readDashboard(t).Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			if !strings.Contains(target.Expr, "keepsake_") {
				t.Errorf("panel %q reads no keepsake_ metric: %s", p.Title, target.Expr)
			}
			rules = append(rules, map[string]string{"record": "keepsake:panel_" + string(rune('a'+i)), "expr": target.Expr})
		}
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, servers.Bin(t, "promtool"), "check", "rules", file)
}

// metricName finds the keepsake_* metrics a query or rule reads.
var metricName = regexp.MustCompile(`keepsake_[a-z_]+`)

// TestMetricsDocumented checks that every keepsake_* metric the alerts and
// the dashboard read is listed in docs/metrics.md, which lists what the
// operator exports (operator/internal/metrics's TestMetricsDocs checks the
// other direction).
func TestMetricsDocumented(t *testing.T) {
	root := servers.RepoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	alerts, err := os.ReadFile(filepath.Join(chartDir(t), "files", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	used := metricName.FindAllString(string(alerts), -1)
	for _, p := range readDashboard(t).Panels {
		for _, target := range p.Targets {
			used = append(used, metricName.FindAllString(target.Expr, -1)...)
		}
	}
	slices.Sort(used)
	for _, name := range slices.Compact(used) {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("%s is read by the alerts or the dashboard but docs/metrics.md does not list it", name)
		}
	}
}

// TestMetricsObjectsOnRequest renders the ServiceMonitor, PrometheusRule
// and dashboard ConfigMap only when asked, with the alert rules and the
// dashboard inside them.
func TestMetricsObjectsOnRequest(t *testing.T) {
	for _, o := range objects(t, render(t)) {
		if k := o.GetKind(); k == "ServiceMonitor" || k == "PrometheusRule" || o.GetName() == "keepsake-dashboard" {
			t.Errorf("chart renders %s %s by default", k, o.GetName())
		}
	}
	objs := objects(t, render(t, "--set", "metrics.serviceMonitor.enabled=true",
		"--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.dashboard.enabled=true"))
	var rule struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert string `json:"alert"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	find(t, objs, "PrometheusRule", "keepsake", &rule)
	var alerts []string
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
		}
	}
	for _, want := range []string{"KeepsakeBackupMissing", "KeepsakeBackupFailed", "KeepsakeRepositoryNotReady",
		"KeepsakeIntegrityCheckFailed", "KeepsakeRestoreFailed"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("PrometheusRule lacks alert %s (has %v)", want, alerts)
		}
	}
	var cm corev1.ConfigMap
	find(t, objs, "ConfigMap", "keepsake-dashboard", &cm)
	if cm.Labels["grafana_dashboard"] != "1" || !json.Valid([]byte(cm.Data["keepsake.json"])) {
		t.Errorf("dashboard ConfigMap: labels %v, valid JSON %v", cm.Labels, json.Valid([]byte(cm.Data["keepsake.json"])))
	}
	var sm struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
		} `json:"spec"`
	}
	find(t, objs, "ServiceMonitor", "keepsake-operator", &sm)
	var svc corev1.Service
	find(t, objs, "Service", "keepsake-operator-metrics", &svc)
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, which the metrics Service does not carry (%v)", k, v, svc.Labels)
		}
	}
}

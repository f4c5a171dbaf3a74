package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/test/cluster"
	"github.com/keepsake-dev/keepsake/test/demo"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// watchedAuth is the database credentials the watched configuration backs
// up with; the layout breaks and mends the password.
const watchedAuth = `
apiVersion: v1
kind: Secret
metadata: {name: watched-auth, namespace: {{.Namespace}}}
stringData: {username: admin, password: {{.Password}}}
`

// The alerts the layout makes fire, as charts/keepsake/files/alerts.yaml
// names them.
const (
	alertBackupFailed  = "KeepsakeBackupFailed"
	alertBackupMissing = "KeepsakeBackupMissing"
)

// missingAfter is how long after the last success KeepsakeBackupMissing
// may fire at the earliest, with the watched configuration's one-minute
// schedule: two runs of it, then the rule's `for: 5m`.
const missingAfter = 2*time.Minute + 5*time.Minute

// metricsLayout: a real Prometheus on the node scrapes the operator
// through the chart's metrics Service and evaluates the chart's alert
// rules as shipped. A configuration backs up every minute; after its first
// success its password is broken, so the following runs fail; then it is
// mended. Prometheus' queries, alerts and the dashboard's panels are read
// at each step.
func metricsLayout(t *testing.T, c *cluster.Cluster, e *demo.Env) {
	e = e.InNamespace(t, c.Namespace(t, "e2e-metrics", "restricted"))
	start := time.Now()
	prom := scrapeOperator(t, e)
	apply(t, e, watchedAuth, map[string]string{"Password": e.Params.AdminPassword})
	e.Apply(demo.BackupConfiguration, func(p *demo.Params) {
		p.Name, p.Schedule, p.AuthSecret, p.Directory, p.Retention = "watched", "* * * * *", "watched-auth", "watched", ""
	})
	e.WaitBackupSession(backupconfiguration.FirstSessionName("watched", "scheduled"), corev1alpha1.BackupSessionSucceeded)
	t.Run("after a success", func(t *testing.T) { afterSuccess(t, e, prom) })
	apply(t, e, watchedAuth, map[string]string{"Password": "not-the-password"})
	t.Run("after a failure", func(t *testing.T) { afterFailure(t, e, prom) })
	t.Run("after a restore", func(t *testing.T) { afterRestore(t, e, prom) })
	t.Run("no recent backup", func(t *testing.T) { noRecentBackup(t, e, prom) })
	apply(t, e, watchedAuth, map[string]string{"Password": e.Params.AdminPassword})
	t.Run("alerts resolve after a good backup", func(t *testing.T) { alertsResolve(t, e, prom) })
	t.Run("every dashboard panel has data", func(t *testing.T) { dashboardPanels(t, e, prom, start) })
}

// scrapeOperator starts Prometheus on the node, scraping the endpoints of
// the chart's metrics Service as Prometheus does in a cluster (Kubernetes
// service discovery of its EndpointSlices, as a ServiceMonitor sets up),
// so that it follows the operator's pod as it is killed and replaced by
// the other layouts, every second, keeping only the series of the
// layout's namespace (the operator is shared with the other layouts), and
// loading the chart's alerts file as shipped. It returns once Prometheus
// has scraped the operator.
//
// Not the Service's ClusterIP: a keep-alive connection made while the
// Service had no endpoint (the operator pod being replaced) is not
// translated by kube-proxy, and stays with whatever answers the address
// outside the node; the first run of this test scraped 404s from there
// for the rest of the run.
func scrapeOperator(t *testing.T, e *demo.Env) *servers.Prometheus {
	ctx := demo.Context(t, time.Minute)
	var svc corev1.Service
	if err := e.Kube.Get(ctx, client.ObjectKey{Namespace: demo.OperatorNamespace, Name: "keepsake-operator-metrics"}, &svc); err != nil {
		t.Fatalf("the chart's metrics Service: %v", err)
	}
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "metrics" }) {
		t.Fatalf("Service keepsake-operator-metrics has no port named metrics: %+v", svc.Spec.Ports)
	}
	prom := servers.StartPrometheus(t, servers.PrometheusConfig{
		Interval: time.Second,
		Scrape: []servers.ScrapeConfig{{
			JobName: "keepsake-operator",
			Service: &servers.ServiceTargets{Kubeconfig: e.Stand.Cluster.AdminKubeconfig(),
				Namespace: svc.Namespace, Name: svc.Name, Port: "metrics"},
			MetricRelabel: []servers.RelabelConfig{{
				SourceLabels: []string{"namespace"}, Regex: e.Params.Namespace, Action: "keep",
			}},
		}},
		RuleFiles: []string{filepath.Join(e.Root, "charts", "keepsake", "files", "alerts.yaml")},
	})
	waitQuery(t, prom, `up{job="keepsake-operator"}`, time.Minute, func(v model.Vector) bool {
		return len(v) == 1 && v[0].Value == 1
	})
	return prom
}

// afterSuccess: the last success is the configuration's, nothing failed,
// and the backup's duration, dump size and Snapshot are there.
func afterSuccess(t *testing.T, e *demo.Env, prom *servers.Prometheus) {
	sel := watchedSelector(e)
	// A scheduled run may have succeeded since: compare with the status
	// as it is when Prometheus agrees.
	waitQuery(t, prom, "keepsake_backup_last_success_timestamp_seconds"+sel, demo.Timeout, func(v model.Vector) bool {
		last := lastSuccess(t, e)
		return len(v) == 1 && !last.IsZero() && math.Abs(float64(v[0].Value)-float64(last.Unix())) < 1
	})
	waitQuery(t, prom, "keepsake_backup_last_failed"+sel, demo.Timeout, valueIs(0))
	for _, expr := range []string{
		"keepsake_backup_last_duration_seconds", "keepsake_backup_last_dump_bytes", "keepsake_backup_schedule_interval_seconds",
	} {
		waitQuery(t, prom, expr+sel, demo.Timeout, func(v model.Vector) bool { return len(v) == 1 && v[0].Value > 0 })
	}
	waitQuery(t, prom, "keepsake_backup_schedule_interval_seconds"+sel, time.Minute, valueIs(60))
	waitQuery(t, prom, fmt.Sprintf(`keepsake_repository_snapshots{namespace=%q, repository="watched-repo"}`, e.Params.Namespace),
		demo.Timeout, func(v model.Vector) bool { return len(v) == 1 && v[0].Value >= 1 })
	waitQuery(t, prom, fmt.Sprintf(`keepsake_repository_ready{namespace=%q, repository="watched-repo"}`, e.Params.Namespace),
		demo.Timeout, valueIs(1))
	// The values above may all come from the scrape just taken; the rules
	// see it at their next evaluation, which ends KeepsakeBackupNeverSucceeded's
	// pending state from before the first success.
	waitNoAlerts(t, prom, "no alert after a successful backup")
}

// afterFailure: once a run with the broken password has failed,
// last_failed is 1 and KeepsakeBackupFailed fires (it has no `for`); the
// last success has not moved.
func afterFailure(t *testing.T, e *demo.Env, prom *servers.Prometheus) {
	failed := waitSession(t, e, corev1alpha1.BackupSessionFailed, time.Time{})
	t.Logf("BackupSession %s Failed: %s", failed.Name, failure(failed.Status.Conditions))
	sel := watchedSelector(e)
	waitQuery(t, prom, "keepsake_backup_last_failed"+sel, demo.Timeout, valueIs(1))
	waitQuery(t, prom, "keepsake_backup_last_completion_timestamp_seconds"+sel, demo.Timeout, func(v model.Vector) bool {
		return len(v) == 1 && float64(v[0].Value) >= float64(failed.Status.CompletionTime.Unix())
	})
	waitAlert(t, prom, alertBackupFailed, demo.Timeout)
}

// afterRestore: a restore of the watched repository's latest Snapshot
// succeeds, and the restore metrics say so.
func afterRestore(t *testing.T, e *demo.Env, prom *servers.Prometheus) {
	e = e.With(t)
	e.Apply(demo.RestoreSession, func(p *demo.Params) {
		p.Name, p.Repository, p.Snapshot = "watched-restore", "watched-repo", "latest"
	})
	e.WaitRestoreSession("watched-restore", corev1alpha1.RestoreSucceeded)
	ns := e.Params.Namespace
	waitQuery(t, prom, fmt.Sprintf(`keepsake_restore_last_failed{namespace=%q, repository="watched-repo"}`, ns), demo.Timeout, valueIs(0))
	waitQuery(t, prom, fmt.Sprintf(`keepsake_restore_sessions{namespace=%q, phase="Succeeded"}`, ns), demo.Timeout, valueIs(1))
}

// noRecentBackup: with every run failing, KeepsakeBackupMissing fires,
// and not before two runs of the schedule and its `for` have passed.
func noRecentBackup(t *testing.T, e *demo.Env, prom *servers.Prometheus) {
	last := lastSuccess(t, e)
	waitAlert(t, prom, alertBackupMissing, missingAfter+demo.Timeout)
	// Prometheus evaluates every second; allow two evaluations of slack.
	if since := time.Since(last); since < missingAfter-2*time.Second {
		t.Errorf("%s fired %v after the last success, before the %v its rule allows", alertBackupMissing, since, missingAfter)
	}
	if got := lastSuccess(t, e); !got.Equal(last) {
		t.Fatalf("a backup succeeded (at %v) while the password was broken", got)
	}
}

// alertsResolve: once the mended password gives a successful run, both
// alerts leave Prometheus' alerts and last_failed is 0.
func alertsResolve(t *testing.T, e *demo.Env, prom *servers.Prometheus) {
	mended := time.Now()
	good := waitSession(t, e, corev1alpha1.BackupSessionSucceeded, mended)
	t.Logf("BackupSession %s Succeeded after the password was mended", good.Name)
	waitQuery(t, prom, "keepsake_backup_last_failed"+watchedSelector(e), demo.Timeout, valueIs(0))
	waitNoAlerts(t, prom, "the watched configuration's alerts resolved")
}

// waitNoAlerts waits until the watched configuration has no alert pending
// or firing.
func waitNoAlerts(t *testing.T, prom *servers.Prometheus, what string) {
	t.Helper()
	err := demo.Poll(demo.Context(t, demo.Timeout), what, func(ctx context.Context) (bool, string, error) {
		left := watchedAlerts(t, prom)
		return len(left) == 0, strings.Join(left, ", "), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dashboardPanels: every target of every panel in the chart's dashboard
// returns data over the layout's run, queried as Grafana does (a range
// query), in this Prometheus.
func dashboardPanels(t *testing.T, e *demo.Env, prom *servers.Prometheus, start time.Time) {
	data, err := os.ReadFile(filepath.Join(e.Root, "charts", "keepsake", "files", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("dashboard.json has no panels")
	}
	window := promv1.Range{Start: start, End: time.Now(), Step: 5 * time.Second}
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			v, warnings, err := prom.API.QueryRange(demo.Context(t, time.Minute), target.Expr, window)
			if err != nil {
				t.Errorf("panel %q: %s: %v", p.Title, target.Expr, err)
				continue
			}
			if m, ok := v.(model.Matrix); !ok || len(m) == 0 {
				t.Errorf("panel %q: %s returns no data (warnings %v)", p.Title, target.Expr, warnings)
			}
		}
	}
}

// watchedSelector selects the watched configuration's session.
func watchedSelector(e *demo.Env) string {
	return fmt.Sprintf(`{namespace=%q, backup_configuration="watched", session="scheduled"}`, e.Params.Namespace)
}

func valueIs(want float64) func(model.Vector) bool {
	return func(v model.Vector) bool { return len(v) == 1 && float64(v[0].Value) == want }
}

// waitQuery polls an instant query until ok accepts its result.
func waitQuery(t *testing.T, prom *servers.Prometheus, expr string, bound time.Duration, ok func(model.Vector) bool) {
	t.Helper()
	err := demo.Poll(demo.Context(t, bound), expr, func(ctx context.Context) (bool, string, error) {
		v, _, err := prom.API.Query(ctx, expr, time.Now())
		if err != nil {
			return false, "", err
		}
		vec, _ := v.(model.Vector)
		return ok(vec), v.String(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitAlert waits until alert fires for the watched configuration.
func waitAlert(t *testing.T, prom *servers.Prometheus, alert string, bound time.Duration) {
	t.Helper()
	err := demo.Poll(demo.Context(t, bound), alert+" firing", func(ctx context.Context) (bool, string, error) {
		alerts := watchedAlerts(t, prom)
		return slices.Contains(alerts, alert+"=firing"), strings.Join(alerts, ", "), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// watchedAlerts lists the watched configuration's active alerts (pending
// or firing) as name=state.
func watchedAlerts(t *testing.T, prom *servers.Prometheus) []string {
	t.Helper()
	res, err := prom.API.Alerts(demo.Context(t, time.Minute))
	if err != nil {
		t.Fatalf("alerts API: %v", err)
	}
	var out []string
	for _, a := range res.Alerts {
		if a.Labels["backup_configuration"] == "watched" {
			out = append(out, string(a.Labels["alertname"])+"="+string(a.State))
		}
	}
	return out
}

// lastSuccess is the watched session's lastSuccessfulBackup.
func lastSuccess(t *testing.T, e *demo.Env) time.Time {
	t.Helper()
	var bc corev1alpha1.BackupConfiguration
	if err := e.Kube.Get(demo.Context(t, time.Minute), client.ObjectKey{Namespace: e.Params.Namespace, Name: "watched"}, &bc); err != nil {
		t.Fatal(err)
	}
	for _, s := range bc.Status.Sessions {
		if s.Name == "scheduled" && s.LastSuccessfulBackup != nil {
			return s.LastSuccessfulBackup.Time
		}
	}
	return time.Time{}
}

// waitSession waits for a BackupSession of the watched configuration that
// was created after since and ended in phase.
func waitSession(t *testing.T, e *demo.Env, phase corev1alpha1.BackupSessionPhase, since time.Time) *corev1alpha1.BackupSession {
	t.Helper()
	var found *corev1alpha1.BackupSession
	err := demo.Poll(demo.Context(t, demo.Timeout), "a "+string(phase)+" BackupSession of watched", func(ctx context.Context) (bool, string, error) {
		var list corev1alpha1.BackupSessionList
		if err := e.Kube.List(ctx, &list, client.InNamespace(e.Params.Namespace),
			client.MatchingLabels{corev1alpha1.LabelBackupConfiguration: "watched"}); err != nil {
			return false, "", err
		}
		var phases []string
		for i, b := range list.Items {
			phases = append(phases, b.Name+"="+string(b.Status.Phase))
			if b.Status.Phase == phase && b.Status.CompletionTime != nil && !b.CreationTimestamp.Time.Before(since.Truncate(time.Second)) {
				found = &list.Items[i]
				return true, "", nil
			}
		}
		return false, strings.Join(phases, ", "), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

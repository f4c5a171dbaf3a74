package metrics

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/test/servers"
)

var api client.Client

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		return
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	srv, err := servers.StartAPIServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Stop()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, corev1alpha1.AddToScheme, storagev1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	if api, err = client.New(srv.Config, client.Options{Scheme: scheme}); err != nil {
		panic(err)
	}
	return m.Run()
}

// example creates docs/examples/<name>.yaml as obj in namespace ns, named
// name, with status set by mutate.
func example[T client.Object](t *testing.T, file, ns, name string, obj T, mutate func(T)) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(servers.RepoRoot(t), "docs", "examples", file+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, obj); err != nil {
		t.Fatal(err)
	}
	obj.SetNamespace(ns)
	obj.SetName(name)
	ctx := context.Background()
	if err := api.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	mutate(obj)
	if err := api.Status().Update(ctx, obj); err != nil {
		t.Fatal(err)
	}
}

// TestCollect creates the objects a day of backups leaves (a configuration
// with an older success and a newer failure, a Snapshot, a Repository, a
// failed restore) and checks what a scrape reports, value by value.
func TestCollect(t *testing.T) {
	ctx := context.Background()
	ns := "metrics-collect"
	if err := api.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	success := metav1.NewTime(time.Unix(1_800_000_000, 0))
	failure := metav1.NewTime(success.Add(time.Hour))
	example(t, "backupconfiguration", ns, "metrics-backup", &corev1alpha1.BackupConfiguration{}, func(bc *corev1alpha1.BackupConfiguration) {
		bc.Status.Phase = corev1alpha1.BackupConfigurationReady
		bc.Status.Sessions = []corev1alpha1.SessionStatus{{Name: "hourly", LastSuccessfulBackup: &success}}
	})
	example(t, "backupsession", ns, "good", &corev1alpha1.BackupSession{}, func(b *corev1alpha1.BackupSession) {
		start := metav1.NewTime(success.Add(-90 * time.Second))
		b.Status = corev1alpha1.BackupSessionStatus{Phase: corev1alpha1.BackupSessionSucceeded, StartTime: &start, CompletionTime: &success,
			Snapshots: []corev1alpha1.SnapshotReference{{Name: "good-metrics-hourly", Repository: "metrics-hourly"}}}
	})
	example(t, "backupsession", ns, "bad", &corev1alpha1.BackupSession{}, func(b *corev1alpha1.BackupSession) {
		start := metav1.NewTime(failure.Add(-30 * time.Second))
		b.Status = corev1alpha1.BackupSessionStatus{Phase: corev1alpha1.BackupSessionFailed, StartTime: &start, CompletionTime: &failure}
	})
	example(t, "snapshot", ns, "good-metrics-hourly", &storagev1alpha1.Snapshot{}, func(s *storagev1alpha1.Snapshot) {
		s.Status.Phase = storagev1alpha1.SnapshotSucceeded
		s.Status.Components = map[string]storagev1alpha1.ComponentStatus{
			"telemetry": {Phase: storagev1alpha1.ComponentSucceeded, SizeBytes: 1000, DataAdded: "100 B"},
			"events":    {Phase: storagev1alpha1.ComponentSucceeded, SizeBytes: 500, DataAdded: "1.0 KiB"},
		}
	})
	example(t, "repository", ns, "metrics-hourly", &storagev1alpha1.Repository{}, func(r *storagev1alpha1.Repository) {
		r.Status = storagev1alpha1.RepositoryStatus{Phase: storagev1alpha1.RepositoryReady, SnapshotCount: 3, SizeBytes: 754_000, Integrity: new(false)}
	})
	example(t, "restoresession", ns, "metrics-restore", &corev1alpha1.RestoreSession{}, func(rs *corev1alpha1.RestoreSession) {
		rs.Status.Phase = corev1alpha1.RestoreFailed
	})

	c := &collector{}
	var r client.Reader = api
	c.reader.Store(&r)
	labels := `backup_configuration="metrics-backup",namespace="metrics-collect",session="hourly"`
	want := fmt.Sprintf(`
# HELP keepsake_backup_last_success_timestamp_seconds When the newest successful backup of a session completed (Unix time).
# TYPE keepsake_backup_last_success_timestamp_seconds gauge
keepsake_backup_last_success_timestamp_seconds{%[1]s} 1.8e+09
# HELP keepsake_backup_last_failed 1 when the newest finished backup of a session failed, else 0.
# TYPE keepsake_backup_last_failed gauge
keepsake_backup_last_failed{%[1]s} 1
# HELP keepsake_backup_last_duration_seconds How long the newest finished backup of a session ran.
# TYPE keepsake_backup_last_duration_seconds gauge
keepsake_backup_last_duration_seconds{%[1]s} 30
# HELP keepsake_backup_schedule_interval_seconds Time between two runs of the session's schedule (the next two).
# TYPE keepsake_backup_schedule_interval_seconds gauge
keepsake_backup_schedule_interval_seconds{%[1]s} 3600
# HELP keepsake_backup_sessions BackupSessions of a session that exist, by phase (Running ones are the sessions running now).
# TYPE keepsake_backup_sessions gauge
keepsake_backup_sessions{%[2]s,phase="Failed",session="hourly"} 1
keepsake_backup_sessions{%[2]s,phase="Succeeded",session="hourly"} 1
# HELP keepsake_backup_last_dump_bytes Size of the dump the newest successful backup of a session stored in a repository.
# TYPE keepsake_backup_last_dump_bytes gauge
keepsake_backup_last_dump_bytes{%[2]s,repository="metrics-hourly",session="hourly"} 1500
# HELP keepsake_backup_last_added_bytes Bytes the newest successful backup of a session added to a repository (after deduplication).
# TYPE keepsake_backup_last_added_bytes gauge
keepsake_backup_last_added_bytes{%[2]s,repository="metrics-hourly",session="hourly"} 1124
# HELP keepsake_repository_stored_bytes Bytes the Repository's status reports as stored.
# TYPE keepsake_repository_stored_bytes gauge
keepsake_repository_stored_bytes{namespace="metrics-collect",repository="metrics-hourly"} 754000
# HELP keepsake_repository_integrity_ok 1 when the Repository's last integrity check passed, 0 when it failed; absent before the first check.
# TYPE keepsake_repository_integrity_ok gauge
keepsake_repository_integrity_ok{namespace="metrics-collect",repository="metrics-hourly"} 0
# HELP keepsake_restore_last_failed 1 when the newest finished restore from a Repository failed (Failed or Invalid), else 0.
# TYPE keepsake_restore_last_failed gauge
keepsake_restore_last_failed{namespace="metrics-collect",repository="metrics-hourly"} 1
`, labels, `backup_configuration="metrics-backup",namespace="metrics-collect"`)
	names := []string{"keepsake_backup_last_success_timestamp_seconds", "keepsake_backup_last_failed",
		"keepsake_backup_last_duration_seconds", "keepsake_backup_schedule_interval_seconds", "keepsake_backup_sessions",
		"keepsake_backup_last_dump_bytes", "keepsake_backup_last_added_bytes", "keepsake_repository_stored_bytes",
		"keepsake_repository_integrity_ok", "keepsake_restore_last_failed"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.CollectAndLint(c); err != nil || len(n) > 0 {
		t.Fatalf("lint: %v %v", n, err)
	}
}

// TestMetricsDocs checks that docs/metrics.md lists every metric the
// collector describes.
func TestMetricsDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(servers.RepoRoot(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 64)
	(&collector{}).Describe(ch)
	close(ch)
	name := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		m := name.FindStringSubmatch(d.String())
		if m == nil || !strings.Contains(string(doc), "`"+m[1]+"`") {
			t.Errorf("docs/metrics.md does not list %s", d)
		}
	}
}

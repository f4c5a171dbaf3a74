// Package metrics exports Keepsake's own Prometheus metrics through
// controller-runtime's registry (the operator's /metrics endpoint).
//
// Every value is read from the objects' status at scrape time, from the
// manager's cache: nothing is counted in memory, so a restarted operator
// reports exactly what the one before it did, and a value is gone when its
// object is. This is also why "how many backups succeeded" is a gauge of
// the BackupSessions that exist, by phase, and not a _total counter: a
// counter kept in memory would restart at zero with the operator.
//
// Labels are bounded by what users declare (namespace, BackupConfiguration,
// session, Repository, phase): no Snapshot, BackupSession or RestoreSession
// name is ever a label.
package metrics

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// scrapeTimeout bounds one scrape's reads of the cache.
const scrapeTimeout = 10 * time.Second

// Labels of the per-session backup metrics.
var sessionLabels = []string{"namespace", "backup_configuration", "session"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("keepsake_"+name, help, labels, nil)
}

var (
	backupLastSuccess = desc("backup_last_success_timestamp_seconds",
		"When the newest successful backup of a session completed (Unix time).", sessionLabels...)
	backupLastCompletion = desc("backup_last_completion_timestamp_seconds",
		"When the newest finished (Succeeded or Failed) backup of a session completed (Unix time).", sessionLabels...)
	backupLastFailed = desc("backup_last_failed",
		"1 when the newest finished backup of a session failed, else 0.", sessionLabels...)
	backupLastDuration = desc("backup_last_duration_seconds",
		"How long the newest finished backup of a session ran.", sessionLabels...)
	backupNextSchedule = desc("backup_next_schedule_timestamp_seconds",
		"When the session's schedule runs next (Unix time).", sessionLabels...)
	backupInterval = desc("backup_schedule_interval_seconds",
		"Time between two runs of the session's schedule (the next two).", sessionLabels...)
	backupSessions = desc("backup_sessions",
		"BackupSessions of a session that exist, by phase (Running ones are the sessions running now).",
		append(sessionLabels, "phase")...)
	backupDumpBytes = desc("backup_last_dump_bytes",
		"Size of the dump the newest successful backup of a session stored in a repository.",
		append(sessionLabels, "repository")...)
	backupAddedBytes = desc("backup_last_added_bytes",
		"Bytes the newest successful backup of a session added to a repository (after deduplication).",
		append(sessionLabels, "repository")...)
	configurationReady = desc("backup_configuration_ready",
		"1 when the BackupConfiguration is Ready, else 0.", "namespace", "backup_configuration", "phase")
	repositoryReady = desc("repository_ready",
		"1 when the Repository is Ready, else 0.", "namespace", "repository")
	repositorySnapshots = desc("repository_snapshots",
		"Snapshots the Repository holds.", "namespace", "repository")
	repositoryStored = desc("repository_stored_bytes",
		"Bytes the Repository's status reports as stored.", "namespace", "repository")
	repositoryIntegrity = desc("repository_integrity_ok",
		"1 when the Repository's last integrity check passed, 0 when it failed; absent before the first check.",
		"namespace", "repository")
	restoreSessions = desc("restore_sessions",
		"RestoreSessions that exist, by phase.", "namespace", "phase")
	restoreLastFailed = desc("restore_last_failed",
		"1 when the newest finished restore from a Repository failed (Failed or Invalid), else 0.",
		"namespace", "repository")
)

// collector reads the current manager's cache at each scrape.
type collector struct {
	reader atomic.Pointer[client.Reader]
}

var (
	current  collector
	register sync.Once
)

// Register makes the operator's /metrics serve Keepsake's metrics read
// through r (the manager's cached client). The collector is registered
// once per process; a later manager (tests restart it) takes over the
// reads.
func Register(r client.Reader) {
	current.reader.Store(&r)
	register.Do(func() { crmetrics.Registry.MustRegister(&current) })
}

// Describe sends every metric's description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{backupLastSuccess, backupLastCompletion, backupLastFailed,
		backupLastDuration, backupNextSchedule, backupInterval, backupSessions, backupDumpBytes,
		backupAddedBytes, configurationReady, repositoryReady, repositorySnapshots, repositoryStored,
		repositoryIntegrity, restoreSessions, restoreLastFailed} {
		ch <- d
	}
}

// Collect reads the objects and sends their metrics. A list that fails
// leaves its metrics out of this scrape (Prometheus then sees them absent,
// and the operator's log has the error).
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	r := c.reader.Load()
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	emit := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	collectBackups(ctx, *r, emit)
	collectStorage(ctx, *r, emit)
}

// emitter sends one gauge.
type emitter func(d *prometheus.Desc, v float64, labels ...string)

// boolValue is 1 for true.
func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

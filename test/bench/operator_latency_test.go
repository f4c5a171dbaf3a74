package bench

import (
	"fmt"
	"sort"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/test/cluster"
	"github.com/keepsake-dev/keepsake/test/demo"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// latencyFixtures is a namespace's target (a StatefulSet with no replicas:
// the backups themselves do not matter here), local storage and a
// BackupConfiguration whose sessions may overlap.
const latencyFixtures = `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: {{.Namespace}}}
spec:
  replicas: 0
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: keepsake.local/busybox:1.35}]}
---
apiVersion: v1
kind: Secret
metadata: {name: restic-password, namespace: {{.Namespace}}}
stringData: {RESTIC_PASSWORD: bench}
---
apiVersion: storage.keepsake.dev/v1alpha1
kind: BackupStorage
metadata: {name: local, namespace: {{.Namespace}}}
spec:
  storage:
    provider: local
    local: {volumeSource: {persistentVolumeClaim: {claimName: backups}}}
---
apiVersion: core.keepsake.dev/v1alpha1
kind: BackupConfiguration
metadata: {name: latency, namespace: {{.Namespace}}}
spec:
  target: {apiGroup: apps, kind: StatefulSet, name: db}
  backends: [{name: local, storageRef: {name: local}}]
  sessions:
    - name: scheduled
      scheduler: {schedule: "0 0 1 1 *", concurrencyPolicy: Allow}
      addon: {name: hyperbytedb, tasks: [{name: logical-backup}]}
      repositories: [{name: latency, backend: local, directory: latency, encryptionSecret: {name: restic-password}}]
      backupTimeout: 2m
      sessionHistoryLimit: 0
`

// BenchmarkBackupSessionToJob measures, on the local cluster with the
// operator installed by Helm, the time from creating a BackupSession to a
// watch seeing its Job (target p99 < 1 s). The baseline, in the same run,
// is the API server's own round trip: creating a ConfigMap until a watch
// sees it.
func BenchmarkBackupSessionToJob(b *testing.B) {
	servers.SkipIfShort(b, "the latency benchmark needs the local cluster")
	samples := envInt(b, "KEEPSAKE_BENCH_SESSIONS", 40)
	c := cluster.Ensure(b)
	root, err := servers.FindRepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	stand, err := demo.NewStand(c.Config, root, cluster.TestLog{T: b})
	if err != nil {
		b.Fatal(err)
	}
	ctx := demo.Context(b, 30*time.Minute)
	if err := stand.Install(ctx); err != nil {
		b.Fatal(err)
	}
	ns := c.Namespace(b, "bench-latency", "restricted")
	if err := stand.Apply(ctx, latencyFixtures, demo.Params{Namespace: ns}); err != nil {
		b.Fatal(err)
	}
	// Informers see new objects as a controller would; they retry what a
	// bare watch would give up on (the watch cache lagging a moment).
	cfg := c.Config.RESTConfig()
	cfg.Timeout = 0
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	jobs, maps := added(b, factory.Batch().V1().Jobs().Informer()), added(b, factory.Core().V1().ConfigMaps().Informer())
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	// The first session shows the configuration is Ready.
	waitEvent(b, jobs, func(o any) bool { _, ok := o.(*batchv1.Job); return ok })

	for range b.N {
		var toJob, floor []time.Duration
		for i := range samples {
			name := fmt.Sprintf("latency-%d-%d", time.Now().UnixNano(), i)
			bks := &corev1alpha1.BackupSession{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec:       corev1alpha1.BackupSessionSpec{BackupConfiguration: "latency", Session: "scheduled"},
			}
			start := time.Now()
			if err := stand.Kube.Create(ctx, bks); err != nil {
				b.Fatal(err)
			}
			waitEvent(b, jobs, func(o any) bool {
				j, ok := o.(*batchv1.Job)
				return ok && j.Labels[corev1alpha1.LabelBackupSession] == name
			})
			toJob = append(toJob, time.Since(start))

			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
			start = time.Now()
			if err := stand.Kube.Create(ctx, cm); err != nil {
				b.Fatal(err)
			}
			waitEvent(b, maps, func(o any) bool { m, ok := o.(*corev1.ConfigMap); return ok && m.Name == name })
			floor = append(floor, time.Since(start))
			// Its Job goes with it: the pods of 40 backups must not pile up.
			if err := stand.Kube.Delete(ctx, bks, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
				b.Fatal(err)
			}
		}
		p50, p99 := percentile(toJob, 50), percentile(toJob, 99)
		f50, f99 := percentile(floor, 50), percentile(floor, 99)
		b.ReportMetric(p50.Seconds(), "p50-s")
		b.ReportMetric(p99.Seconds(), "p99-s")
		b.ReportMetric(f99.Seconds(), "floor-p99-s")
		b.ReportMetric(float64(p99)/float64(f99), "p99/floor-p99")
		b.Logf("BackupSession -> Job over %d sessions: p50 %s, p99 %s (target < 1s); API round trip p50 %s, p99 %s",
			samples, p50.Round(time.Millisecond), p99.Round(time.Millisecond), f50.Round(time.Millisecond), f99.Round(time.Millisecond))
	}
}

// added sends each object the informer sees added.
func added(b *testing.B, inf cache.SharedIndexInformer) <-chan any {
	b.Helper()
	ch := make(chan any, 1024)
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(o any) { ch <- o }}); err != nil {
		b.Fatal(err)
	}
	return ch
}

// waitEvent reads added objects until one matches, within a minute.
func waitEvent(b *testing.B, objs <-chan any, match func(any) bool) {
	b.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case o := <-objs:
			if match(o) {
				return
			}
		case <-timeout:
			b.Fatal("no matching object within a minute")
		}
	}
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := (p*len(s) + 99) / 100
	return s[max(rank-1, 0)]
}

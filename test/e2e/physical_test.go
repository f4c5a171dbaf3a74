package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/test/cluster"
	"github.com/keepsake-dev/keepsake/test/demo"
)

// physicalDB is an InfluxDB 1.x StatefulSet of the layout's own, without
// authentication (the RPC port has none anyway), its RPC service bound to
// every address (the image binds 127.0.0.1:8088, out of the backup Job's
// reach) and exposed with the HTTP API by a Service named like it: the
// driver's default url and rpcAddress. Its pods start and stop together
// (Parallel). A Service per pod lets the test, on the node, read each
// replica, and a backup read one pod whole.
const physicalDB = `
apiVersion: v1
kind: Service
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  selector: {app: {{.Name}}}
  ports:
    - {name: http, port: 8086, targetPort: 8086}
    - {name: rpc, port: 8088, targetPort: 8088}
{{- range .Ordinals}}
---
apiVersion: v1
kind: Service
metadata: {name: {{$.Name}}-{{.}}, namespace: {{$.Namespace}}}
spec:
  selector: {statefulset.kubernetes.io/pod-name: {{$.Name}}-{{.}}}
  ports:
    - {name: http, port: 8086, targetPort: 8086}
    - {name: rpc, port: 8088, targetPort: 8088}
{{- end}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  serviceName: {{.Name}}
  replicas: {{len .Ordinals}}
  podManagementPolicy: Parallel
  selector:
    matchLabels: {app: {{.Name}}}
  template:
    metadata:
      labels: {app: {{.Name}}}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: influxdb
          image: {{.Image}}
          imagePullPolicy: Never
          env:
            - {name: INFLUXDB_BIND_ADDRESS, value: ":8088"}
          ports:
            - {name: http, containerPort: 8086}
            - {name: rpc, containerPort: 8088}
          readinessProbe:
            httpGet: {path: /ping, port: 8086}
            periodSeconds: 2
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: ["ALL"]}
          volumeMounts:
            - {name: data, mountPath: /var/lib/influxdb}
  volumeClaimTemplates:
    - metadata: {name: data}
      spec:
        accessModes: ["ReadWriteOnce"]
        resources:
          requests: {storage: 1Gi}
`

// hyperbytedbCluster is the HyperbyteDB operator's object for a cluster
// whose StatefulSet the test makes itself (that operator cannot run here).
const hyperbytedbCluster = `
apiVersion: hyperbytedb.hyperbyte.cloud/v1alpha1
kind: HyperbytedbCluster
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  replicas: 1
  image: {{.Image}}
  paused: false
`

// physicalBackup backs Target up with the addon's backup task Task
// (physical-backup or hyperbytedb-backup), once: the schedule never comes
// within a test, the first session runs at once.
// Pod, when set, is the Service of the one pod the backup reads: through
// a Service in front of several pods each of influxd backup's
// connections may reach another pod, and the shard IDs of the metastore
// read from one are not those of the shards read from another.
const physicalBackup = `
apiVersion: core.keepsake.dev/v1alpha1
kind: BackupConfiguration
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  target: {apiGroup: {{.Group}}, kind: {{.Kind}}, name: {{.Target}}}
  backends:
    - name: minio
      storageRef: {name: minio}
  sessions:
    - name: manual
      scheduler: {schedule: "0 0 1 1 *"}
      addon:
        name: hyperbytedb
        tasks:
          - name: {{.Task}}
{{- if .Pod}}
            params:
              url: http://{{.Pod}}.{{.Namespace}}.svc:8086
              rpcAddress: {{.Pod}}.{{.Namespace}}.svc:8088
{{- end}}
      repositories:
        - name: {{.Name}}-repo
          backend: minio
          directory: {{.Name}}
          encryptionSecret: {name: restic-password}
      backupTimeout: 10m
`

// physicalRestore restores Snapshot into Target with the addon's restore
// task Task (physical-restore or hyperbytedb-restore); Influxd, when set,
// is the task's influxd parameter.
const physicalRestore = `
apiVersion: core.keepsake.dev/v1alpha1
kind: RestoreSession
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  target: {apiGroup: {{.Group}}, kind: {{.Kind}}, name: {{.Target}}}
  dataSource:
    repository: {name: {{.Repository}}}
    snapshot: {{.Snapshot}}
  addon:
    name: hyperbytedb
    tasks:
      - name: {{.Task}}
{{- if .Influxd}}
        params: {influxd: {{.Influxd}}}
{{- end}}
  restoreTimeout: 10m
`

// offlinePhases are the phases of an offline restore that succeeds, after
// Pending (which a watch may see or not: it can last one pass).
var offlinePhases = []corev1alpha1.RestoreSessionPhase{
	corev1alpha1.RestoreScalingDown, corev1alpha1.RestoreRestoring, corev1alpha1.RestoreScalingUp, corev1alpha1.RestoreSucceeded,
}

// physical is issue 16's physical mode on the cluster, in a namespace of
// its own: InfluxDB StatefulSets with PVCs backed up with influxd's own
// backup, then restored offline (scaled to 0, one Job per PVC, scaled
// back), through the StatefulSet and through a HyperbytedbCluster, and
// HyperbyteDB's own tool reading a running server's PVC (side by side);
// then the operator killed while restoring, and a restore Job that fails.
func physical(t *testing.T, c *cluster.Cluster, e *demo.Env) {
	l := newPhysicalLayout(t, c, e)
	var snap string
	var want hyperbytedbtest.Contents
	// The two targets are independent: they run side by side.
	var wg sync.WaitGroup
	wg.Go(func() { t.Run("statefulset", func(t *testing.T) { snap, want = l.statefulSet(t) }) })
	wg.Go(func() { t.Run("hyperbytedb cluster", l.hyperbytedbCluster) })
	wg.Go(func() { t.Run("hyperbytedb tool", l.hyperbytedbTool) })
	wg.Wait()
	if snap == "" {
		t.FailNow()
	}
	t.Run("operator killed while restoring", func(t *testing.T) { l.operatorKilled(t, snap, want) })
	t.Run("restore job fails", func(t *testing.T) { l.jobFails(t, snap, want) })
}

// physicalLayout is the physical layout's cluster, namespace and watch
// client.
type physicalLayout struct {
	c *cluster.Cluster
	e *demo.Env
	// wc watches RestoreSessions.
	wc client.WithWatch
}

// newPhysicalLayout installs the HyperbytedbCluster CRD (a cut-down copy
// of the HyperbyteDB operator's; a new kind, which no other layout sees)
// and makes the layout's two databases: StatefulSet physical of two
// replicas and HyperbytedbCluster hdb of one.
func newPhysicalLayout(t *testing.T, c *cluster.Cluster, e *demo.Env) *physicalLayout {
	e = e.With(t)
	wc, err := client.NewWithWatch(c.RESTConfig(), client.Options{Scheme: e.Kube.Scheme(), Mapper: e.Kube.RESTMapper()})
	if err != nil {
		t.Fatal(err)
	}
	installHyperbytedbCRD(t, e)
	l := &physicalLayout{c: c, e: e, wc: wc}
	apply(t, e, hyperbytedbCluster, map[string]string{"Name": "hdb", "Image": cluster.InfluxDBImage})
	for name, replicas := range map[string]int{"physical": 2, "hdb": 1} {
		data := map[string]any{"Namespace": e.Params.Namespace, "Name": name, "Image": cluster.InfluxDBImage, "Ordinals": ordinals(replicas)}
		if err := e.Stand.Apply(demo.Context(t, time.Minute), physicalDB, data); err != nil {
			t.Fatal(err)
		}
	}
	l.waitReady(t, "physical", 2)
	l.waitReady(t, "hdb", 1)
	return l
}

// installHyperbytedbCRD applies the HyperbytedbCluster CRD of
// test/servers/crds, as a user installs a CRD, and waits until the API
// server serves it.
func installHyperbytedbCRD(t *testing.T, e *demo.Env) {
	t.Helper()
	ctx := demo.Context(t, 2*time.Minute)
	dir := filepath.Join(e.Root, "test", "servers", "crds")
	if _, err := e.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=2m",
		"crd/hyperbytedbclusters.hyperbytedb.hyperbyte.cloud"); err != nil {
		t.Fatal(err)
	}
}

// ordinals are 0 to n-1: a StatefulSet's pod ordinals.
func ordinals(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// replicas are the API of each pod of StatefulSet name, as the node
// reaches them (through their Services).
func (l *physicalLayout) replicas(t *testing.T, name string, n int) []hyperbytedbtest.Server {
	t.Helper()
	out := make([]hyperbytedbtest.Server, n)
	for i := range out {
		u, err := l.e.ServiceURL(demo.Context(t, time.Minute), l.e.Params.Namespace, fmt.Sprintf("%s-%d", name, i), 8086)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = hyperbytedbtest.Server{URL: u}
	}
	return out
}

// waitReady waits until StatefulSet name has replicas Ready pods, and each
// answers through its Service. kube-proxy follows a new pod's address a
// moment after the pod is Ready, and a connection opened before that is
// never translated: it reaches whatever the node's route leads to, for as
// long as it lives. So each ping opens a connection of its own, and the
// connections kept from before (to pods the restore stopped) are closed.
func (l *physicalLayout) waitReady(t *testing.T, name string, replicas int) []hyperbytedbtest.Server {
	t.Helper()
	waitStatefulSetReady(t, l.c, l.e.Params.Namespace, name, int32(replicas), demo.Timeout)
	http.DefaultClient.CloseIdleConnections()
	dbs := l.replicas(t, name, replicas)
	for _, db := range dbs {
		err := demo.Poll(demo.Context(t, 2*time.Minute), db.URL+" answering", func(ctx context.Context) (bool, string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, db.URL+"/ping", nil)
			if err != nil {
				return false, "", err
			}
			req.Close = true
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, err.Error(), nil
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusNoContent, resp.Status, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dbs
}

// fill writes the same points into every replica and returns their
// contents, which must be equal: the backup reads one replica.
func fill(t *testing.T, dbs []hyperbytedbtest.Server) hyperbytedbtest.Contents {
	t.Helper()
	ds := hyperbytedbtest.Mixed(time.Now())
	bulk := hyperbytedbtest.Bulk{DB: "bulk", N: 20_000, Series: 10}
	for _, db := range dbs {
		ds.Write(t, db)
		bulk.Write(t, db, 0, bulk.N)
	}
	return sameContents(t, dbs, "after the writes")
}

// sameContents reads every replica and fails unless they hold the same
// points; it returns them.
func sameContents(t *testing.T, dbs []hyperbytedbtest.Server, when string) hyperbytedbtest.Contents {
	t.Helper()
	first := hyperbytedbtest.ReadContents(t, dbs[0])
	for i, db := range dbs[1:] {
		if d := hyperbytedbtest.Diff(first, hyperbytedbtest.ReadContents(t, db), 10); d != "" {
			t.Fatalf("%s, replica %d differs from replica 0:\n%s", when, i+1, d)
		}
	}
	return first
}

// change writes more points, deletes some and adds a database on every
// replica, so that a restore has something to undo.
func change(t *testing.T, dbs []hyperbytedbtest.Server, round int) {
	t.Helper()
	for _, db := range dbs {
		db.Write(t, "metrics", "autogen", fmt.Sprintf("cpu,host=h9 value=%d 1700000000000000000", round))
		db.Exec(t, `DROP DATABASE "events"`)
		db.ExecIn(t, "metrics", `DROP MEASUREMENT "old"`)
		db.Exec(t, fmt.Sprintf(`CREATE DATABASE "added-%d"`, round))
		hyperbytedbtest.Bulk{DB: "bulk", N: 20_000, Series: 10, Version: round}.Write(t, db, 0, 5_000)
	}
}

// target names what a BackupConfiguration or RestoreSession acts on, and
// the Service of the one pod a backup of it reads ("" for the default,
// the target's Service).
type target struct{ group, kind, name, pod string }

var (
	statefulSetTarget = target{"apps", "StatefulSet", "physical", "physical-0"}
	clusterTarget     = target{"hyperbytedb.hyperbyte.cloud", "HyperbytedbCluster", "hdb", ""}
)

// backUp runs a physical backup of tg through BackupConfiguration name and
// returns its Snapshot's name.
func (l *physicalLayout) backUp(t *testing.T, name string, tg target) string {
	t.Helper()
	apply(t, l.e, physicalBackup, map[string]string{"Name": name, "Task": "physical-backup",
		"Group": tg.group, "Kind": tg.kind, "Target": tg.name, "Pod": tg.pod})
	bks := l.e.With(t).WaitBackupSession(backupconfiguration.FirstSessionName(name, "manual"), corev1alpha1.BackupSessionSucceeded)
	snap := sessionSnapshot(t, l.e, bks)
	comp, ok := snap.Status.Components["physical-backup"]
	if !ok || comp.ResticSnapshotID == "" {
		t.Fatalf("Snapshot %s has components %v, want physical-backup with a restic snapshot", snap.Name, snap.Status.Components)
	}
	logBackup(t, "physical backup of "+tg.kind+" "+tg.name, bks, snap)
	return snap.Name
}

// restoreRun is what a watch saw of one RestoreSession, from before its
// creation until it finished.
type restoreRun struct {
	// phases are the phases in order, repeats folded.
	phases []corev1alpha1.RestoreSessionPhase
	final  *corev1alpha1.RestoreSession
}

// restore creates RestoreSession name (restoring snapshot of repo into
// tg with physical-restore) once a watch on it runs, and follows it until
// it is finished, calling seen with each state the watch delivers.
func (l *physicalLayout) restore(t *testing.T, name, repo, snapshot string, tg target, influxd string,
	seen func(*corev1alpha1.RestoreSession)) restoreRun {
	t.Helper()
	return l.restoreWith(t, name, "physical-restore", repo, snapshot, tg, influxd, seen)
}

// restoreWith is restore with the addon's restore task task.
func (l *physicalLayout) restoreWith(t *testing.T, name, task, repo, snapshot string, tg target, influxd string,
	seen func(*corev1alpha1.RestoreSession)) restoreRun {
	t.Helper()
	ns := l.e.Params.Namespace
	lw := listWatch(
		func(ctx context.Context, o metav1.ListOptions) (*corev1alpha1.RestoreSessionList, error) {
			var list corev1alpha1.RestoreSessionList
			return &list, l.wc.List(ctx, &list, client.InNamespace(ns), &client.ListOptions{Raw: &o})
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return l.wc.Watch(ctx, &corev1alpha1.RestoreSessionList{}, client.InNamespace(ns), &client.ListOptions{Raw: &o})
		}, byName(name))
	var run restoreRun
	create := func(cache.Store) (bool, error) {
		apply(t, l.e, physicalRestore, map[string]string{"Name": name, "Task": task, "Repository": repo, "Snapshot": snapshot,
			"Group": tg.group, "Kind": tg.kind, "Target": tg.name, "Influxd": influxd})
		return false, nil
	}
	_, err := watchtools.UntilWithSync(demo.Context(t, demo.Timeout), lw, &corev1alpha1.RestoreSession{}, create,
		func(ev watch.Event) (bool, error) {
			rs, ok := ev.Object.(*corev1alpha1.RestoreSession)
			if !ok || ev.Type == watch.Deleted {
				return false, nil
			}
			if p := rs.Status.Phase; p != "" && (len(run.phases) == 0 || run.phases[len(run.phases)-1] != p) {
				run.phases = append(run.phases, p)
			}
			if seen != nil {
				seen(rs)
			}
			run.final = rs
			return rs.IsFinished(), nil
		})
	if err != nil {
		t.Fatalf("watch RestoreSession %s (phases seen: %v): %v", name, run.phases, err)
	}
	t.Logf("RestoreSession %s went %v in %s", name, run.phases, run.final.Status.Duration)
	return run
}

// checkPhases fails unless the run went through want in order, after
// Pending or not.
func checkPhases(t *testing.T, run restoreRun, want []corev1alpha1.RestoreSessionPhase) {
	t.Helper()
	got := run.phases
	if len(got) > 0 && got[0] == corev1alpha1.RestorePending {
		got = got[1:]
	}
	if !slices.Equal(got, want) {
		t.Errorf("RestoreSession %s went through phases %v, want [Pending?] %v; conditions: %+v",
			run.final.Name, run.phases, want, run.final.Status.Conditions)
	}
}

// checkBack fails unless StatefulSet name is back at replicas, all Ready,
// and the RestoreSession recorded its duration, the replica count, the
// PVCs, and how many of them it restored.
func (l *physicalLayout) checkBack(t *testing.T, run restoreRun, name string, replicas, restored int32) {
	t.Helper()
	var sts appsv1.StatefulSet
	if err := l.e.Kube.Get(demo.Context(t, time.Minute), client.ObjectKey{Namespace: l.e.Params.Namespace, Name: name}, &sts); err != nil {
		t.Fatal(err)
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != replicas || sts.Status.ReadyReplicas != replicas {
		t.Errorf("StatefulSet %s after the restore: spec.replicas %v, %d Ready, want %d and %d", name, sts.Spec.Replicas, sts.Status.ReadyReplicas, replicas, replicas)
	}
	if run.final.Status.Duration == "" {
		t.Errorf("RestoreSession %s ended %s with no duration", run.final.Name, run.final.Status.Phase)
	}
	off := run.final.Status.Offline
	if off == nil || len(off.PVCs) != int(replicas) || off.RestoredPVCs != restored || off.Replicas == nil || *off.Replicas != replicas {
		t.Errorf("status.offline = %+v, want %d PVCs, %d restored, replicas %d", off, replicas, restored, replicas)
	}
}

// checkContents fails unless every replica holds exactly want.
func checkContents(t *testing.T, dbs []hyperbytedbtest.Server, want hyperbytedbtest.Contents, what string) {
	t.Helper()
	for i, db := range dbs {
		if d := hyperbytedbtest.Diff(want, hyperbytedbtest.ReadContents(t, db), 10); d != "" {
			t.Errorf("replica %d %s:\n%s", i, what, d)
		}
	}
}

// statefulSet: a physical backup of the two-replica StatefulSet, data
// changed on both replicas, a physical restore. The phases come in order,
// both PVCs are restored, the StatefulSet is back at 2 Ready replicas and
// both hold every point of the backup and nothing else. It returns the
// Snapshot and its contents for the scenarios after.
func (l *physicalLayout) statefulSet(t *testing.T) (string, hyperbytedbtest.Contents) {
	dbs := l.replicas(t, "physical", 2)
	want := fill(t, dbs)
	snap := l.backUp(t, "physical", statefulSetTarget)
	change(t, dbs, 1)
	run := l.restore(t, "physical-first", "physical-repo", snap, statefulSetTarget, "", nil)
	checkPhases(t, run, offlinePhases)
	l.checkBack(t, run, "physical", 2, 2)
	checkContents(t, l.waitReady(t, "physical", 2), want, "after the physical restore")
	return snap, want
}

// hyperbytedbCluster: the same through HyperbytedbCluster hdb, which is
// paused while its StatefulSet is down (seen when the restore is
// Restoring) and unpaused after.
func (l *physicalLayout) hyperbytedbCluster(t *testing.T) {
	dbs := l.replicas(t, "hdb", 1)
	want := fill(t, dbs)
	snap := l.backUp(t, "hdb", clusterTarget)
	change(t, dbs, 1)
	pausedWhileRestoring := "not seen"
	run := l.restore(t, "hdb-restore", "hdb-repo", snap, clusterTarget, "", func(rs *corev1alpha1.RestoreSession) {
		if rs.Status.Phase == corev1alpha1.RestoreRestoring && pausedWhileRestoring == "not seen" {
			pausedWhileRestoring = fmt.Sprint(l.clusterPaused(t))
		}
	})
	checkPhases(t, run, offlinePhases)
	if pausedWhileRestoring != "true" {
		t.Errorf("HyperbytedbCluster hdb spec.paused while the restore was Restoring: %s, want true", pausedWhileRestoring)
	}
	if l.clusterPaused(t) {
		t.Errorf("HyperbytedbCluster hdb is still paused after the restore")
	}
	if off := run.final.Status.Offline; off == nil || !off.PausedOwner {
		t.Errorf("status.offline = %+v, want pausedOwner", off)
	}
	l.checkBack(t, run, "hdb", 1, 1)
	checkContents(t, l.waitReady(t, "hdb", 1), want, "after the physical restore through the HyperbytedbCluster")
}

// clusterPaused reads HyperbytedbCluster hdb's spec.paused.
func (l *physicalLayout) clusterPaused(t *testing.T) bool {
	t.Helper()
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("hyperbytedb.hyperbyte.cloud/v1alpha1")
	obj.SetKind("HyperbytedbCluster")
	if err := l.e.Kube.Get(demo.Context(t, time.Minute), client.ObjectKey{Namespace: l.e.Params.Namespace, Name: "hdb"}, obj); err != nil {
		t.Fatal(err)
	}
	paused, _, err := unstructured.NestedBool(obj.Object, "spec", "paused")
	if err != nil {
		t.Fatal(err)
	}
	return paused
}

// operatorKilled: the operator pod is deleted once the restore is
// Restoring and its Jobs exist. The new operator resumes from the status:
// the restore ends Succeeded with the Jobs made before the kill (one per
// PVC, none made again), the StatefulSet at its 2 replicas, every point
// back.
func (l *physicalLayout) operatorKilled(t *testing.T, snap string, want hyperbytedbtest.Contents) {
	dbs := l.replicas(t, "physical", 2)
	change(t, dbs, 2)
	const name = "physical-killed"
	var before map[types.UID]string
	run := l.restore(t, name, "physical-repo", snap, statefulSetTarget, "", func(rs *corev1alpha1.RestoreSession) {
		created := meta.IsStatusConditionTrue(rs.Status.Conditions, corev1alpha1.ConditionRestoreJobCreated)
		if before != nil || rs.Status.Phase != corev1alpha1.RestoreRestoring || !created {
			return
		}
		jobs := l.restoreJobs(t, name)
		before = jobUIDs(jobs)
		for _, j := range jobs {
			t.Logf("at the kill, Job %s: %d active, %d succeeded, %d failed", j.Name, j.Status.Active, j.Status.Succeeded, j.Status.Failed)
		}
		pods, err := l.e.OperatorPods(demo.Context(t, time.Minute))
		if err != nil || len(pods) != 1 {
			t.Fatalf("operator pods: %d, %v", len(pods), err)
		}
		t.Logf("deleting operator pod %s while the restore is Restoring, its Jobs %v", pods[0].Name, before)
		if _, err := l.e.Kubectl(demo.Context(t, time.Minute), "delete", "pod", "-n", demo.OperatorNamespace, pods[0].Name, "--wait=false"); err != nil {
			t.Fatal(err)
		}
	})
	if before == nil {
		t.Fatalf("the restore never showed Restoring with its Jobs created (phases %v): the operator was not killed", run.phases)
	}
	if err := l.e.WaitOperatorReady(demo.Context(t, demo.Timeout)); err != nil {
		t.Fatal(err)
	}
	checkPhases(t, run, offlinePhases)
	after := jobUIDs(l.restoreJobs(t, name))
	if len(before) != 2 || !maps.Equal(before, after) {
		t.Errorf("restore Jobs when the operator was killed: %v; at the end: %v; want the same 2, one per PVC", before, after)
	}
	l.checkBack(t, run, "physical", 2, 2)
	checkContents(t, l.waitReady(t, "physical", 2), want, "after the restore the operator was killed in")
}

// restoreJobs are the Jobs of RestoreSession name.
func (l *physicalLayout) restoreJobs(t *testing.T, name string) []batchv1.Job {
	t.Helper()
	var jobs batchv1.JobList
	if err := l.e.Kube.List(demo.Context(t, time.Minute), &jobs, client.InNamespace(l.e.Params.Namespace),
		client.MatchingLabels{corev1alpha1.LabelRestoreSession: name}); err != nil {
		t.Fatal(err)
	}
	return jobs.Items
}

// jobUIDs are the names of jobs by UID: a Job made again under the same
// name has another UID.
func jobUIDs(jobs []batchv1.Job) map[types.UID]string {
	out := map[types.UID]string{}
	for _, j := range jobs {
		out[j.UID] = j.Name
	}
	return out
}

// jobFails: a restore whose Jobs run a driver given an influxd that is
// not there fails in each Job. The StatefulSet is scaled back to its 2
// Ready replicas, the RestoreSession ends Failed with the Job's reason,
// and the database is as it was before the restore (the driver checks for
// influxd before it empties a PVC).
func (l *physicalLayout) jobFails(t *testing.T, snap string, backup hyperbytedbtest.Contents) {
	dbs := l.replicas(t, "physical", 2)
	change(t, dbs, 3)
	before := sameContents(t, dbs, "before the failing restore")
	const missing = "/usr/local/bin/no-such-influxd"
	run := l.restore(t, "physical-fails", "physical-repo", snap, statefulSetTarget, missing, nil)
	checkPhases(t, run, []corev1alpha1.RestoreSessionPhase{
		corev1alpha1.RestoreScalingDown, corev1alpha1.RestoreRestoring, corev1alpha1.RestoreScalingUp, corev1alpha1.RestoreFailed,
	})
	c := meta.FindStatusCondition(run.final.Status.Conditions, corev1alpha1.ConditionRestoreSucceeded)
	if c == nil || c.Reason != corev1alpha1.ReasonRestoreFailed || !strings.Contains(c.Message, "restore Job physical-fails-pvc-") ||
		!strings.Contains(c.Message, missing) || !strings.Contains(c.Message, "back at 2 replicas") {
		t.Errorf("RestoreSucceeded = %+v, want RestoreFailed naming the Job, the missing %s and the StatefulSet back at 2 replicas", c, missing)
	} else {
		t.Logf("as the user sees it: %s: %s", c.Reason, c.Message)
	}
	l.checkBack(t, run, "physical", 2, 0)
	back := l.waitReady(t, "physical", 2)
	checkContents(t, back, before, "after the failed restore (want the data as it was before it)")
	if hyperbytedbtest.Diff(backup, before, 1) == "" {
		t.Fatalf("the data before the failing restore equals the backup's: the check above proves nothing")
	}
}

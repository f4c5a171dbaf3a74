package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/test/cluster"
	"github.com/keepsake-dev/keepsake/test/demo"
)

// toolServer is a StatefulSet standing in for a HyperbyteDB server (which
// cannot be built here): busybox keeping files in HyperbyteDB's layout of
// its PVC (claim template data at /var/lib/hyperbytedb, as the HyperbyteDB
// operator mounts it): the WAL and metadata RocksDBs' files in wal/ and
// meta/, the chDB session directory chdb/ (with an empty directory), and
// raft/, which HyperbyteDB's backup and restore leave alone. It writes them
// when wal/CURRENT is missing (a new PVC, not a restored one), then prints
// the checksums of every file and the empty directories between "sums
// begin" and "sums end" whenever they change (checked every 2 s), so its
// log tells what its PVC holds; it is Ready once it printed them. Claims
// are its volumeClaimTemplates, data first.
const toolServer = `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  serviceName: {{.Name}}
  replicas: {{.Replicas}}
  selector:
    matchLabels: {app: {{.Name}}}
  template:
    metadata:
      labels: {app: {{.Name}}}
    spec:
      terminationGracePeriodSeconds: 10
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: server
          image: {{.Image}}
          imagePullPolicy: Never
          command: ["/bin/sh", "-c"]
          args:
            - |
              set -e
              cd /var/lib/hyperbytedb
              if [ ! -e wal/CURRENT ]; then
                mkdir -p wal meta chdb/metadata chdb/store/a1b/a1b2/all_1_1_0 chdb/tmp raft
                echo MANIFEST-000005 > wal/CURRENT
                echo wal manifest > wal/MANIFEST-000005
                head -c 300000 /dev/urandom > wal/000004.sst
                echo '[DBOptions]' > wal/OPTIONS-000007
                echo MANIFEST-000002 > meta/CURRENT
                echo db:metrics > meta/000003.log
                echo 'ATTACH DATABASE metrics' > chdb/metadata/metrics.sql
                head -c 100000 /dev/urandom > chdb/store/a1b/a1b2/all_1_1_0/data.bin
                echo raft entries > raft/log
              fi
              trap 'exit 0' TERM
              last=
              while :; do
                sums=$(find wal meta chdb raft -type d -empty | sort | sed 's/^/empty /'
                  find wal meta chdb raft -type f | sort | xargs sha256sum)
                if [ "$sums" != "$last" ]; then
                  printf 'sums begin\n%s\nsums end\n' "$sums"
                  echo "$sums" > /status/sums
                  last=$sums
                fi
                sleep 2
              done
          readinessProbe:
            exec: {command: ["/bin/test", "-s", "/status/sums"]}
            periodSeconds: 1
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: ["ALL"]}
          volumeMounts:
            - {name: data, mountPath: /var/lib/hyperbytedb}
            - {name: status, mountPath: /status}
      volumes:
        - {name: status, emptyDir: {}}
  volumeClaimTemplates:
{{- range .Claims}}
    - metadata: {name: {{.}}}
      spec:
        accessModes: ["ReadWriteOnce"]
        resources:
          requests: {storage: 1Gi}
{{- end}}
`

// toolChange is a Job that changes the files of PVC PVC while the server
// runs: it rewrites a file of the WAL, deletes one of the metadata, adds a
// chDB part and removes chDB's empty directory.
const toolChange = `
apiVersion: batch/v1
kind: Job
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: change
          image: {{.Image}}
          imagePullPolicy: Never
          command: ["/bin/sh", "-ec"]
          args:
            - |
              cd /var/lib/hyperbytedb
              echo rewritten > wal/MANIFEST-000005
              rm meta/000003.log
              mkdir -p chdb/store/a1b/a1b2/all_2_2_0
              echo added part > chdb/store/a1b/a1b2/all_2_2_0/data.bin
              rmdir chdb/tmp
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: ["ALL"]}
          volumeMounts:
            - {name: data, mountPath: /var/lib/hyperbytedb}
      volumes:
        - name: data
          persistentVolumeClaim: {claimName: {{.PVC}}}
`

// toolTarget is the StatefulSet standing in for a HyperbyteDB server.
var toolTarget = target{"apps", "StatefulSet", "tooldb", ""}

// hyperbytedbTool: HyperbyteDB's own tool (docs/physical-mode.md, run
// here as the emulation of its command line in
// keepsake.local/hyperbytedb-tool:dev) through the hyperbytedb-backup and
// hyperbytedb-restore tasks, on StatefulSet tooldb, which keeps running
// while the backup Job reads its PVC. First the two targets whose volume
// cannot be mounted.
func (l *physicalLayout) hyperbytedbTool(t *testing.T) {
	t.Run("target volume unavailable", l.toolVolumeUnavailable)
	l.applyToolServer(t, toolTarget.name, 1, "data")
	waitStatefulSetReady(t, l.c, l.e.Params.Namespace, toolTarget.name, 1, demo.Timeout)
	var snap string
	var backedUp map[string]string
	t.Run("backup", func(t *testing.T) { snap, backedUp = l.toolBackup(t) })
	if snap == "" {
		t.FailNow()
	}
	t.Run("restore", func(t *testing.T) { l.toolRestore(t, snap, backedUp) })
}

// applyToolServer applies StatefulSet name of toolServer with replicas
// and volumeClaimTemplates claims.
func (l *physicalLayout) applyToolServer(t *testing.T, name string, replicas int, claims ...string) {
	t.Helper()
	data := map[string]any{"Namespace": l.e.Params.Namespace, "Name": name, "Image": cluster.BusyboxImage,
		"Replicas": replicas, "Claims": claims}
	if err := l.e.Stand.Apply(demo.Context(t, time.Minute), toolServer, data); err != nil {
		t.Fatal(err)
	}
}

// toolVolumeUnavailable: a hyperbytedb-backup of a StatefulSet with two
// volumeClaimTemplates, and of one with one but without pod 0 (both at 0
// replicas: the templates are checked first), fails
// with reason TargetVolumeUnavailable and a message saying what is
// missing, and makes no Job.
func (l *physicalLayout) toolVolumeUnavailable(t *testing.T) {
	cases := map[string]struct {
		// claims are the StatefulSet's volumeClaimTemplates.
		claims []string
		// replicas is its replica count.
		replicas int
		// message is part of the BackupSucceeded condition's message.
		message string
	}{
		"two-claims": {claims: []string{"data", "logs"}, replicas: 0, message: "StatefulSet two-claims's pod 0, but the StatefulSet has 2 volumeClaimTemplates, not one"},
		"no-pod":     {claims: []string{"data"}, replicas: 0, message: "pod no-pod-0 not found"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			l.applyToolServer(t, name, tc.replicas, tc.claims...)
			waitStatefulSetReady(t, l.c, l.e.Params.Namespace, name, int32(tc.replicas), demo.Timeout)
			apply(t, l.e, physicalBackup, map[string]string{"Name": name, "Task": "hyperbytedb-backup",
				"Group": "apps", "Kind": "StatefulSet", "Target": name, "Pod": ""})
			session := backupconfiguration.FirstSessionName(name, "manual")
			bks := l.e.With(t).WaitBackupSession(session, corev1alpha1.BackupSessionFailed)
			c := meta.FindStatusCondition(bks.Status.Conditions, corev1alpha1.ConditionBackupSucceeded)
			if c == nil || c.Reason != corev1alpha1.ReasonTargetVolumeUnavailable || !strings.Contains(c.Message, tc.message) {
				t.Errorf("BackupSucceeded = %+v, want reason %s with %q", c, corev1alpha1.ReasonTargetVolumeUnavailable, tc.message)
			} else {
				t.Logf("as the user sees it: %s: %s", c.Reason, c.Message)
			}
			if jobs := sessionJobs(t, l.e, session); len(jobs) != 0 {
				t.Errorf("BackupSession %s made Jobs %v, want none", session, jobNames(jobs))
			}
		})
	}
}

// toolBackup backs tooldb up with hyperbytedb-backup while its server
// runs. The session Succeeds with one Job, which mounted pod 0's PVC
// read-only at /keepsake/target and ran on pod 0's node; the server pod
// ran on, unrestarted; the backup's stream holds wal/, meta/ and data/
// (the chDB directory) with exactly the files the server shows, and
// manifest.json last. It returns the Snapshot and the server's checksums.
func (l *physicalLayout) toolBackup(t *testing.T) (string, map[string]string) {
	const name = "tooldb"
	before := l.toolPod(t)
	sums := l.waitSums(t, "before the backup", func(map[string]string) bool { return true })
	apply(t, l.e, physicalBackup, map[string]string{"Name": name, "Task": "hyperbytedb-backup",
		"Group": toolTarget.group, "Kind": toolTarget.kind, "Target": toolTarget.name, "Pod": ""})
	session := backupconfiguration.FirstSessionName(name, "manual")
	bks := l.e.With(t).WaitBackupSession(session, corev1alpha1.BackupSessionSucceeded)
	snap := sessionSnapshot(t, l.e, bks)
	logBackup(t, "hyperbytedb backup of StatefulSet "+name, bks, snap)
	jobs := sessionJobs(t, l.e, session)
	if len(jobs) != 1 {
		t.Fatalf("BackupSession %s has Jobs %v, want one", session, jobNames(jobs))
	}
	l.checkTargetMount(t, &jobs[0], "data-"+name+"-0", before.Spec.NodeName)
	if after := l.toolPod(t); after.UID != before.UID || restarts(after) != 0 {
		t.Errorf("server pod %s: UID %s -> %s, %d restarts: want it running through the backup", after.Name, before.UID, after.UID, restarts(after))
	}
	if now := l.waitSums(t, "after the backup", func(map[string]string) bool { return true }); !maps.Equal(now, sums) {
		t.Fatalf("the files changed during the backup: %v, then %v", sums, now)
	}
	checkToolStream(t, readDump(t, l.e, name, snap), sums)
	return snap.Name, sums
}

// toolRestore changes tooldb's files with a Job, then restores the
// backup with hyperbytedb-restore: the phases come in order, the one PVC
// is restored by one Job, the StatefulSet is back at 1 Ready replica, and
// the new server pod shows every file and empty directory as at the
// backup.
func (l *physicalLayout) toolRestore(t *testing.T, snap string, backedUp map[string]string) {
	const change = "tooldb-change"
	apply(t, l.e, toolChange, map[string]string{"Name": change, "Image": cluster.BusyboxImage, "PVC": "data-tooldb-0"})
	waitJobComplete(t, l.c, l.e.Params.Namespace, change, demo.Timeout)
	changed := l.waitSums(t, "after the change", func(s map[string]string) bool { return !maps.Equal(s, backedUp) })
	t.Logf("changed: %s", diffSums(backedUp, changed))
	before := l.toolPod(t)
	const name = "tooldb-restore"
	run := l.restoreWith(t, name, "hyperbytedb-restore", "tooldb-repo", snap, toolTarget, "", nil)
	checkPhases(t, run, offlinePhases)
	if jobs := l.restoreJobs(t, name); len(jobs) != 1 {
		t.Errorf("RestoreSession %s has Jobs %v, want one (one PVC)", name, jobNames(jobs))
	}
	l.checkBack(t, run, toolTarget.name, 1, 1)
	waitStatefulSetReady(t, l.c, l.e.Params.Namespace, toolTarget.name, 1, demo.Timeout)
	if after := l.toolPod(t); after.UID == before.UID {
		t.Errorf("server pod %s is the one from before the restore (UID %s): it was never stopped", after.Name, after.UID)
	}
	restored := l.waitSums(t, "after the restore", func(map[string]string) bool { return true })
	if !maps.Equal(restored, backedUp) {
		t.Errorf("after the restore the PVC differs from the backup: %s", diffSums(backedUp, restored))
	}
}

// toolPod reads pod 0 of tooldb.
func (l *physicalLayout) toolPod(t *testing.T) *corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	key := client.ObjectKey{Namespace: l.e.Params.Namespace, Name: toolTarget.name + "-0"}
	if err := l.e.Kube.Get(demo.Context(t, time.Minute), key, &pod); err != nil {
		t.Fatal(err)
	}
	return &pod
}

// restarts is how often pod's containers restarted.
func restarts(pod *corev1.Pod) int32 {
	var n int32
	for _, s := range pod.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}

// waitSums waits until the last checksums tooldb-0 logged satisfy ok, and
// returns them: path to SHA-256, an empty directory as "dir/" to "".
func (l *physicalLayout) waitSums(t *testing.T, when string, ok func(map[string]string) bool) map[string]string {
	t.Helper()
	var sums map[string]string
	pod := toolTarget.name + "-0"
	err := demo.Poll(demo.Context(t, 2*time.Minute), "checksums in the log of "+pod+" "+when, func(ctx context.Context) (bool, string, error) {
		out, err := l.e.Kubectl(ctx, "logs", "-n", l.e.Params.Namespace, "pod/"+pod)
		if err != nil {
			return false, "", err
		}
		if sums, err = lastSums(out); err != nil {
			return false, err.Error(), nil
		}
		return ok(sums), fmt.Sprintf("%d entries, not yet as awaited", len(sums)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// lastSums parses the last block of checksums in a tooldb log.
func lastSums(log string) (map[string]string, error) {
	end := strings.LastIndex(log, "\nsums end\n")
	begin := strings.LastIndex(log[:max(end, 0)], "sums begin\n")
	if end < 0 || begin < 0 {
		return nil, errors.New("no complete block of checksums yet")
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(log[begin+len("sums begin\n"):end]), "\n") {
		if dir, ok := strings.CutPrefix(line, "empty "); ok {
			sums[dir+"/"] = ""
			continue
		}
		sum, path, ok := strings.Cut(line, "  ")
		if !ok {
			return nil, fmt.Errorf("checksum line %q", line)
		}
		sums[path] = sum
	}
	return sums, nil
}

// diffSums says what differs between two sets of checksums.
func diffSums(want, got map[string]string) string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[p]; !ok {
			out = append(out, p+" missing")
		} else if g != want[p] {
			out = append(out, p+" differs")
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			out = append(out, p+" added")
		}
	}
	return strings.Join(out, ", ")
}

// checkTargetMount fails unless backup Job job mounts PVC pvc read-only
// at /keepsake/target in every container, requires node by name, and its
// pod ran there.
func (l *physicalLayout) checkTargetMount(t *testing.T, job *batchv1.Job, pvc, node string) {
	t.Helper()
	spec := job.Spec.Template.Spec
	var volume string
	for _, v := range spec.Volumes {
		if c := v.PersistentVolumeClaim; c != nil && c.ClaimName == pvc && c.ReadOnly {
			volume = v.Name
		}
	}
	if volume == "" {
		t.Errorf("Job %s has volumes %+v, want PVC %s read-only", job.Name, spec.Volumes, pvc)
	}
	for _, c := range spec.Containers {
		i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == volume })
		if i < 0 || c.VolumeMounts[i].MountPath != "/keepsake/target" || !c.VolumeMounts[i].ReadOnly {
			t.Errorf("Job %s container %s mounts %+v, want %s read-only at /keepsake/target", job.Name, c.Name, c.VolumeMounts, pvc)
		}
	}
	if nodes := requiredNodes(spec.Affinity); !slices.Equal(nodes, []string{node}) {
		t.Errorf("Job %s requires nodes %v by name, want [%s] (pod 0's)", job.Name, nodes, node)
	}
	var pods corev1.PodList
	if err := l.e.Kube.List(demo.Context(t, time.Minute), &pods, client.InNamespace(l.e.Params.Namespace),
		client.MatchingLabels{"batch.kubernetes.io/job-name": job.Name}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) == 0 {
		t.Errorf("Job %s left no pod", job.Name)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != node {
			t.Errorf("pod %s of Job %s ran on node %q, want %s (pod 0's)", p.Name, job.Name, p.Spec.NodeName, node)
		}
	}
}

// requiredNodes are the node names a pod's required node affinity admits
// through matchFields on metadata.name.
func requiredNodes(a *corev1.Affinity) []string {
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	var nodes []string
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range term.MatchFields {
			if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn {
				nodes = append(nodes, f.Values...)
			}
		}
	}
	return nodes
}

// checkToolStream fails unless the backup's stream (a tar) holds, below
// wal/, meta/ and data/ (the chDB directory), exactly the files and empty
// directories sums shows below wal/, meta/ and chdb/, nothing of raft/,
// and manifest.json last, with a timestamp and wal_last_seq.
func checkToolStream(t *testing.T, stream []byte, sums map[string]string) {
	t.Helper()
	want := map[string]string{}
	for p, sum := range sums {
		if !strings.HasPrefix(p, "raft/") {
			want[p] = sum
		}
	}
	got, last, manifest, err := readToolStream(stream)
	if err != nil {
		t.Fatalf("read the backup's stream: %v", err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("the backup's stream differs from the server's files: %s", diffSums(want, got))
	}
	var m map[string]any
	if last != "manifest.json" || json.Unmarshal(manifest, &m) != nil || m["timestamp"] == nil || m["wal_last_seq"] == nil {
		t.Errorf("the stream ends with %q holding %s, want manifest.json with timestamp and wal_last_seq", last, manifest)
	}
}

// readToolStream reads a hyperbytedb tool stream: its files' checksums
// and its empty directories (as "dir/" to ""), data/ named chdb/ as on the
// PVC, the name of its last entry and manifest.json's content.
func readToolStream(stream []byte) (entries map[string]string, last string, manifest []byte, err error) {
	entries = map[string]string{}
	dirs := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(stream))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", nil, err
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		last = strings.TrimSuffix(name, "/")
		if rest, ok := strings.CutPrefix(name, "data/"); ok {
			name = "chdb/" + rest
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, "", nil, err
		}
		switch {
		case name == "manifest.json":
			manifest = data
		case hdr.Typeflag == tar.TypeDir:
			dirs[name] = true
		default:
			sum := sha256.Sum256(data)
			entries[name] = hex.EncodeToString(sum[:])
		}
	}
	for dir := range dirs {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(entries)), func(p string) bool { return strings.HasPrefix(p, dir) }) &&
			!slices.ContainsFunc(slices.Collect(maps.Keys(dirs)), func(d string) bool { return d != dir && strings.HasPrefix(d, dir) }) {
			entries[dir] = ""
		}
	}
	return entries, last, manifest, nil
}

// jobNames are the names of jobs.
func jobNames(jobs []batchv1.Job) []string {
	var names []string
	for _, j := range jobs {
		names = append(names, j.Name)
	}
	return names
}

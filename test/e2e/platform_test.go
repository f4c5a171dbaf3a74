package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/test/addons"
	"github.com/keepsake-dev/keepsake/test/cluster"
	"github.com/keepsake-dev/keepsake/test/demo"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// platform runs the addons written against the SDK alone (issue 15) on the
// cluster, driven by YAML: the chart's postgres Addon against the
// cluster's PostgreSQL 15, and the script Addon backing up a Redis with
// its own redis-cli.
func platform(t *testing.T, e *demo.Env) {
	t.Run("postgres", func(t *testing.T) { platformPostgres(t, e) })
	t.Run("script", func(t *testing.T) { platformScript(t, e) })
}

// pgData is the layout's PostgreSQL data set: its names start with
// platform_, so that it shares the cluster's server with anything else.
var pgData = addons.PostgresData{Prefix: "platform_"}

// pgMidway are the databases of the dump that fails midway.
var pgMidway = []string{"platform_aaa", "platform_zzz"}

// pgServer is the cluster's PostgreSQL 15 as the node reaches it, as its
// superuser.
func pgServer(e *demo.Env) *servers.Postgres {
	return &servers.Postgres{Host: e.Stand.Cluster.NodeIP, Port: strconv.Itoa(e.Stand.Cluster.PostgresPort),
		User: cluster.PostgresUser, Password: cluster.PostgresPassword}
}

// pgHost is the cluster's PostgreSQL as pods reach it.
const pgHost = "postgres." + cluster.ServersNamespace + ".svc.cluster.local"

// pgSetup is the superuser's Secret and the target: a Service of the
// namespace naming the server, which lives in another.
const pgSetup = `
apiVersion: v1
kind: Secret
metadata: {name: pg-superuser, namespace: {{.Namespace}}}
stringData: {username: "{{.User}}", password: "{{.Password}}"}
---
apiVersion: v1
kind: Service
metadata: {name: postgres, namespace: {{.Namespace}}}
spec: {type: ExternalName, externalName: {{.Host}}}
`

// pgBackup backs up Databases (all when empty) of the server on request:
// its schedule never comes within a test.
const pgBackup = `
apiVersion: core.keepsake.dev/v1alpha1
kind: BackupConfiguration
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  target: {kind: Service, name: postgres}
  backends:
    - name: minio
      storageRef: {name: minio}
  sessions:
    - name: manual
      scheduler: {schedule: "0 0 1 1 *"}
      addon:
        name: postgres
        tasks:
          - name: logical-backup
            params:
              host: {{.Host}}
              sslMode: disable
              authSecret: pg-superuser
{{- if .Databases}}
              databases: "{{.Databases}}"
{{- end}}
      repositories:
        - name: {{.Name}}-repo
          backend: minio
          directory: {{.Name}}
          encryptionSecret: {name: restic-password}
      backupTimeout: 10m
      sessionHistoryLimit: 20
`

// pgRestore restores Databases of Snapshot in Repository.
const pgRestore = `
apiVersion: core.keepsake.dev/v1alpha1
kind: RestoreSession
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  target: {kind: Service, name: postgres}
  dataSource:
    repository: {name: {{.Repository}}}
    snapshot: {{.Snapshot}}
  addon:
    name: postgres
    tasks:
      - name: logical-restore
        params:
          host: {{.Host}}
          sslMode: disable
          authSecret: pg-superuser
          databases: "{{.Databases}}"
  restoreTimeout: 10m
`

// platformPostgres: the data set is backed up (all databases), dropped,
// and restored (its databases), and every table, large object and role
// compares equal; a second backup of the unchanged server adds < 1% of the
// dump; a selected-database backup holds only that database; a pg_dump
// whose connection is terminated midway fails its session and makes no
// snapshot.
func platformPostgres(t *testing.T, e *demo.Env) {
	e = e.With(t)
	pg := pgServer(e)
	dropPlatformData(t, pg)
	t.Cleanup(func() { dropPlatformData(t, pg) })
	start := time.Now()
	pgData.Fill(t, pg, 15000)
	t.Logf("data set made in %s", time.Since(start).Round(time.Second))
	want := addons.PostgresState(t, pg, pgData.Databases()...)
	apply(t, e, pgSetup, map[string]string{"User": pg.User, "Password": pg.Password, "Host": pgHost})
	apply(t, e, pgBackup, map[string]string{"Name": "pg-all", "Host": pgHost, "Databases": ""})
	first := e.WaitBackupSession(backupconfiguration.FirstSessionName("pg-all", "manual"), corev1alpha1.BackupSessionSucceeded)
	snap := sessionSnapshot(t, e, first)
	dump := readDump(t, e, "pg-all", snap)
	logBackup(t, "first backup of all databases", first, snap)
	if got := dumpFrames(dump); !containsAll(got, append(pgData.Databases(), "postgres")) {
		t.Fatalf("the dump of all databases has database frames %q, want %q and postgres among them", got, pgData.Databases())
	}

	t.Run("second backup adds under 1%", func(t *testing.T) { pgSecondBackup(t, e, snap) })
	t.Run("selected databases", func(t *testing.T) { pgSelected(t, e) })

	pgData.Drop(t, pg)
	apply(t, e, pgRestore, map[string]string{"Name": "pg-restore", "Repository": "pg-all-repo", "Snapshot": snap.Name,
		"Host": pgHost, "Databases": strings.Join(pgData.Databases(), ",")})
	rs := e.WaitRestoreSession("pg-restore", corev1alpha1.RestoreSucceeded)
	logTimeToFinal(t, rs.CreationTimestamp.Time, rs.Status.Conditions)
	t.Logf("restored: %s", rs.Status.Restored)
	if got := addons.PostgresState(t, pg, pgData.Databases()...); got != want {
		t.Fatalf("restored server differs:\n got: %s\nwant: %s", got, want)
	}
	login := pg.Command(pgData.Shop(), "psql", "-X", "-t", "-A", "-c", "SELECT current_user")
	login.Env = append(login.Env, "PGUSER="+pgData.Role(), "PGPASSWORD="+addons.PostgresRolePassword)
	if out, err := login.CombinedOutput(); err != nil || string(out) != pgData.Role()+"\n" {
		t.Fatalf("%s cannot log in with its password after the restore: %v: %s", pgData.Role(), err, out)
	}

	t.Run("pg_dump failing midway", func(t *testing.T) { pgFailingMidway(t, e, pg) })
}

// dropPlatformData drops what the layout makes on the shared server.
func dropPlatformData(t *testing.T, pg *servers.Postgres) {
	t.Helper()
	pgData.Drop(t, pg)
	for _, db := range pgMidway {
		pg.MustSQL(t, "postgres", "DROP DATABASE IF EXISTS "+addons.QuoteIdent(db)+" WITH (FORCE);")
	}
}

// pgSecondBackup: a second backup of the unchanged server adds less than
// 1% of its dump to the repository (restic's data added, in the Snapshot's
// status).
func pgSecondBackup(t *testing.T, e *demo.Env, first *storagev1alpha1.Snapshot) {
	e = e.With(t)
	before := repoStats(t, e, "pg-all")
	apply(t, e, backupSession, map[string]string{"Name": "pg-all-again", "Config": "pg-all"})
	bks := e.WaitBackupSession("pg-all-again", corev1alpha1.BackupSessionSucceeded)
	after := repoStats(t, e, "pg-all")
	snap := sessionSnapshot(t, e, bks)
	logBackup(t, "second backup of the unchanged server", bks, snap)
	comp := onlyComponent(t, snap)
	added, err := humanize.ParseBytes(comp.DataAdded)
	if err != nil {
		t.Fatalf("Snapshot %s: data added %q: %v", snap.Name, comp.DataAdded, err)
	}
	if comp.SizeBytes != onlyComponent(t, first).SizeBytes {
		t.Errorf("the unchanged server's dump is %d bytes, the first was %d", comp.SizeBytes, onlyComponent(t, first).SizeBytes)
	}
	t.Logf("second backup: dump %d bytes, data added %s (%.3f%%)", comp.SizeBytes, comp.DataAdded, 100*float64(added)/float64(comp.SizeBytes))
	if comp.SizeBytes < 4<<20 || float64(added) >= 0.01*float64(comp.SizeBytes) {
		t.Fatalf("the second backup added %s to a %d-byte dump: want < 1%%", comp.DataAdded, comp.SizeBytes)
	}
	// restic's own count of the stored data blobs, before compression.
	grown := after.TotalUncompressedSize - before.TotalUncompressedSize
	t.Logf("restic stats: the repository's data grew by %d bytes (%d stored, compressed)", grown, after.TotalSize-before.TotalSize)
	if float64(grown) >= 0.01*float64(comp.SizeBytes) {
		t.Fatalf("the repository's data grew by %d bytes for a %d-byte dump: want < 1%%", grown, comp.SizeBytes)
	}
}

// repoStats reads restic's stats of the repository in dir from the node.
func repoStats(t *testing.T, e *demo.Env, dir string) *restic.Stats {
	t.Helper()
	s, err := e.Restic(dir).Stats(demo.Context(t, 2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pgSelected: a backup of one selected database holds only that one
// (read back with restic from the node).
func pgSelected(t *testing.T, e *demo.Env) {
	e = e.With(t)
	apply(t, e, pgBackup, map[string]string{"Name": "pg-selected", "Host": pgHost, "Databases": pgData.Shop()})
	bks := e.WaitBackupSession(backupconfiguration.FirstSessionName("pg-selected", "manual"), corev1alpha1.BackupSessionSucceeded)
	snap := sessionSnapshot(t, e, bks)
	logBackup(t, "backup of "+pgData.Shop(), bks, snap)
	dump := readDump(t, e, "pg-selected", snap)
	if got := dumpFrames(dump); !slices.Equal(got, []string{pgData.Shop()}) {
		t.Fatalf("the dump of %s has database frames %q", pgData.Shop(), got)
	}
	if !bytes.Contains(dump, []byte("\n--keepsake:globals\n")) || !bytes.HasSuffix(dump, []byte("--keepsake:end\n")) {
		t.Errorf("the dump of %s lacks its globals or end frame", pgData.Shop())
	}
}

// pgFailingMidway: pg_dump of the second database waits for a lock the
// test holds, after the globals and the first database went into the
// stream; the test terminates its connection. The session fails with a
// reason naming the database and pg_dump's error, its Snapshot is not
// Succeeded, and restic holds no snapshot.
func pgFailingMidway(t *testing.T, e *demo.Env, pg *servers.Postgres) {
	e = e.With(t)
	aaa, zzz := pgMidway[0], pgMidway[1]
	pg.MustSQL(t, "postgres", fmt.Sprintf("CREATE DATABASE %s; CREATE DATABASE %s;", aaa, zzz))
	pg.MustSQL(t, aaa, "CREATE TABLE t AS SELECT g, md5(g::text) FROM generate_series(1, 50000) g;")
	pg.MustSQL(t, zzz, "CREATE TABLE locked (x int);")
	addons.HoldLock(t, pg, zzz, "locked")
	apply(t, e, pgBackup, map[string]string{"Name": "pg-midway", "Host": pgHost, "Databases": aaa + "," + zzz})
	waiting := fmt.Sprintf(`SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
WHERE NOT l.granted AND a.application_name = 'pg_dump' AND a.datname = '%s';`, zzz)
	var pid string
	err := demo.Poll(demo.Context(t, demo.Timeout), "pg_dump of "+zzz+" waiting for the lock", func(context.Context) (bool, string, error) {
		out, err := pg.SQL("postgres", waiting)
		pid = strings.TrimSpace(out)
		return err == nil && pid != "", "no pg_dump waiting", err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("terminating the connection of pg_dump (backend %s) while it waits", pid)
	if out := pg.MustSQL(t, "postgres", "SELECT pg_terminate_backend("+pid+");"); out != "t\n" {
		t.Fatalf("pg_terminate_backend(%s) = %q", pid, out)
	}
	session := backupconfiguration.FirstSessionName("pg-midway", "manual")
	bks := e.WaitBackupSession(session, corev1alpha1.BackupSessionFailed)
	c := meta.FindStatusCondition(bks.Status.Conditions, corev1alpha1.ConditionBackupSucceeded)
	if c == nil || !strings.Contains(c.Message, fmt.Sprintf(`pg_dump of database %q exited with status 1: pg_dump: error: `, zzz)) ||
		!strings.Contains(c.Message, "terminating connection due to administrator command") {
		t.Errorf("BackupSucceeded condition = %+v, want pg_dump's error naming database %s", c, zzz)
	} else {
		t.Logf("as the user sees it: %s: %s", c.Reason, c.Message)
	}
	logTimeToFinal(t, bks.CreationTimestamp.Time, bks.Status.Conditions)
	for _, s := range e.Snapshots("pg-midway-repo") {
		if s.Status.Phase == storagev1alpha1.SnapshotSucceeded {
			t.Errorf("Snapshot %s of the failed dump is Succeeded", s.Name)
		}
	}
	if ids := resticIDs(t, e.Restic("pg-midway")); len(ids) != 0 {
		t.Errorf("the failed dump left restic snapshots %v", ids)
	}
}

// sessionSnapshot reads the one Snapshot of a Succeeded BackupSession.
func sessionSnapshot(t *testing.T, e *demo.Env, bks *corev1alpha1.BackupSession) *storagev1alpha1.Snapshot {
	t.Helper()
	if len(bks.Status.Snapshots) != 1 {
		t.Fatalf("BackupSession %s lists %d Snapshots, want 1", bks.Name, len(bks.Status.Snapshots))
	}
	var snap storagev1alpha1.Snapshot
	key := client.ObjectKey{Namespace: e.Params.Namespace, Name: bks.Status.Snapshots[0].Name}
	if err := e.Kube.Get(demo.Context(t, time.Minute), key, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Fatalf("Snapshot %s is %s", snap.Name, snap.Status.Phase)
	}
	return &snap
}

// onlyComponent is the one component of a Snapshot, with its restic ID.
func onlyComponent(t *testing.T, snap *storagev1alpha1.Snapshot) storagev1alpha1.ComponentStatus {
	t.Helper()
	if len(snap.Status.Components) != 1 {
		t.Fatalf("Snapshot %s has components %v, want one", snap.Name, snap.Status.Components)
	}
	for _, c := range snap.Status.Components {
		if c.ResticSnapshotID == "" || c.Path == "" {
			t.Fatalf("Snapshot %s component %+v has no restic ID or path", snap.Name, c)
		}
		return c
	}
	panic("unreachable")
}

// logBackup logs what a backup measured: dump size, data added, durations.
func logBackup(t *testing.T, what string, bks *corev1alpha1.BackupSession, snap *storagev1alpha1.Snapshot) {
	t.Helper()
	c := onlyComponent(t, snap)
	t.Logf("%s: dump %s (%d bytes), data added %s, component took %s", what, c.Size, c.SizeBytes, c.DataAdded, c.Duration)
	logTimeToFinal(t, bks.CreationTimestamp.Time, bks.Status.Conditions)
}

// readDump reads a Snapshot's dump back with restic from the node and
// checks its size is the one the Snapshot recorded.
func readDump(t *testing.T, e *demo.Env, dir string, snap *storagev1alpha1.Snapshot) []byte {
	t.Helper()
	c := onlyComponent(t, snap)
	var buf bytes.Buffer
	if err := e.Restic(dir).Dump(demo.Context(t, 5*time.Minute), c.ResticSnapshotID, c.Path, &buf); err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != c.SizeBytes {
		t.Errorf("restic dump of Snapshot %s is %d bytes, the Snapshot says %d", snap.Name, buf.Len(), c.SizeBytes)
	}
	return buf.Bytes()
}

var frameRE = regexp.MustCompile(`(?m)^--keepsake:database \{"name":"([^"]*)"`)

// dumpFrames lists the databases a dump's frames name, in order.
func dumpFrames(dump []byte) []string {
	var names []string
	for _, m := range frameRE.FindAllSubmatch(dump, -1) {
		names = append(names, string(m[1]))
	}
	return names
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// serviceAddr is host:port of a Service's ClusterIP, as the node reaches
// it.
func serviceAddr(t *testing.T, e *demo.Env, name string, port int) string {
	t.Helper()
	var svc corev1.Service
	if err := e.Kube.Get(demo.Context(t, time.Minute), client.ObjectKey{Namespace: e.Params.Namespace, Name: name}, &svc); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s:%d", svc.Spec.ClusterIP, port)
}

// redisPassword is the layout's Redis password.
const redisPassword = "platform-redis-5ecret"

// redisSetup is a Redis 7 StatefulSet (Debian's redis-server) with a
// password, its configuration in a Secret, and the Secret the script
// addon's commands take REDISCLI_AUTH from. masterauth lets the restore
// make it a replica of the restored data set.
const redisSetup = `
apiVersion: v1
kind: Secret
metadata: {name: redis-config, namespace: {{.Namespace}}}
stringData:
  redis.conf: |
    bind 0.0.0.0
    port 6379
    dir /data
    requirepass "{{.Password}}"
    masterauth "{{.Password}}"
    save ""
    appendonly no
    enable-debug-command yes
---
apiVersion: v1
kind: Secret
metadata: {name: redis-auth, namespace: {{.Namespace}}}
stringData: {REDISCLI_AUTH: "{{.Password}}"}
---
apiVersion: v1
kind: Service
metadata: {name: redis, namespace: {{.Namespace}}}
spec:
  selector: {app: redis}
  ports:
    - {name: redis, port: 6379, targetPort: 6379}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: redis, namespace: {{.Namespace}}}
spec:
  serviceName: redis
  replicas: 1
  selector:
    matchLabels: {app: redis}
  template:
    metadata:
      labels: {app: redis}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: redis
          image: {{.Image}}
          imagePullPolicy: Never
          command: [/usr/bin/redis-server, /etc/redis/redis.conf]
          ports:
            - {name: redis, containerPort: 6379}
          readinessProbe:
            tcpSocket: {port: 6379}
            periodSeconds: 2
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: ["ALL"]}
          volumeMounts:
            - {name: config, mountPath: /etc/redis, readOnly: true}
            - {name: data, mountPath: /data}
      volumes:
        - name: config
          secret: {secretName: redis-config}
        - name: data
          emptyDir: {}
`

// redisStatefulSet applies redisSetup with password and waits until the
// Redis answers, through its Service's ClusterIP from the node.
func redisStatefulSet(t *testing.T, e *demo.Env, password string) *servers.Redis {
	t.Helper()
	apply(t, e, redisSetup, map[string]string{"Password": password, "Image": cluster.RedisImage})
	redis := &servers.Redis{Addr: serviceAddr(t, e, "redis", 6379), Password: password}
	err := demo.Poll(demo.Context(t, demo.Timeout), "Redis answering PING", func(context.Context) (bool, string, error) {
		reply, err := redis.Do("PING")
		return err == nil && reply == "PONG", reply, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return redis
}

// scriptBackup backs Redis up with the script addon: Command writes the
// dump to its standard output.
const scriptBackup = `
apiVersion: core.keepsake.dev/v1alpha1
kind: BackupConfiguration
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  target: {apiGroup: apps, kind: StatefulSet, name: redis}
  backends:
    - name: minio
      storageRef: {name: minio}
  sessions:
    - name: manual
      scheduler: {schedule: "0 0 1 1 *"}
      addon:
        name: script
        tasks:
          - name: backup
            params:
              backupCommand: {{.Command}}
              secret: redis-auth
      repositories:
        - name: {{.Name}}-repo
          backend: minio
          directory: {{.Name}}
          encryptionSecret: {name: restic-password}
      backupTimeout: 10m
`

// redisRestoreCommand loads the RDB file from its standard input into a
// Redis started in the restore pod (its scratch directory), makes the
// target a replica of it until the data set is synchronised, and makes the
// target a primary again: Redis's own way of replacing a running
// server's data set, with its stock tools.
const redisRestoreCommand = `set -e
cd /keepsake/scratch
cat > dump.rdb
printf 'port 6390\ndir /keepsake/scratch\ndbfilename dump.rdb\nrequirepass "%s"\nsave ""\nappendonly no\ndaemonize yes\npidfile /keepsake/scratch/source.pid\nlogfile /keepsake/scratch/source.log\n' "$REDISCLI_AUTH" | redis-server -
until redis-cli -p 6390 --no-auth-warning ping | grep -q PONG; do sleep 1; done
ip=$(awk 'NR == FNR { host = $1; next } $2 == host { print $1; exit }' /etc/hostname /etc/hosts)
redis-cli -h redis --no-auth-warning replicaof "$ip" 6390
until redis-cli -h redis --no-auth-warning info replication | grep -q master_link_status:up; do sleep 1; done
redis-cli -h redis --no-auth-warning replicaof no one
redis-cli -p 6390 --no-auth-warning shutdown nosave
`

// scriptRestore restores Snapshot of Repository with redisRestoreCommand.
const scriptRestore = `
apiVersion: core.keepsake.dev/v1alpha1
kind: RestoreSession
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  target: {apiGroup: apps, kind: StatefulSet, name: redis}
  dataSource:
    repository: {name: {{.Repository}}}
    snapshot: {{.Snapshot}}
  addon:
    name: script
    tasks:
      - name: restore
        params:
          restoreCommand: {{.Command}}
          secret: redis-auth
  restoreTimeout: 10m
`

// platformScript: a Redis is backed up with `redis-cli --rdb -` through
// the script addon, flushed, restored, and its DEBUG DIGEST is the one
// before; a backup command exiting non-zero fails its session with the
// command's stderr tail and makes no snapshot.
func platformScript(t *testing.T, e *demo.Env) {
	e = e.With(t)
	redis := redisStatefulSet(t, e, redisPassword)
	want := addons.FillRedis(t, redis)
	// As docs/writing-an-addon.md has it: one command line for every target.
	command := "redis-cli -h $KEEPSAKE_TARGET_NAME.$KEEPSAKE_TARGET_NAMESPACE.svc --no-auth-warning --rdb -"
	apply(t, e, scriptBackup, map[string]string{"Name": "redis", "Command": yamlString(command)})
	bks := e.WaitBackupSession(backupconfiguration.FirstSessionName("redis", "manual"), corev1alpha1.BackupSessionSucceeded)
	snap := sessionSnapshot(t, e, bks)
	logBackup(t, "backup of Redis", bks, snap)
	if dump := readDump(t, e, "redis", snap); !bytes.HasPrefix(dump, []byte("REDIS")) {
		t.Fatalf("the backup of Redis is no RDB file: it starts %q", dump[:min(len(dump), 16)])
	}

	redis.MustDo(t, "FLUSHALL")
	if got := redis.MustDo(t, "DBSIZE"); got != "0" {
		t.Fatalf("%s keys after FLUSHALL", got)
	}
	apply(t, e, scriptRestore, map[string]string{"Name": "redis-restore", "Repository": "redis-repo", "Snapshot": snap.Name,
		"Command": yamlString(redisRestoreCommand)})
	rs := e.WaitRestoreSession("redis-restore", corev1alpha1.RestoreSucceeded)
	logTimeToFinal(t, rs.CreationTimestamp.Time, rs.Status.Conditions)
	if got := redis.MustDo(t, "DEBUG", "DIGEST"); got != want {
		t.Fatalf("restored data set digest %s, want %s", got, want)
	}

	t.Run("a command exiting non-zero", func(t *testing.T) { scriptFailing(t, e) })
}

// scriptFailing: redis-cli with a wrong password exits 1 after printing
// the server's refusal; the session is Failed with that stderr in its
// message, its Snapshot is not Succeeded, and restic holds no snapshot.
func scriptFailing(t *testing.T, e *demo.Env) {
	e = e.With(t)
	command := "redis-cli -h redis --no-auth-warning --user default --pass wrong-redis-password --rdb -"
	apply(t, e, scriptBackup, map[string]string{"Name": "redis-failing", "Command": yamlString(command)})
	bks := e.WaitBackupSession(backupconfiguration.FirstSessionName("redis-failing", "manual"), corev1alpha1.BackupSessionFailed)
	c := meta.FindStatusCondition(bks.Status.Conditions, corev1alpha1.ConditionBackupSucceeded)
	if c == nil || !strings.Contains(c.Message, "backup command exited with status 1") || !strings.Contains(c.Message, "WRONGPASS") {
		t.Errorf("BackupSucceeded condition = %+v, want the exit status and redis-cli's stderr (WRONGPASS)", c)
	} else {
		t.Logf("as the user sees it: %s: %s", c.Reason, c.Message)
	}
	for _, s := range e.Snapshots("redis-failing-repo") {
		if s.Status.Phase == storagev1alpha1.SnapshotSucceeded {
			t.Errorf("Snapshot %s of the failed command is Succeeded", s.Name)
		}
	}
	if ids := resticIDs(t, e.Restic("redis-failing")); len(ids) != 0 {
		t.Errorf("the failed command left restic snapshots %v", ids)
	}
}

// yamlString quotes s as a YAML double-quoted scalar: a JSON string is
// one.
func yamlString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

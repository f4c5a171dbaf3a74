package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/test/cluster"
	"github.com/keepsake-dev/keepsake/test/demo"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// layout is the platform team's layout of the several-namespaces scenario:
// a storage namespace holding a MinIO that serves TLS with a private CA and
// a BackupStorage shared by label selector; team A, allowed, with its
// database; team B, not allowed.
type layout struct {
	// e is the cluster, as team A's namespace.
	e                *demo.Env
	storageNS, teamB string
	// bucket and prefix are the shared storage's, in the TLS MinIO, which
	// s3 reaches from the node.
	bucket, prefix string
	s3             *s3.Client
	sharedStorage  string
	// teamALabel=value on team A's namespace is what the storage's usage
	// policy selects.
	teamALabel, value string
}

// severalNamespaces is issue 11's layout, driven by YAML only: team A backs
// up into and restores from a BackupStorage of the storage namespace over
// TLS; team B is refused with reasons; team A's backups survive the
// deletion of its configuration and Repository and are found again; a
// second BackupStorage on the same prefix (as a DR cluster adds) neither
// takes it over nor deletes anything of it.
func severalNamespaces(t *testing.T, e *demo.Env, ns teams) {
	l := newLayout(t, e, ns)
	want := l.seedTeamA(t)
	var snapshot string
	if !t.Run("team A backs up through the shared TLS storage", func(t *testing.T) { snapshot = l.backUpTeamA(t) }) {
		t.FailNow()
	}
	t.Run("team A restores every point", func(t *testing.T) { l.restore(t, "team-a-restore", "team-a-repo", snapshot, want) })
	t.Run("team A's happy path shows no empty column and no warning", func(t *testing.T) {
		e := l.e.With(t)
		e.WaitRepositorySize("team-a-repo") // the sync after the backup measures it
		if untidy := e.Untidy(); len(untidy) != 0 {
			t.Errorf("kubectl get keepsake and Events in %s show:\n%s", l.e.Params.Namespace, strings.Join(untidy, "\n"))
		}
	})
	t.Run("team B is refused", func(t *testing.T) { l.refuseTeamB(t) })
	t.Run("backups outlive their objects", func(t *testing.T) { l.rediscover(t, want) })
	t.Run("a second storage on the prefix takes nothing", func(t *testing.T) { l.secondStorage(t) })
}

// teams are the namespaces of the layout.
type teams struct{ storage, a, b string }

func newLayout(t *testing.T, e *demo.Env, ns teams) *layout {
	teamA := ns.a
	l := &layout{
		storageNS: ns.storage, teamB: ns.b,
		bucket: "shared", prefix: "org", sharedStorage: "shared",
		teamALabel: "e2e.keepsake.dev/backups", value: "allowed",
	}
	ctx := demo.Context(t, 10*time.Minute)
	nsA := &corev1.Namespace{}
	if err := e.Kube.Get(ctx, client.ObjectKey{Name: teamA}, nsA); err != nil {
		t.Fatal(err)
	}
	nsA.Labels[l.teamALabel] = l.value
	if err := e.Kube.Update(ctx, nsA); err != nil {
		t.Fatal(err)
	}
	l.e = e.InNamespace(t, teamA)
	l.startTLSMinIO(t, ctx)
	l.applySharedStorage(t, ctx)
	return l
}

// tlsMinIO is a MinIO of its own in the storage namespace, serving HTTPS
// with a certificate of a private CA. Its certificate and key are copied
// into an emptyDir, where MinIO may write its CAs folder.
const tlsMinIO = `
apiVersion: v1
kind: Secret
metadata: {name: minio-tls-server, namespace: {{.NS}}}
stringData:
  public.crt: {{printf "%q" .Cert}}
  private.key: {{printf "%q" .Key}}
  MINIO_ROOT_USER: {{.User}}
  MINIO_ROOT_PASSWORD: {{.Password}}
---
apiVersion: v1
kind: Secret
metadata: {name: minio-ca, namespace: {{.NS}}}
stringData:
  ca.crt: {{printf "%q" .CA}}
---
apiVersion: v1
kind: Secret
metadata: {name: storage-credentials, namespace: {{.NS}}}
stringData:
  AWS_ACCESS_KEY_ID: {{.User}}
  AWS_SECRET_ACCESS_KEY: {{.Password}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: minio-tls, namespace: {{.NS}}}
spec:
  replicas: 1
  selector:
    matchLabels: {app: minio-tls}
  template:
    metadata:
      labels: {app: minio-tls}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      initContainers:
        - name: certs
          image: {{.Busybox}}
          imagePullPolicy: Never
          command: ["sh", "-c", "cp /server/public.crt /server/private.key /certs/"]
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: ["ALL"]}}
          volumeMounts:
            - {name: server, mountPath: /server, readOnly: true}
            - {name: certs, mountPath: /certs}
      containers:
        - name: minio
          image: {{.Image}}
          imagePullPolicy: Never
          args: ["server", "/data", "--address", ":9000", "--console-address", "127.0.0.1:9001", "--certs-dir", "/certs"]
          env:
            - {name: HOME, value: /tmp}
            - name: MINIO_ROOT_USER
              valueFrom: {secretKeyRef: {name: minio-tls-server, key: MINIO_ROOT_USER}}
            - name: MINIO_ROOT_PASSWORD
              valueFrom: {secretKeyRef: {name: minio-tls-server, key: MINIO_ROOT_PASSWORD}}
          ports:
            - {name: s3, containerPort: 9000}
          readinessProbe:
            httpGet: {path: /minio/health/ready, port: 9000, scheme: HTTPS}
            periodSeconds: 2
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: ["ALL"]}}
          volumeMounts:
            - {name: certs, mountPath: /certs}
            - {name: data, mountPath: /data}
      volumes:
        - name: server
          secret: {secretName: minio-tls-server, items: [{key: public.crt, path: public.crt}, {key: private.key, path: private.key}]}
        - {name: certs, emptyDir: {}}
        - {name: data, emptyDir: {}}
`

const tlsMinIOService = `
apiVersion: v1
kind: Service
metadata: {name: minio-tls, namespace: {{.}}}
spec:
  selector: {app: minio-tls}
  ports:
    - {name: s3, port: 9000, targetPort: 9000}
`

// startTLSMinIO starts the TLS MinIO, waits until it answers, and creates
// the shared bucket through it. The certificate names the Service's DNS
// names (for pods) and its cluster IP (for the node).
func (l *layout) startTLSMinIO(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := l.e.Stand.Apply(ctx, tlsMinIOService, l.storageNS); err != nil {
		t.Fatal(err)
	}
	var svc corev1.Service
	if err := l.e.Kube.Get(ctx, client.ObjectKey{Namespace: l.storageNS, Name: "minio-tls"}, &svc); err != nil {
		t.Fatal(err)
	}
	host := "minio-tls." + l.storageNS + ".svc"
	cert := servers.NewCertificate(t, host+".cluster.local", host, svc.Spec.ClusterIP)
	data := map[string]string{
		"NS": l.storageNS, "Cert": string(cert.CertPEM), "Key": string(cert.KeyPEM), "CA": string(cert.CAPEM),
		"User": cluster.MinIOUser, "Password": cluster.MinIOPassword + "-tls",
		"Busybox": cluster.BusyboxImage, "Image": cluster.MinIOImage,
	}
	if err := l.e.Stand.Apply(ctx, tlsMinIO, data); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cert.CAPEM)
	l.s3 = s3.New(s3.Options{
		BaseEndpoint: aws.String(fmt.Sprintf("https://%s:9000", svc.Spec.ClusterIP)), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(data["User"], data["Password"], ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}},
	})
	err := demo.Poll(ctx, "TLS MinIO creates the bucket", func(ctx context.Context) (bool, string, error) {
		_, err := l.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(l.bucket)})
		var owned *s3types.BucketAlreadyOwnedByYou
		if err == nil || errors.As(err, &owned) {
			return true, "", nil
		}
		return false, err.Error(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sharedStorage is the platform team's BackupStorage: HTTPS with the
// private CA, usable by the namespaces carrying the team label.
const sharedStorage = `
apiVersion: storage.keepsake.dev/v1alpha1
kind: BackupStorage
metadata: {name: {{.Name}}, namespace: {{.NS}}}
spec:
  deletionPolicy: WipeOut
  storage:
    provider: s3
    s3:
      endpoint: https://minio-tls.{{.NS}}.svc.cluster.local:9000
      bucket: {{.Bucket}}
      prefix: {{.Prefix}}
      region: us-east-1
      forcePathStyle: true
      secretName: storage-credentials
      caBundle:
        secretKeyRef: {name: minio-ca, key: ca.crt}
  usagePolicy:
    allowedNamespaces:
      from: Selector
      selector:
        matchLabels: {"{{.Label}}": "{{.Value}}"}
`

func (l *layout) storageData(name string) map[string]string {
	return map[string]string{"Name": name, "NS": l.storageNS, "Bucket": l.bucket, "Prefix": l.prefix, "Label": l.teamALabel, "Value": l.value}
}

func (l *layout) applySharedStorage(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := l.e.Stand.Apply(ctx, sharedStorage, l.storageData(l.sharedStorage)); err != nil {
		t.Fatal(err)
	}
	l.waitStorage(t, l.sharedStorage, storagev1alpha1.ReasonStorageAvailable)
}

func (l *layout) waitStorage(t *testing.T, name, reason string) {
	t.Helper()
	waitObject(t, l.e, l.storageNS, name, &storagev1alpha1.BackupStorage{}, func(bs *storagev1alpha1.BackupStorage) (bool, string) {
		return hasCondition(bs.Status.Conditions, storagev1alpha1.ConditionReady, reason)
	})
}

// seedTeamA writes team A's data and returns what the database holds.
func (l *layout) seedTeamA(t *testing.T) hyperbytedbtest.Contents {
	hyperbytedbtest.Mixed(time.Now()).Write(t, l.e.DB)
	return hyperbytedbtest.ReadContents(t, l.e.DB)
}

// teamConfiguration backs up a namespace's database into the shared
// storage of the storage namespace.
const teamConfiguration = `
apiVersion: core.keepsake.dev/v1alpha1
kind: BackupConfiguration
metadata: {name: {{.Name}}, namespace: {{.NS}}}
spec:
  target: {apiGroup: apps, kind: StatefulSet, name: metrics{{if .TargetNS}}, namespace: {{.TargetNS}}{{end}}}
  backends:
    - name: shared
      storageRef: {name: {{.Storage}}, namespace: {{.StorageNS}}}
  sessions:
    - name: daily
      scheduler: {schedule: "0 3 * * *"}
      addon:
        name: hyperbytedb
        tasks:
          - name: logical-backup
            params: {authSecret: metrics-auth}
      repositories:
        - name: {{.Name}}-repo
          backend: shared
          directory: metrics
          encryptionSecret: {name: restic-password}
      backupTimeout: 10m
`

func (l *layout) configuration(name, ns, targetNS string) map[string]string {
	return map[string]string{"Name": name, "NS": ns, "TargetNS": targetNS, "Storage": l.sharedStorage, "StorageNS": l.storageNS}
}

// backUpTeamA: team A's first backup succeeds through the other namespace's
// storage over TLS, and the Secrets copied from the storage namespace for
// its Job are owned by that Job (they go with it).
func (l *layout) backUpTeamA(t *testing.T) string {
	e := l.e.With(t)
	ctx := demo.Context(t, time.Minute)
	if err := e.Stand.Apply(ctx, teamConfiguration, l.configuration("team-a", e.Params.Namespace, "")); err != nil {
		t.Fatal(err)
	}
	bks := e.WaitBackupSession(backupconfiguration.FirstSessionName("team-a", "daily"), corev1alpha1.BackupSessionSucceeded)
	if len(bks.Status.Snapshots) != 1 {
		t.Fatalf("BackupSession %s lists %d Snapshots, want 1", bks.Name, len(bks.Status.Snapshots))
	}
	var secrets corev1.SecretList
	if err := e.Kube.List(ctx, &secrets, client.InNamespace(e.Params.Namespace)); err != nil {
		t.Fatal(err)
	}
	copies := 0
	for _, s := range secrets.Items {
		if s.Annotations["keepsake.dev/copy-of"] == "" {
			continue
		}
		copies++
		if owner := metav1.GetControllerOf(&s); owner == nil || owner.Kind != "Job" {
			t.Errorf("Secret %s, a copy of %s, is not owned by a Job (owner %+v)", s.Name, s.Annotations["keepsake.dev/copy-of"], owner)
		}
	}
	t.Logf("%d Secret copies from %s, each owned by its Job", copies, l.storageNS)
	return bks.Status.Snapshots[0].Name
}

// restore drops team A's databases and restores a Snapshot of repo; every
// point comes back.
func (l *layout) restore(t *testing.T, name, repo, snapshot string, want hyperbytedbtest.Contents) {
	e := l.e.With(t)
	e.DropAll()
	e.Apply(demo.RestoreSession, func(p *demo.Params) { p.Name, p.Repository, p.Snapshot = name, repo, snapshot })
	e.WaitRestoreSession(name, corev1alpha1.RestoreSucceeded)
	if diff := hyperbytedbtest.Diff(want, hyperbytedbtest.ReadContents(t, e.DB), 10); diff != "" {
		t.Fatalf("restored database differs:\n%s", diff)
	}
}

// crossRestore is a RestoreSession of team B reaching into team A.
const crossRestore = `
apiVersion: core.keepsake.dev/v1alpha1
kind: RestoreSession
metadata: {name: {{.Name}}, namespace: {{.NS}}}
spec:
  target: {apiGroup: "{{.Group}}", kind: {{.Kind}}, name: metrics{{if .TargetNS}}, namespace: {{.TargetNS}}{{end}}}
  dataSource:
    repository: {name: team-a-repo{{if .RepoNS}}, namespace: {{.RepoNS}}{{end}}}
  addon:
    name: hyperbytedb
    tasks:
      - name: logical-restore
        params: {authSecret: metrics-auth, mode: replace}
`

// refuseTeamB: team B's configuration on the shared storage is NotReady
// with StorageNotAllowed, its configuration of team A's database with
// NamespaceNotAllowed; its RestoreSessions against team A's Repository or
// into team A's database are Invalid with a reason; team B gets no Job.
func (l *layout) refuseTeamB(t *testing.T) {
	ctx := demo.Context(t, time.Minute)
	teamA := l.e.Params.Namespace
	apply := func(tmpl string, data any) {
		if err := l.e.Stand.Apply(ctx, tmpl, data); err != nil {
			t.Fatal(err)
		}
	}
	apply(teamConfiguration, l.configuration("team-b", l.teamB, ""))
	apply(teamConfiguration, l.configuration("team-b-into-a", l.teamB, teamA))
	// Team B's own target, so that only the repository is wrong.
	apply(`{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "metrics", "namespace": "{{.}}"}, "spec": {"ports": [{"port": 8086}]}}`, l.teamB)
	apply(crossRestore, map[string]string{"Name": "from-team-a-repo", "NS": l.teamB, "Group": "", "Kind": "Service", "TargetNS": "", "RepoNS": teamA})
	apply(crossRestore, map[string]string{"Name": "into-team-a", "NS": l.teamB, "Group": "apps", "Kind": "StatefulSet", "TargetNS": teamA, "RepoNS": ""})

	for name, want := range map[string][2]string{
		"team-b":        {corev1alpha1.ConditionStorageReady, corev1alpha1.ReasonStorageNotAllowed},
		"team-b-into-a": {corev1alpha1.ConditionTargetFound, corev1alpha1.ReasonNamespaceNotAllowed},
	} {
		waitObject(t, l.e, l.teamB, name, &corev1alpha1.BackupConfiguration{}, func(bc *corev1alpha1.BackupConfiguration) (bool, string) {
			if c := meta.FindStatusCondition(bc.Status.Conditions, corev1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
				t.Fatalf("BackupConfiguration %s/%s is Ready: %s", l.teamB, name, c.Message)
			}
			return hasCondition(bc.Status.Conditions, want[0], want[1])
		})
	}
	for name, reason := range map[string]string{
		"from-team-a-repo": corev1alpha1.ReasonRepositoryNotFound,
		"into-team-a":      corev1alpha1.ReasonNamespaceNotAllowed,
	} {
		waitObject(t, l.e, l.teamB, name, &corev1alpha1.RestoreSession{}, func(rs *corev1alpha1.RestoreSession) (bool, string) {
			if rs.Status.Phase != "" && rs.Status.Phase != corev1alpha1.RestoreInvalid && rs.Status.Phase != corev1alpha1.RestorePending {
				t.Fatalf("RestoreSession %s/%s is %s, want Invalid", l.teamB, name, rs.Status.Phase)
			}
			ok, last := hasReason(rs.Status.Conditions, reason)
			return ok && rs.Status.Phase == corev1alpha1.RestoreInvalid, string(rs.Status.Phase) + " " + last
		})
	}
	var jobs batchv1.JobList
	if err := l.e.Kube.List(ctx, &jobs, client.InNamespace(l.teamB)); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 0 {
		t.Errorf("team B's namespace holds %d Jobs, want none (first: %s)", len(jobs.Items), jobs.Items[0].Name)
	}
}

// rediscoveredRepository is a Repository created by hand at the path the
// deleted configuration's Repository used.
const rediscoveredRepository = `
apiVersion: storage.keepsake.dev/v1alpha1
kind: Repository
metadata: {name: rediscovered, namespace: {{.NS}}}
spec:
  storageRef: {name: {{.Storage}}, namespace: {{.StorageNS}}}
  path: metrics
  encryptionSecret: {name: restic-password}
`

// rediscover: deleting team A's configuration and then its Repository
// (deletionPolicy Delete) keeps the backups; a Repository created at the
// same path discovers them, and one restores every point.
func (l *layout) rediscover(t *testing.T, want hyperbytedbtest.Contents) {
	e := l.e.With(t)
	ctx := demo.Context(t, demo.Timeout)
	ns := e.Params.Namespace
	deleteAndWait(t, e, &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team-a"}})
	var repo storagev1alpha1.Repository
	if err := e.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "team-a-repo"}, &repo); err != nil {
		t.Fatalf("Repository team-a-repo after its configuration was deleted: %v", err)
	}
	deleteAndWait(t, e, &repo)
	if err := e.Stand.Apply(ctx, rediscoveredRepository, map[string]string{"NS": ns, "Storage": l.sharedStorage, "StorageNS": l.storageNS}); err != nil {
		t.Fatal(err)
	}
	var found string
	err := demo.Poll(ctx, "a discovered Snapshot of Repository rediscovered", func(ctx context.Context) (bool, string, error) {
		var list storagev1alpha1.SnapshotList
		if err := e.Kube.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{storagev1alpha1.LabelDiscovered: "true"}); err != nil {
			return false, "", err
		}
		for _, s := range list.Items {
			if s.Spec.Repository == "rediscovered" && s.Status.Phase == storagev1alpha1.SnapshotSucceeded {
				found = s.Name
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("%d discovered Snapshots", len(list.Items)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	l.restore(t, "rediscovered-restore", "rediscovered", found, want)
}

// secondStorage: a BackupStorage on the shared bucket and prefix, as a DR
// cluster would add, is NotReady with PrefixInUse, leaves metadata.yaml as
// it was, and its WipeOut deletes nothing.
func (l *layout) secondStorage(t *testing.T) {
	ctx := demo.Context(t, demo.Timeout)
	before := l.objects(t, ctx)
	metadata := l.read(t, ctx, l.prefix+"/metadata.yaml")
	if err := l.e.Stand.Apply(ctx, sharedStorage, l.storageData("dr")); err != nil {
		t.Fatal(err)
	}
	l.waitStorage(t, "dr", storagev1alpha1.ReasonPrefixInUse)
	deleteAndWait(t, l.e, &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: l.storageNS, Name: "dr"}})
	if got := l.read(t, ctx, l.prefix+"/metadata.yaml"); got != metadata {
		t.Errorf("metadata.yaml changed:\nbefore: %s\nafter: %s", metadata, got)
	}
	after := l.objects(t, ctx)
	for key := range before {
		if !after[key] {
			t.Errorf("object %s was deleted by the second storage's WipeOut", key)
		}
	}
	t.Logf("%d objects under %s/ before, %d after", len(before), l.prefix, len(after))
}

func (l *layout) objects(t *testing.T, ctx context.Context) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	p := s3.NewListObjectsV2Paginator(l.s3, &s3.ListObjectsV2Input{Bucket: aws.String(l.bucket), Prefix: aws.String(l.prefix + "/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys[aws.ToString(o.Key)] = true
		}
	}
	if len(keys) == 0 {
		t.Fatalf("no objects under %s/ in bucket %s", l.prefix, l.bucket)
	}
	return keys
}

func (l *layout) read(t *testing.T, ctx context.Context, key string) string {
	t.Helper()
	out, err := l.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(l.bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitObject re-reads obj ns/name until done says so.
func waitObject[T client.Object](t *testing.T, e *demo.Env, ns, name string, obj T, done func(T) (bool, string)) {
	t.Helper()
	err := demo.Poll(demo.Context(t, demo.Timeout), fmt.Sprintf("%T %s/%s", obj, ns, name), func(ctx context.Context) (bool, string, error) {
		if err := e.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
			return false, "", err
		}
		ok, last := done(obj)
		return ok, last, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// deleteAndWait deletes obj and waits until it is gone (its finalizers
// ran).
func deleteAndWait(t *testing.T, e *demo.Env, obj client.Object) {
	t.Helper()
	ctx := demo.Context(t, demo.Timeout)
	if err := e.Kube.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	err := demo.Poll(ctx, fmt.Sprintf("%T %s gone", obj, obj.GetName()), func(ctx context.Context) (bool, string, error) {
		err := e.Kube.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, fmt.Sprintf("finalizers %v", obj.GetFinalizers()), err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// hasCondition reports whether condition typ has reason, and what it says.
func hasCondition(conds []metav1.Condition, typ, reason string) (bool, string) {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return false, "no " + typ + " condition"
	}
	return c.Reason == reason, c.Reason + ": " + c.Message
}

// hasReason reports whether any condition has reason.
func hasReason(conds []metav1.Condition, reason string) (bool, string) {
	var seen []string
	for _, c := range conds {
		if c.Reason == reason {
			return true, c.Type + " " + c.Reason + ": " + c.Message
		}
		seen = append(seen, c.Type+"="+c.Reason)
	}
	return false, strings.Join(seen, ", ")
}

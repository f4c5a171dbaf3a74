package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/repository/storage"
	"github.com/keepsake-dev/keepsake/test/cluster"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// Timeout bounds each wait: generous, for a loaded two-core machine.
const Timeout = 6 * time.Minute

// Env is Keepsake installed on the local cluster plus one namespace holding
// the database, the storage objects and their Secrets.
type Env struct {
	*Stand
	T      testing.TB
	Params Params
	// DB is the database as the node reaches it, as its administrator.
	DB hyperbytedbtest.Server
}

// With returns the Env for test t (a subtest): its failures are t's.
func (e *Env) With(t testing.TB) *Env {
	c := *e
	c.T = t
	return &c
}

// Setup brings up (or reuses) the local cluster, installs Keepsake with
// Helm, and prepares namespace ns: the database StatefulSet with its
// administrator, a bucket and the BackupStorage (Ready) and RetentionPolicy.
func Setup(t testing.TB, c *cluster.Cluster, ns string) *Env {
	t.Helper()
	ctx := Context(t, 15*time.Minute)
	root, err := servers.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	stand, err := NewStand(c.Config, root, cluster.TestLog{T: t})
	if err != nil {
		t.Fatal(err)
	}
	if err := stand.Install(ctx); err != nil {
		t.Fatalf("install keepsake: %v", err)
	}
	e := &Env{Stand: stand, T: t, Params: Params{
		Endpoint: MinIOEndpoint, AccessKey: cluster.MinIOUser, SecretKey: cluster.MinIOPassword,
		ResticPassword: "correct horse battery staple", AdminUser: "admin", AdminPassword: "admin-secret",
		InfluxDBImage: cluster.InfluxDBImage,
	}}
	return e.InNamespace(t, ns)
}

// InNamespace prepares namespace ns as Setup does, on the Keepsake already
// installed: the database StatefulSet with its administrator, a bucket and
// the BackupStorage (Ready) and RetentionPolicy. The Env it returns is
// ns's, with a prefix of its own in the bucket.
func (e *Env) InNamespace(t testing.TB, ns string) *Env {
	t.Helper()
	ctx := Context(t, 15*time.Minute)
	e = e.With(t)
	e.Params.Namespace, e.Params.Bucket = ns, "keepsake-e2e"
	e.Params.Prefix = fmt.Sprintf("run-%d", time.Now().UnixNano())
	e.check(e.Stand.Apply(ctx, Database, e.Params))
	e.check(Poll(ctx, "database StatefulSet Ready", func(ctx context.Context) (bool, string, error) {
		var sts appsv1.StatefulSet
		err := e.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "metrics"}, &sts)
		return err == nil && sts.Status.ReadyReplicas == 1, fmt.Sprintf("%d ready", sts.Status.ReadyReplicas), err
	}))
	dbURL, err := e.ServiceURL(ctx, ns, "metrics", 8086)
	e.check(err)
	e.DB = hyperbytedbtest.Server{URL: dbURL, Username: e.Params.AdminUser, Password: e.Params.AdminPassword}
	e.createAdmin(ctx)
	e.check(e.CreateBucket(ctx, e.Params.Bucket))
	e.check(e.Stand.Apply(ctx, Storage, e.Params))
	e.WaitStorage("minio", storagev1alpha1.ReasonStorageAvailable)
	return e
}

func (e *Env) check(err error) {
	e.T.Helper()
	if err != nil {
		e.T.Fatal(err)
	}
}

// createAdmin creates the database's administrator (InfluxDB allows it
// unauthenticated while no user exists) and waits until authentication is
// enforced: InfluxDB refuses everything for a moment after.
func (e *Env) createAdmin(ctx context.Context) {
	e.T.Helper()
	anonymous := hyperbytedbtest.Server{URL: e.DB.URL}
	e.check(Poll(ctx, "database answering", func(context.Context) (bool, string, error) {
		// Any answer of the database will do, 403 "create admin user
		// first" included, but only the database's: until kube-proxy has
		// programmed the new Service, its cluster IP leaves the node, and
		// whatever answers there (a 404 from the sandbox's egress proxy,
		// seen in CI) is not InfluxDB.
		r := query(anonymous, "SHOW USERS")
		return r.fromInfluxDB(), r.String(), nil
	}))
	if r := query(e.DB, "SHOW USERS"); r.code != http.StatusOK {
		stmt := fmt.Sprintf("CREATE USER %s WITH PASSWORD '%s' WITH ALL PRIVILEGES", e.Params.AdminUser, e.Params.AdminPassword)
		if r := query(anonymous, stmt); r.code != http.StatusOK {
			e.T.Fatalf("create admin: %s", r)
		}
	}
	e.check(Poll(ctx, "database authentication enforced", func(context.Context) (bool, string, error) {
		admin, anon := query(e.DB, "SHOW DATABASES").code, query(anonymous, "SHOW DATABASES").code
		return admin == http.StatusOK && anon == http.StatusUnauthorized, fmt.Sprintf("admin %d, anonymous %d", admin, anon), nil
	}))
}

// answer is a database's answer to a query; code 0 when none came.
type answer struct {
	code    int
	version string // X-Influxdb-Version, which InfluxDB sends on every answer
	body    string
}

func (a answer) fromInfluxDB() bool { return a.code != 0 && a.version != "" }

func (a answer) String() string {
	if a.code == 0 {
		return a.body
	}
	return fmt.Sprintf("%d (X-Influxdb-Version %q) %s", a.code, a.version, a.body)
}

// query runs an InfluxQL statement.
func query(s hyperbytedbtest.Server, q string) answer {
	req, err := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(url.Values{"q": {q}}.Encode()))
	if err != nil {
		return answer{body: err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if s.Username != "" {
		req.SetBasicAuth(s.Username, s.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{body: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, version: resp.Header.Get("X-Influxdb-Version"), body: string(body)}
}

// DropAll drops every database but _internal: the data is gone.
func (e *Env) DropAll() {
	e.T.Helper()
	for db := range hyperbytedbtest.ReadContents(e.T, e.DB).Schema {
		e.DB.Exec(e.T, "DROP DATABASE "+quoteIdent(db))
	}
	if left := hyperbytedbtest.ReadContents(e.T, e.DB); len(left.Points) != 0 {
		e.T.Fatalf("%d points left after dropping every database", len(left.Points))
	}
}

func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Apply applies a manifest with the Env's parameters changed by mutate.
func (e *Env) Apply(tmpl string, mutate func(p *Params)) {
	e.T.Helper()
	p := e.Params
	if mutate != nil {
		mutate(&p)
	}
	e.check(e.Stand.Apply(Context(e.T, time.Minute), tmpl, p))
}

// WaitStorage waits until BackupStorage name's Ready condition has reason.
func (e *Env) WaitStorage(name, reason string) *storagev1alpha1.BackupStorage {
	e.T.Helper()
	var bs storagev1alpha1.BackupStorage
	e.wait(&bs, name, func() (bool, string) {
		c := meta.FindStatusCondition(bs.Status.Conditions, storagev1alpha1.ConditionReady)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Reason == reason, c.Reason + ": " + c.Message
	})
	return &bs
}

// WaitRepositorySize waits until Repository name records its stored size,
// which the sync Job after a backup measures: kubectl's Size column is
// empty until then.
func (e *Env) WaitRepositorySize(name string) *storagev1alpha1.Repository {
	e.T.Helper()
	var repo storagev1alpha1.Repository
	e.wait(&repo, name, func() (bool, string) {
		c := meta.FindStatusCondition(repo.Status.Conditions, storagev1alpha1.ConditionSynced)
		if c == nil {
			return false, "no stored size and no Synced condition"
		}
		return repo.Status.Size != "", fmt.Sprintf("no stored size; Synced %s/%s: %s", c.Status, c.Reason, c.Message)
	})
	return &repo
}

// WaitBackupSession waits until BackupSession name reaches phase.
func (e *Env) WaitBackupSession(name string, phase corev1alpha1.BackupSessionPhase) *corev1alpha1.BackupSession {
	e.T.Helper()
	var bks corev1alpha1.BackupSession
	e.wait(&bks, name, func() (bool, string) {
		if bks.IsFinished() && bks.Status.Phase != phase {
			e.T.Fatalf("BackupSession %s ended %s, want %s: %s", name, bks.Status.Phase, phase, conditions(bks.Status.Conditions))
		}
		return bks.Status.Phase == phase, fmt.Sprintf("phase %q, conditions %s", bks.Status.Phase, conditions(bks.Status.Conditions))
	})
	return &bks
}

// WaitRestoreSession waits until RestoreSession name reaches phase.
func (e *Env) WaitRestoreSession(name string, phase corev1alpha1.RestoreSessionPhase) *corev1alpha1.RestoreSession {
	e.T.Helper()
	var rs corev1alpha1.RestoreSession
	e.wait(&rs, name, func() (bool, string) {
		if rs.IsFinished() && rs.Status.Phase != phase {
			e.T.Fatalf("RestoreSession %s ended %s, want %s: %s", name, rs.Status.Phase, phase, conditions(rs.Status.Conditions))
		}
		return rs.Status.Phase == phase, fmt.Sprintf("phase %q, conditions %s", rs.Status.Phase, conditions(rs.Status.Conditions))
	})
	return &rs
}

// wait re-reads obj (in the Env's namespace) until done says so.
func (e *Env) wait(obj client.Object, name string, done func() (bool, string)) {
	e.T.Helper()
	ctx := Context(e.T, Timeout)
	what := fmt.Sprintf("%T %s", obj, name)
	e.check(Poll(ctx, what, func(ctx context.Context) (bool, string, error) {
		if err := e.Kube.Get(ctx, client.ObjectKey{Namespace: e.Params.Namespace, Name: name}, obj); err != nil {
			return false, "", err
		}
		ok, last := done()
		return ok, last, nil
	}))
}

func conditions(conds []metav1.Condition) string {
	var parts []string
	for _, c := range conds {
		parts = append(parts, fmt.Sprintf("%s=%s/%s: %s", c.Type, c.Status, c.Reason, c.Message))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// Snapshots lists the Snapshots of a repository, oldest first.
func (e *Env) Snapshots(repo string) []storagev1alpha1.Snapshot {
	e.T.Helper()
	var list storagev1alpha1.SnapshotList
	e.check(e.Kube.List(Context(e.T, time.Minute), &list, client.InNamespace(e.Params.Namespace)))
	var out []storagev1alpha1.Snapshot
	for _, s := range list.Items {
		if s.Spec.Repository == repo && s.DeletionTimestamp.IsZero() {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreationTimestamp.Before(&out[j].CreationTimestamp) })
	return out
}

// Restic opens, from the node, the restic repository in directory dir.
func (e *Env) Restic(dir string) *restic.Repo {
	e.T.Helper()
	ctx := Context(e.T, time.Minute)
	_, endpoint, err := e.MinIO(ctx)
	e.check(err)
	target, err := storage.ResticRepository(storage.Config{
		Provider: storage.ProviderS3,
		S3: storage.S3Config{Endpoint: endpoint, Bucket: e.Params.Bucket, Prefix: e.Params.Prefix,
			Region: "us-east-1", ForcePathStyle: true},
		Credentials: storage.Credentials{AccessKeyID: e.Params.AccessKey, SecretAccessKey: e.Params.SecretKey},
	}, e.Params.Namespace, dir)
	e.check(err)
	password := filepath.Join(e.T.TempDir(), "password")
	e.check(os.WriteFile(password, []byte(e.Params.ResticPassword), 0o600))
	return restic.New(restic.Config{
		Binary: e.bin("restic"), Repository: target.Repository, PasswordFile: password,
		Env: target.Env, ExtraArgs: target.ExtraArgs, CacheDir: filepath.Join(e.T.TempDir(), "cache"),
	})
}

// Context is a context bounded by timeout and the test's deadline.
func Context(t testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

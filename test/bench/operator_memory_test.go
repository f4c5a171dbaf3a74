package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// BenchmarkOperatorMemory runs `keepsake operator` (the binary in ./bin)
// against a real kube-apiserver and reports its resident memory idle and
// once it manages KEEPSAKE_BENCH_CONFIGS (default 500) Ready
// BackupConfigurations, each with its Repository, CronJob, first
// BackupSession, Snapshot and Job (target: peak < 150 MiB). The ratio
// loaded/idle is measured in the same run.
func BenchmarkOperatorMemory(b *testing.B) {
	servers.SkipIfShort(b, "the operator benchmark needs a kube-apiserver")
	configs := envInt(b, "KEEPSAKE_BENCH_CONFIGS", 500)
	perNamespace := 20
	for range b.N {
		api, err := servers.StartAPIServer()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = api.Stop() })
		admin := adminClient(b, api)
		kubeconfig := writeKubeconfig(b, api.Env)
		createCatalog(b, admin)

		op := startOperator(b, kubeconfig)
		time.Sleep(10 * time.Second) // caches synced, nothing to do
		idle := rss(b, op.Process.Pid, "VmRSS")

		start := time.Now()
		for n := 0; n < configs; n += perNamespace {
			createNamespaceFixtures(b, admin, fmt.Sprintf("bench-%03d", n/perNamespace), min(perNamespace, configs-n))
		}
		waitAllReady(b, admin, configs)
		settle := time.Since(start)
		time.Sleep(10 * time.Second)
		loaded := rss(b, op.Process.Pid, "VmRSS")
		peak := rss(b, op.Process.Pid, "VmHWM")

		b.ReportMetric(idle/mib, "idle-RSS-MiB")
		b.ReportMetric(loaded/mib, "RSS-MiB")
		b.ReportMetric(peak/mib, "peak-RSS-MiB")
		b.ReportMetric(loaded/idle, "RSS/idle")
		b.ReportMetric(settle.Seconds(), "s-to-all-Ready")
		b.Logf("%d BackupConfigurations: idle %.1f MiB, loaded %.1f MiB, peak %.1f MiB (target < 150), all Ready after %s",
			configs, idle/mib, loaded/mib, peak/mib, settle.Round(time.Second))
	}
}

func adminClient(b *testing.B, api *servers.APIServer) client.Client {
	b.Helper()
	scheme, err := operator.Scheme()
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.New(api.Config, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// writeKubeconfig writes a cluster-admin kubeconfig for the operator.
func writeKubeconfig(b *testing.B, env *envtest.Environment) string {
	b.Helper()
	user, err := env.AddUser(envtest.User{Name: "bench-operator", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// createCatalog installs the HyperbyteDB Addon and Functions, as the
// chart does.
func createCatalog(b *testing.B, c client.Client) {
	b.Helper()
	root, err := servers.FindRepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"addon.yaml", "function.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, "addons", "hyperbytedb", "manifests", name))
		if err != nil {
			b.Fatal(err)
		}
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj client.Object = &addonsv1alpha1.Function{}
			if name == "addon.yaml" {
				obj = &addonsv1alpha1.Addon{}
			}
			if err := dec.Decode(obj); err != nil {
				break
			}
			if err := c.Create(context.Background(), obj); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// startOperator runs the keepsake binary's operator; it is killed when the
// benchmark ends.
func startOperator(b *testing.B, kubeconfig string) *exec.Cmd {
	b.Helper()
	bin, err := servers.FindBin("keepsake")
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "operator", "--image=keepsake.local/keepsake:dev",
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--log-level=warn")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// createNamespaceFixtures makes a namespace with a target, a local
// BackupStorage, an encryption Secret and n BackupConfigurations.
func createNamespaceFixtures(b *testing.B, c client.Client, ns string, n int) {
	b.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": "db"}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
			Spec: appsv1.StatefulSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db:1"}}},
				},
			},
		},
		&storagev1alpha1.BackupStorage{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "local"},
			Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.StorageBackend{
				Provider: storagev1alpha1.ProviderLocal,
				Local: &storagev1alpha1.LocalStorage{VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "backups"},
				}},
			}},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "restic-password"},
			StringData: map[string]string{"RESTIC_PASSWORD": "bench"},
		},
	}
	for i := range n {
		name := fmt.Sprintf("db-%02d", i)
		objs = append(objs, &corev1alpha1.BackupConfiguration{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1alpha1.BackupConfigurationSpec{
				Target: storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: "db"},
				Backends: []corev1alpha1.BackendReference{{
					Name: "local", StorageRef: storagev1alpha1.ObjectReference{Name: "local"},
				}},
				Sessions: []corev1alpha1.Session{{
					Name:      "nightly",
					Scheduler: corev1alpha1.SchedulerSpec{Schedule: fmt.Sprintf("%d 3 * * *", i%60)},
					Addon: corev1alpha1.AddonInfo{Name: "hyperbytedb", Tasks: []corev1alpha1.TaskReference{{
						Name: "logical-backup",
					}}},
					Repositories: []corev1alpha1.RepositoryInfo{{
						Name: name, Backend: "local", Directory: name,
						EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"},
					}},
				}},
			},
		})
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			b.Fatalf("create %T %s/%s: %v", o, ns, o.GetName(), err)
		}
	}
}

// waitAllReady waits until n BackupConfigurations are Ready and n
// BackupSessions have their Job.
func waitAllReady(b *testing.B, c client.Client, n int) {
	b.Helper()
	deadline := time.Now().Add(15 * time.Minute)
	for {
		var bcs corev1alpha1.BackupConfigurationList
		var sessions corev1alpha1.BackupSessionList
		if err := c.List(context.Background(), &bcs); err != nil {
			b.Fatal(err)
		}
		if err := c.List(context.Background(), &sessions); err != nil {
			b.Fatal(err)
		}
		ready, running := 0, 0
		for _, bc := range bcs.Items {
			if meta.IsStatusConditionTrue(bc.Status.Conditions, corev1alpha1.ConditionReady) {
				ready++
			}
		}
		for _, s := range sessions.Items {
			if s.Status.Job != "" {
				running++
			}
		}
		if ready == n && running == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("after 15 min: %d of %d BackupConfigurations Ready, %d sessions with a Job", ready, n, running)
		}
		time.Sleep(2 * time.Second)
	}
}

// rss reads a /proc/<pid>/status memory line (VmRSS, VmHWM) in bytes.
func rss(b *testing.B, pid int, field string) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

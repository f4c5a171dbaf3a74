// Package demo installs Keepsake on the local cluster (test/cluster) with
// its Helm chart and drives it the way a user does: YAML applied with
// kubectl, objects read back with kubectl and the API. `make demo` runs
// Run; the e2e suite (test/e2e) uses the same Stand for its scenarios.
package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/test/cluster"
)

const (
	// OperatorNamespace holds the Helm release and the operator.
	OperatorNamespace = "keepsake-system"
	// Release is the Helm release name.
	Release = "keepsake"
	// OperatorLabel selects the operator's pods.
	OperatorLabel = "app.kubernetes.io/name=keepsake,app.kubernetes.io/component=operator"
	// MinIOEndpoint is the test MinIO as pods reach it.
	MinIOEndpoint = "http://minio." + cluster.ServersNamespace + ".svc.cluster.local:9000"
)

// Stand is Keepsake installed on the local cluster.
type Stand struct {
	Cluster cluster.Config
	// Kube reads and writes every kind Keepsake and Kubernetes have.
	Kube client.Client
	// Root is the repository's root: the chart and the binaries live there.
	Root string
	// Log receives progress lines.
	Log io.Writer
}

// NewStand returns a Stand for the running cluster cfg.
func NewStand(cfg cluster.Config, root string, log io.Writer) (*Stand, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, storagev1alpha1.AddToScheme, corev1alpha1.AddToScheme, addonsv1alpha1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	c, err := client.New(cfg.RESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	return &Stand{Cluster: cfg, Kube: c, Root: root, Log: log}, nil
}

func (s *Stand) logf(format string, args ...any) {
	fmt.Fprintf(s.Log, format+"\n", args...)
}

func (s *Stand) bin(name string) string { return filepath.Join(s.Cluster.BinDir, name) }

// Install loads the keepsake image built from ./bin (keepsake, restic, the
// HyperbyteDB driver and the script driver) and the addon images into the
// node: the HyperbyteDB driver's with influxd, which the addon's Functions
// run; the HyperbyteDB tool image with the driver and the emulated
// hyperbytedb of bin/hyperbytedb-emulation, which its hyperbytedb-backup
// and hyperbytedb-restore Functions run; the PostgreSQL driver's; and
// Redis's for the script addon's Functions. It applies the CRDs (Helm
// installs a chart's CRDs only once, never upgrading them) and installs or
// upgrades the chart with those images, waiting until the operator is
// available.
func (s *Stand) Install(ctx context.Context) error {
	sources := cluster.AddonImageSources(s.bin("postgres-driver"), s.bin("hyperbytedb-driver"), s.bin("hyperbytedb-emulation"))
	for _, name := range []string{"keepsake", "restic", "script-driver"} {
		sources[name] = s.bin(name)
	}
	build, err := hashFiles(sources["keepsake"], sources["restic"], sources["hyperbytedb-driver"], sources["script-driver"])
	if err != nil {
		return fmt.Errorf("keepsake binaries (make build): %w", err)
	}
	if _, err := os.Stat(sources["postgres-driver"]); err != nil {
		return fmt.Errorf("postgres driver (make build): %w", err)
	}
	if _, err := os.Stat(sources["hyperbytedb-emulation"]); err != nil {
		return fmt.Errorf("emulated hyperbytedb (make tools): %w", err)
	}
	if err := s.Cluster.ImportImages(ctx, sources); err != nil {
		return err
	}
	chart := filepath.Join(s.Root, "charts", "keepsake")
	if _, err := s.Cluster.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", filepath.Join(chart, "crds")); err != nil {
		return err
	}
	// The build annotation restarts the operator when its binaries changed:
	// the image tag stays keepsake.local/keepsake:dev.
	helm := exec.CommandContext(ctx, s.bin("helm"), "upgrade", "--install", Release, chart,
		"--kubeconfig", s.Cluster.AdminKubeconfig(), "--namespace", OperatorNamespace, "--create-namespace",
		"--set-string", "podAnnotations.keepsake\\.dev/build="+build[:16],
		"--set-string", "addons.hyperbytedb.image="+cluster.HyperbytedbDriverImage,
		"--set-string", "addons.hyperbytedb.toolImage="+cluster.HyperbytedbToolImage,
		"--set-string", "addons.postgres.image="+cluster.PostgresDriverImage,
		"--set-string", "addons.script.image="+cluster.RedisImage,
		"--wait", "--timeout", "5m")
	helm.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(os.TempDir(), "keepsake-helm-cache"),
		"HELM_CONFIG_HOME="+filepath.Join(os.TempDir(), "keepsake-helm-config"),
		"HELM_DATA_HOME="+filepath.Join(os.TempDir(), "keepsake-helm-data"))
	if out, err := helm.CombinedOutput(); err != nil {
		return fmt.Errorf("helm upgrade --install: %v: %s", err, strings.TrimSpace(string(out)))
	}
	s.logf("keepsake installed with Helm in namespace %s (build %s)", OperatorNamespace, build[:12])
	return s.WaitOperatorReady(ctx)
}

// WaitOperatorReady waits until one operator pod, of the current build, is
// Ready and no other is left.
func (s *Stand) WaitOperatorReady(ctx context.Context) error {
	return Poll(ctx, "operator pod Ready", func(ctx context.Context) (bool, string, error) {
		pods, err := s.OperatorPods(ctx)
		if err != nil {
			return false, "", err
		}
		ready := 0
		for _, p := range pods {
			if !p.DeletionTimestamp.IsZero() {
				return false, "an old operator pod is still terminating", nil
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == 1 && len(pods) == 1, fmt.Sprintf("%d pods, %d Ready", len(pods), ready), nil
	})
}

// OperatorPods lists the operator's pods.
func (s *Stand) OperatorPods(ctx context.Context) ([]corev1.Pod, error) {
	var pods corev1.PodList
	sel, err := metav1.ParseToLabelSelector(OperatorLabel)
	if err != nil {
		return nil, err
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, err
	}
	if err := s.Kube.List(ctx, &pods, client.InNamespace(OperatorNamespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("list operator pods: %w", err)
	}
	return pods.Items, nil
}

// hashFiles hashes the contents of files.
func hashFiles(paths ...string) (string, error) {
	h := sha256.New()
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Apply renders a YAML template with data and applies it with kubectl, as a
// user would.
func (s *Stand) Apply(ctx context.Context, tmpl string, data any) error {
	t, err := template.New("manifest").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return err
	}
	f, err := os.CreateTemp("", "keepsake-manifest-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	_, err = s.Cluster.Kubectl(ctx, "apply", "-f", f.Name())
	return err
}

// Kubectl runs kubectl and returns its output.
func (s *Stand) Kubectl(ctx context.Context, args ...string) (string, error) {
	return s.Cluster.Kubectl(ctx, args...)
}

// ResetNamespace deletes namespace ns if a previous run left it, waits
// until it is gone, and creates it afresh with the restricted Pod Security
// level enforced.
func (s *Stand) ResetNamespace(ctx context.Context, ns string) error {
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if err := s.Kube.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	err := Poll(ctx, "namespace "+ns+" gone", func(ctx context.Context) (bool, string, error) {
		err := s.Kube.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, "still terminating", err
	})
	if err != nil {
		return err
	}
	obj = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted",
	}}}
	if err := s.Kube.Create(ctx, obj); err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return nil
}

// ServiceURL is http://<ClusterIP>:<port> of a Service: the node (where
// the demo and tests run) reaches Services through kube-proxy.
func (s *Stand) ServiceURL(ctx context.Context, ns, name string, port int) (string, error) {
	var svc corev1.Service
	if err := s.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
		return "", fmt.Errorf("get Service %s/%s: %w", ns, name, err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return "", fmt.Errorf("service %s/%s has no cluster IP", ns, name)
	}
	return fmt.Sprintf("http://%s:%d", svc.Spec.ClusterIP, port), nil
}

// MinIO returns an S3 client for the cluster's test MinIO, from the node.
func (s *Stand) MinIO(ctx context.Context) (*s3.Client, string, error) {
	endpoint, err := s.ServiceURL(ctx, cluster.ServersNamespace, "minio", 9000)
	if err != nil {
		return nil, "", err
	}
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(cluster.MinIOUser, cluster.MinIOPassword, ""),
	})
	return c, endpoint, nil
}

// CreateBucket creates a bucket in the test MinIO unless it exists.
func (s *Stand) CreateBucket(ctx context.Context, bucket string) error {
	c, _, err := s.MinIO(ctx)
	if err != nil {
		return err
	}
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *s3types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// Poll calls check every second until it is done, fails, or ctx ends; the
// error then says what was awaited and what check saw last.
func Poll(ctx context.Context, what string, check func(ctx context.Context) (done bool, last string, err error)) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last string
	for {
		done, seen, err := check(ctx)
		if err != nil && ctx.Err() == nil {
			seen = err.Error()
		}
		if done && err == nil {
			return nil
		}
		if seen != "" {
			last = seen
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last seen: %s)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

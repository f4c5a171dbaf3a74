// Package testenv runs the operator's reconcilers in tests against a real
// kube-apiserver and etcd (envtest), with the real manager: what a test
// observes is what a cluster would do, less the built-in controllers
// (no garbage collection, no CronJob or Job controller).
package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/operator"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// Options are the operator options tests run with.
var Options = operator.Options{
	MetricsBindAddress:      "0",
	HealthProbeBindAddress:  "0",
	Image:                   "registry.local/keepsake:test",
	LeaderElection:          true,
	LeaderElectionNamespace: "default",
	// Tests restart the manager in one process.
	SkipControllerNameValidation: true,
	Logger:                       logr.FromSlogHandler(slog.NewTextHandler(io.Discard, nil)),
}

// Env is a running API server with the operator's manager.
type Env struct {
	// API is the kube-apiserver and etcd.
	API *servers.APIServer
	// Client talks to the API server directly, as an administrator and
	// without a cache, so tests read what is stored.
	Client client.Client
	// operator is the configuration of the manager, whose user has only
	// the operator's generated ClusterRole.
	operator *rest.Config

	stop context.CancelFunc
	done chan error
}

// Default is the environment Main started.
var Default *Env

// Main starts the API server and the manager, runs the package's tests and
// stops both; TestMain calls os.Exit(testenv.Main(m)). In -short mode it
// runs nothing: these tests need kube-apiserver and etcd.
func Main(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping operator tests in -short mode: they need kube-apiserver and etcd")
		return 0
	}
	ctrl.SetLogger(Options.Logger)
	api, err := servers.StartAPIServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := api.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}()
	Default, err = start(api)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := Default.StopManager(); err != nil {
			fmt.Fprintln(os.Stderr, "stop manager:", err)
		}
	}()
	return m.Run()
}

func start(api *servers.APIServer) (*Env, error) {
	scheme, err := operator.Scheme()
	if err != nil {
		return nil, err
	}
	// Parallel tests poll: lift client-go's default 5 requests a second.
	api.Config.QPS, api.Config.Burst = 1000, 2000
	c, err := client.New(api.Config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	operatorCfg, err := operatorConfig(context.Background(), api.Env, c)
	if err != nil {
		return nil, err
	}
	operatorCfg.QPS, operatorCfg.Burst = api.Config.QPS, api.Config.Burst
	e := &Env{API: api, Client: c, operator: operatorCfg}
	return e, e.StartManager()
}

// StartManager starts a new manager with every reconciler, as a freshly
// started operator pod would, and waits until its caches are synced.
func (e *Env) StartManager() error {
	mgr, err := operator.New(e.operator, Options)
	if err != nil {
		return err
	}
	if err := operator.Setup(mgr, Options); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.stop, e.done = cancel, make(chan error, 1)
	go func() { e.done <- mgr.Start(ctx) }()
	syncCtx, syncCancel := context.WithTimeout(ctx, 60*time.Second)
	defer syncCancel()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		cancel()
		return errors.Join(errors.New("manager caches did not sync"), <-e.done)
	}
	return nil
}

// StopManager stops the manager and waits until it has returned.
func (e *Env) StopManager() error {
	if e.stop == nil {
		return nil
	}
	e.stop()
	e.stop = nil
	return <-e.done
}

// RestartManager stops the manager and starts a new one, as when the
// operator pod is killed and rescheduled.
func (e *Env) RestartManager(t testing.TB) {
	t.Helper()
	if err := e.StopManager(); err != nil {
		t.Fatalf("stop manager: %v", err)
	}
	if err := e.StartManager(); err != nil {
		t.Fatalf("start manager: %v", err)
	}
}

// Namespace creates a namespace of its own for a test, with labels, and
// returns its name. envtest has no namespace controller, so it is not
// deleted: every test simply uses a fresh one.
func (e *Env) Namespace(t testing.TB, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-", Labels: labels}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// Create creates objects, failing the test on error.
func (e *Env) Create(t testing.TB, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := e.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// WaitTimeout bounds every wait: generous, because the machines running
// tests are small and shared.
const WaitTimeout = 60 * time.Second

// Eventually polls cond until it returns true, and fails the test with the
// last description cond gave when WaitTimeout passes first.
func Eventually(t testing.TB, cond func(ctx context.Context) (ok bool, last string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, WaitTimeout, true,
		func(ctx context.Context) (bool, error) {
			ok, desc := cond(ctx)
			last = desc
			return ok, nil
		})
	if err != nil {
		t.Fatalf("gave up after %s: %s", WaitTimeout, last)
	}
}

// WaitCondition re-reads obj until its condition condType, as conds returns
// it from obj, has status want and reason. It returns that condition.
func (e *Env) WaitCondition(t testing.TB, obj client.Object, conds func() []metav1.Condition,
	condType string, want metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	var found metav1.Condition
	Eventually(t, func(ctx context.Context) (bool, string) {
		if err := e.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(conds(), condType)
		if c == nil {
			return false, fmt.Sprintf("%s has no %s condition; conditions: %+v", obj.GetName(), condType, conds())
		}
		found = *c
		return c.Status == want && c.Reason == reason && c.ObservedGeneration == obj.GetGeneration(),
			fmt.Sprintf("%s condition %s is %s/%s (%s) at generation %d, want %s/%s at %d",
				obj.GetName(), condType, c.Status, c.Reason, c.Message, c.ObservedGeneration, want, reason, obj.GetGeneration())
	})
	return found
}

// JobPod plays the Job controller and the kubelet: it creates a pod of
// job, ended in phase with condition cond if set.
func JobPod(t testing.TB, job *batchv1.Job, phase corev1.PodPhase, cond *corev1.PodCondition) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: job.Namespace, Name: job.Name + "-pod", Labels: job.Spec.Template.Labels},
		Spec:       *job.Spec.Template.Spec.DeepCopy(),
	}
	if err := Default.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = phase
	if cond != nil {
		c := *cond
		c.LastTransitionTime = metav1.Now()
		pod.Status.Conditions = []corev1.PodCondition{c}
	}
	if err := Default.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := Default.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil || pod.Status.Phase != phase {
		t.Fatalf("pod %s status = %+v (%v), want phase %s", pod.Name, pod.Status, err, phase)
	}
}

// FinishJob plays the Job controller: it marks the Job Complete, or Failed
// with failReason when that is set.
func FinishJob(t testing.TB, job *batchv1.Job, failReason string) {
	t.Helper()
	now := metav1.Now()
	cond := func(typ batchv1.JobConditionType, reason string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason,
			Message: "set by the test", LastProbeTime: now, LastTransitionTime: now}
	}
	Eventually(t, func(ctx context.Context) (bool, string) {
		if err := Default.Client.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
			return false, err.Error()
		}
		job.Status.StartTime = &metav1.Time{Time: now.Add(-time.Minute)}
		if failReason == "" {
			job.Status.Succeeded = 1
			job.Status.CompletionTime = &now
			job.Status.Conditions = []batchv1.JobCondition{
				cond(batchv1.JobSuccessCriteriaMet, "CompletionsReached"), cond(batchv1.JobComplete, "CompletionsReached"),
			}
		} else {
			job.Status.Failed = 1
			job.Status.Conditions = []batchv1.JobCondition{
				cond(batchv1.JobFailureTarget, failReason), cond(batchv1.JobFailed, failReason),
			}
		}
		if err := Default.Client.Status().Update(ctx, job); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// WaitExists re-reads obj, by its namespace and name, until it exists.
func WaitExists(t testing.TB, obj client.Object) {
	t.Helper()
	Eventually(t, func(ctx context.Context) (bool, string) {
		err := Default.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if err != nil {
			return false, fmt.Sprintf("%T %s: %v", obj, obj.GetName(), err)
		}
		return true, ""
	})
}

// WaitPhase re-reads obj until phase() is want and its condition condType,
// as conds returns it from obj, has reason; it returns that condition.
// status() is what a timeout reports.
func WaitPhase(t testing.TB, obj client.Object, phase func() string, want string,
	conds func() []metav1.Condition, condType, reason string, status func() any) metav1.Condition {
	t.Helper()
	var found metav1.Condition
	Eventually(t, func(ctx context.Context) (bool, string) {
		if err := Default.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(conds(), condType)
		if c != nil {
			found = *c
		}
		return phase() == want && c != nil && c.Reason == reason, "status: " + JSON(status())
	})
	return found
}

// JSON is v as JSON, for test messages and comparisons.
func JSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(data)
}

// As returns a client that acts as ServiceAccount serviceAccount of
// namespace ns (impersonation), as a pod holding its token would: what it
// may do is what that ServiceAccount's Roles allow.
func (e *Env) As(t testing.TB, ns, serviceAccount string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(e.API.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + serviceAccount,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	c, err := client.New(cfg, client.Options{Scheme: e.Client.Scheme()})
	if err != nil {
		t.Fatalf("client as %s/%s: %v", ns, serviceAccount, err)
	}
	return c
}

// Allowed makes call until the API server stops answering Forbidden (RBAC
// reaches its authorizer through an informer, so a Role just made may lag)
// and fails the test unless call then succeeds.
func Allowed(t testing.TB, desc string, call func(ctx context.Context) error) {
	t.Helper()
	var err error
	_ = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, WaitTimeout, true,
		func(ctx context.Context) (bool, error) {
			err = call(ctx)
			return !apierrors.IsForbidden(err), nil
		})
	if err != nil {
		t.Errorf("%s: %v, want it allowed", desc, err)
	}
}

// Refused fails the test unless call is refused as Forbidden.
func Refused(t testing.TB, desc string, call func(ctx context.Context) error) {
	t.Helper()
	if err := call(context.Background()); !apierrors.IsForbidden(err) {
		t.Errorf("%s: err %v, want Forbidden", desc, err)
	}
}

// Package operator is Keepsake's controller-runtime manager: it registers a
// reconciler per custom resource, which turn BackupStorages,
// BackupConfigurations and the addon catalog into Repositories, CronJobs and
// BackupSessions. `keepsake operator` calls Run.
package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	// The operator computes next schedules in users' time zones, whatever
	// the image it runs in.
	_ "time/tzdata"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/addon"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/operator/backupsession"
	"github.com/keepsake-dev/keepsake/operator/backupstorage"
	"github.com/keepsake-dev/keepsake/operator/internal/access"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/metrics"
	"github.com/keepsake-dev/keepsake/operator/repository"
	"github.com/keepsake-dev/keepsake/operator/restoresession"
	"github.com/keepsake-dev/keepsake/operator/retentionpolicy"
	"github.com/keepsake-dev/keepsake/operator/snapshot"
)

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// LeaderElectionID names the Lease operator replicas compete for.
const LeaderElectionID = "keepsake-operator.keepsake.dev"

// Options configure the operator.
type Options struct {
	// MetricsBindAddress serves Prometheus metrics, e.g. ":8080"; "0"
	// disables them.
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz, e.g. ":8081";
	// "0" or empty disables them.
	HealthProbeBindAddress string
	// LeaderElection makes only one replica reconcile at a time.
	LeaderElection bool
	// LeaderElectionNamespace holds the Lease; the operator's own namespace
	// when empty (in a cluster).
	LeaderElectionNamespace string
	// Image is the keepsake image that trigger Jobs run, e.g.
	// registry.local/keepsake:v0.1.0.
	Image string
	// TriggerServiceAccount, when set, is the ServiceAccount, in each
	// BackupConfiguration's namespace, that the CronJobs' pods run as;
	// JobServiceAccount, else keepsake-trigger, when empty.
	TriggerServiceAccount string
	// JobServiceAccount, when set, is the one ServiceAccount that backup,
	// restore, retention and forget Jobs (and trigger pods, unless
	// TriggerServiceAccount is set) run as, with a Role holding what all
	// of them need. Empty, the default, gives each kind of Job its own
	// (access.NewAccounts).
	JobServiceAccount string
	// SkipControllerNameValidation lets one process build several managers
	// in turn, as tests that restart the operator do; controller names are
	// otherwise unique per process.
	SkipControllerNameValidation bool
	// Logger receives structured logs; JSON to stderr when it has no sink
	// (the zero Logger, as well as logr.Discard()).
	Logger logr.Logger
}

// Scheme returns the types the operator reads and writes: client-go's and
// Keepsake's three API groups.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		storagev1alpha1.AddToScheme,
		corev1alpha1.AddToScheme,
		addonsv1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("build scheme: %w", err)
		}
	}
	return s, nil
}

// New returns a manager for cfg with Keepsake's scheme, leader election,
// metrics and health endpoints, and no reconcilers yet: see Setup.
func New(cfg *rest.Config, opts Options) (ctrl.Manager, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	owned, err := labels.NewRequirement(corev1alpha1.LabelBackupConfiguration, selection.Exists, nil)
	if err != nil {
		return nil, fmt.Errorf("cronjob selector: %w", err)
	}
	keepsakeJobs, err := labels.NewRequirement(jobs.LabelManagedBy, selection.Equals, []string{jobs.ManagedBy})
	if err != nil {
		return nil, fmt.Errorf("job selector: %w", err)
	}
	logger := opts.Logger
	if logger.GetSink() == nil {
		logger = NewLogger(os.Stderr, slog.LevelInfo)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  logger,
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsBindAddress},
		HealthProbeBindAddress:  opts.HealthProbeBindAddress,
		Controller:              config.Controller{SkipNameValidation: &opts.SkipControllerNameValidation},
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// A replica that stops hands over at once instead of making the
		// next one wait for the lease to expire.
		LeaderElectionReleaseOnCancel: true,
		// Only the CronJobs and Jobs the operator made are cached, not every
		// CronJob and Job of the cluster.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&batchv1.CronJob{}: {Label: labels.NewSelector().Add(*owned)},
			&batchv1.Job{}:     {Label: labels.NewSelector().Add(*keepsakeJobs)},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("new manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add ready check: %w", err)
	}
	return mgr, nil
}

// Setup registers every reconciler of the operator with mgr.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Image == "" {
		return errors.New("operator: the keepsake image is not set")
	}
	// One provisioner, so each namespace's ServiceAccounts are made once;
	// the reconcilers take it and the ServiceAccounts from here only.
	provisioner := &access.Provisioner{Client: mgr.GetClient(), Reader: mgr.GetAPIReader()}
	jobOptions := jobs.Options{
		Image:    opts.Image,
		Accounts: access.NewAccounts(opts.JobServiceAccount, opts.TriggerServiceAccount),
		Access:   provisioner,
	}
	setups := []struct {
		name  string
		setup func() error
	}{
		{"backupstorage", func() error { return backupstorage.Setup(mgr) }},
		{"retentionpolicy", func() error { return retentionpolicy.Setup(mgr) }},
		{"addon", func() error { return addon.Setup(mgr) }},
		{"backupconfiguration", func() error {
			return backupconfiguration.Setup(mgr, jobOptions)
		}},
		{"backupsession", func() error { return backupsession.Setup(mgr, jobOptions) }},
		{"restoresession", func() error { return restoresession.Setup(mgr, jobOptions) }},
		{"snapshot", func() error { return snapshot.Setup(mgr, jobOptions) }},
		{"repository", func() error { return repository.Setup(mgr, jobOptions) }},
	}
	for _, s := range setups {
		if err := s.setup(); err != nil {
			return fmt.Errorf("set up %s reconciler: %w", s.name, err)
		}
	}
	metrics.Register(mgr.GetClient())
	return nil
}

// Run builds the manager for the cluster in the environment (in-cluster or
// KUBECONFIG), registers every reconciler and runs until ctx ends.
func Run(ctx context.Context, opts Options) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubernetes config: %w", err)
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = NewLogger(os.Stderr, slog.LevelInfo)
	}
	installLogger(opts.Logger)
	mgr, err := New(cfg, opts)
	if err != nil {
		return err
	}
	if err := Setup(mgr, opts); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

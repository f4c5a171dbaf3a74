package operator

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Main is `keepsake operator`: it parses the flags into Options and runs
// the manager until ctx ends.
func Main(ctx context.Context, args []string, _, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return Run(ctx, opts)
}

func parseFlags(args []string, stderr io.Writer) (Options, error) {
	var o Options
	var level slog.Level
	fs := flag.NewFlagSet("keepsake operator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":8080", `serve Prometheus metrics here; "0" disables them`)
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "serve /healthz and /readyz here")
	fs.BoolVar(&o.LeaderElection, "leader-elect", false, "elect a leader so only one replica reconciles")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader Lease; the operator's own when empty")
	fs.StringVar(&o.Image, "image", "", "keepsake image that trigger and task Jobs run (required)")
	fs.StringVar(&o.TriggerServiceAccount, "trigger-service-account", "",
		"ServiceAccount the CronJobs' trigger pods run as; keepsake-trigger (or --job-service-account) when empty")
	fs.StringVar(&o.JobServiceAccount, "job-service-account", "",
		"one ServiceAccount every backup, restore, retention and forget Job runs as; empty gives each kind its own")
	fs.TextVar(&level, "log-level", slog.LevelInfo, "least severe logs written: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.Image == "" {
		return o, fmt.Errorf("--image is required: the keepsake image Jobs run")
	}
	o.Logger = NewLogger(stderr, level)
	return o, nil
}

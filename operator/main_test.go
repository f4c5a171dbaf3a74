package operator

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

func TestParseFlags(t *testing.T) {
	cases := map[string]struct {
		args    []string // command line after `keepsake operator`
		want    Options  // options it must produce (compared field by field below)
		wantErr string   // error text; "" means none
	}{
		"defaults": {args: []string{"--image=keepsake:dev"},
			want: Options{Image: "keepsake:dev", MetricsBindAddress: ":8080", HealthProbeBindAddress: ":8081"}},
		"everything set": {args: []string{"--image=k:1", "--leader-elect", "--metrics-bind-address=0",
			"--health-probe-bind-address=:9000", "--trigger-service-account=t", "--job-service-account=j", "--leader-election-namespace=ks"},
			want: Options{Image: "k:1", LeaderElection: true, MetricsBindAddress: "0", HealthProbeBindAddress: ":9000",
				TriggerServiceAccount: "t", JobServiceAccount: "j", LeaderElectionNamespace: "ks"}},
		"no image":       {args: nil, wantErr: "--image is required"},
		"stray argument": {args: []string{"--image=k", "now"}, wantErr: `unexpected arguments ["now"]`},
		"unknown flag":   {args: []string{"--imag=k"}, wantErr: "flag provided but not defined: -imag"},
		"bad log level":  {args: []string{"--image=k", "--log-level=loud"}, wantErr: `invalid value "loud" for flag -log-level`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Image != tc.want.Image || got.LeaderElection != tc.want.LeaderElection ||
				got.MetricsBindAddress != tc.want.MetricsBindAddress || got.HealthProbeBindAddress != tc.want.HealthProbeBindAddress ||
				got.TriggerServiceAccount != tc.want.TriggerServiceAccount || got.JobServiceAccount != tc.want.JobServiceAccount ||
				got.LeaderElectionNamespace != tc.want.LeaderElectionNamespace {
				t.Fatalf("parseFlags = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestLogLevel checks that --log-level filters what the operator logs.
func TestLogLevel(t *testing.T) {
	var out strings.Builder
	o, err := parseFlags([]string{"--image=k", "--log-level=warn"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	o.Logger.Info("routine")
	o.Logger.Error(nil, "broken")
	if got := out.String(); strings.Contains(got, "routine") || !strings.Contains(got, "broken") {
		t.Fatalf("at warn level the log holds %q", got)
	}
}

// TestDebugLevelName checks that --log-level debug shows logr's V(1)
// decisions, named DEBUG rather than slog's DEBUG+3.
func TestDebugLevelName(t *testing.T) {
	var out strings.Builder
	o, err := parseFlags([]string{"--image=k", "--log-level=debug"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	o.Logger.V(1).Info("decision")
	if got := out.String(); !strings.Contains(got, `"level":"DEBUG","msg":"decision"`) {
		t.Fatalf("a V(1) line at debug level reads %q", got)
	}
}

// TestInstallLogger checks that controller-runtime's and klog's globals
// write through the operator's logger: without it, informers print
// "log.SetLogger(...) was never called" with a stack, and leader election
// prints klog text lines among the JSON. controller-runtime's global takes
// its first logger only, so the check runs in a process of its own.
func TestInstallLogger(t *testing.T) {
	if os.Getenv("KEEPSAKE_INSTALL_LOGGER_CHILD") == "1" {
		installLogger(NewLogger(os.Stdout, slog.LevelInfo))
		ctrl.Log.WithName("informer").Info("from controller-runtime")
		klog.InfoS("from klog", "lock", "keepsake-system/lease")
		klog.Flush()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInstallLogger$")
	cmd.Env = append(os.Environ(), "KEEPSAKE_INSTALL_LOGGER_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, want := range []string{`"msg":"from controller-runtime","logger":"informer"`, `"msg":"from klog","lock":"keepsake-system/lease"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("log %q lacks %s", out, want)
		}
	}
	if strings.Contains(string(out), "SetLogger") {
		t.Errorf("controller-runtime complains of no logger: %s", out)
	}
}

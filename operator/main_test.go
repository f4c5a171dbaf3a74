package operator

import (
	"io"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	cases := map[string]struct {
		args    []string // command line after `keepsake operator`
		want    Options  // options it must produce (compared field by field below)
		wantErr string   // error text; "" means none
	}{
		"defaults": {args: []string{"--image=keepsake:dev"},
			want: Options{Image: "keepsake:dev", MetricsBindAddress: ":8080", HealthProbeBindAddress: ":8081", JobServiceAccount: "keepsake-job"}},
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

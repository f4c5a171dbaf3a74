package plugin

import (
	"bytes"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

func TestRestoreTarget(t *testing.T) {
	app := &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: "metrics", Namespace: "demo"}
	cases := map[string]struct {
		appRef  *storagev1alpha1.TypedObjectReference // the Snapshot's appRef
		to      string                                // --to
		want    storagev1alpha1.TypedObjectReference  // the RestoreSession's target
		wantErr string                                // error text; "" means none
	}{
		"the snapshot's own":   {appRef: app, want: *app},
		"a statefulset":        {appRef: app, to: "statefulset/copy", want: storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: "copy"}},
		"a service, any case":  {to: "Service/db", want: storagev1alpha1.TypedObjectReference{Kind: "Service", Name: "db"}},
		"a hyperbytedbcluster": {to: "hyperbytedbcluster/h", want: storagev1alpha1.TypedObjectReference{APIGroup: "hyperbytedb.hyperbyte.cloud", Kind: "HyperbytedbCluster", Name: "h"}},
		"no target at all":     {wantErr: "name a target with --to KIND/NAME"},
		"unknown kind":         {to: "pod/x", wantErr: "want KIND/NAME with KIND one of"},
		"no name":              {to: "statefulset/", wantErr: "want KIND/NAME"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			snap := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: storagev1alpha1.SnapshotSpec{AppRef: tc.appRef}}
			got, err := restoreTarget(snap, tc.to)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("restoreTarget = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestPickSession(t *testing.T) {
	bc := func(names ...string) *corev1alpha1.BackupConfiguration {
		b := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "bc"}}
		for _, n := range names {
			b.Spec.Sessions = append(b.Spec.Sessions, corev1alpha1.Session{Name: n})
		}
		return b
	}
	cases := map[string]struct {
		bc      *corev1alpha1.BackupConfiguration // the configuration
		want    string                            // --session
		got     string                            // session chosen
		wantErr string                            // error text; "" means none
	}{
		"the only one":       {bc: bc("hourly"), got: "hourly"},
		"the one asked for":  {bc: bc("hourly", "daily"), want: "daily", got: "daily"},
		"several, none said": {bc: bc("hourly", "daily"), wantErr: "has sessions hourly, daily: choose one with --session"},
		"unknown":            {bc: bc("hourly"), want: "weekly", wantErr: `has no session "weekly" (it has hourly)`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := pickSession(tc.bc, tc.want)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.got {
				t.Fatalf("pickSession = %q, %v; want %q", got, err, tc.got)
			}
		})
	}
}

// TestUsageErrors checks that a command line the plugin cannot run is one
// line on stderr and exit code 2, before any cluster is contacted.
func TestUsageErrors(t *testing.T) {
	cases := map[string]struct {
		args []string // command line
		want string   // the error line
	}{
		"backup without a name":    {args: []string{"backup"}, want: "error: want one BackupConfiguration name\n"},
		"unknown flag":             {args: []string{"snapshots", "--bogus"}, want: "error: unknown flag: --bogus\n"},
		"restore without snapshot": {args: []string{"restore"}, want: "error: want a Snapshot name, or latest\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(t.Context(), tc.args, &stdout, &stderr)
			if code != 2 || stderr.String() != tc.want {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

func TestGenerateName(t *testing.T) {
	long := strings.Repeat("a", 80)
	if got := generateName(long); len(got)+5 > 63 {
		t.Fatalf("generateName leaves %d characters, and the API server adds 5 to at most 63", len(got))
	}
	if got := generateName("bc-hourly-manual-"); got != "bc-hourly-manual-" {
		t.Fatalf("generateName shortened a short prefix: %q", got)
	}
}

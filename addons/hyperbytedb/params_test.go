package hyperbytedb

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/export"
	"github.com/keepsake-dev/keepsake/addons/sdk"
)

func TestLoadOptions(t *testing.T) {
	tests := map[string]struct {
		params map[string]string  // resolved restore parameters
		want   export.LoadOptions // expected options
		err    string             // expected error substring
	}{
		"defaults": {
			params: map[string]string{ParamMode: "merge"},
			want:   export.LoadOptions{Mode: export.ModeMerge, Rename: map[string]string{}},
		},
		"everything": {
			params: map[string]string{ParamMode: "replace", ParamDatabases: " a, b ,,", ParamBatchSize: "100", ParamDatabaseMapping: "a:x, b : y"},
			want: export.LoadOptions{Mode: export.ModeReplace, Databases: []string{"a", "b"}, BatchSize: 100,
				Rename: map[string]string{"a": "x", "b": "y"}},
		},
		"bad mode":         {params: map[string]string{ParamMode: "overwrite"}, err: `mode: "overwrite" is neither merge nor replace`},
		"bad batch size":   {params: map[string]string{ParamMode: "merge", ParamBatchSize: "0"}, err: "batchSize: \"0\" is not a positive number"},
		"mapping no colon": {params: map[string]string{ParamMode: "merge", ParamDatabaseMapping: "a"}, err: `"a" is not old:new`},
		"mapping twice":    {params: map[string]string{ParamMode: "merge", ParamDatabaseMapping: "a:b,a:c"}, err: `"a" is mapped twice`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := loadOptions(tc.params)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got.Mode != tc.want.Mode || got.BatchSize != tc.want.BatchSize ||
				!slices.Equal(got.Databases, tc.want.Databases) || !maps.Equal(got.Rename, tc.want.Rename) {
				t.Fatalf("got %+v (%v), want %+v", got, err, tc.want)
			}
		})
	}
}

func TestDumpOptionsTimeWindow(t *testing.T) {
	tests := map[string]struct {
		start, end string // startTime and endTime parameters
		err        string // expected error substring, "" for success
	}{
		"none":         {},
		"both":         {start: "2024-01-01T00:00:00Z", end: "2024-01-02T00:00:00.5+02:00"},
		"start only":   {start: "2024-01-01T00:00:00Z"},
		"not RFC 3339": {start: "yesterday", err: `startTime: "yesterday" is not an RFC 3339 time`},
		"empty window": {start: "2024-01-02T00:00:00Z", end: "2024-01-01T00:00:00Z", err: "is not before endTime"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			opts, err := dumpOptions(map[string]string{ParamStartTime: tc.start, ParamEndTime: tc.end})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || opts.Start.IsZero() != (tc.start == "") || opts.End.IsZero() != (tc.end == "") {
				t.Fatalf("options %+v, %v", opts, err)
			}
		})
	}
}

func TestServerURLAndCredentials(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "username"), []byte("admin\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte("s3cret"), 0o400); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		req       sdk.Request // the request
		url       string      // expected server URL
		user, pwd string      // expected credentials
		err       string      // expected error substring
	}{
		"derived from target, no auth": {
			req: sdk.Request{Target: sdk.Target{Name: "db", Namespace: "prod"}},
			url: "http://db.prod.svc:8086",
		},
		"explicit URL and mounted secret": {
			req: sdk.Request{Params: map[string]string{ParamURL: "http://x:1", ParamAuthSecret: "db-auth"},
				Credentials: map[string]string{ParamAuthSecret: dir}},
			url: "http://x:1", user: "admin", pwd: "s3cret",
		},
		"secret named but not mounted": {
			req: sdk.Request{Params: map[string]string{ParamURL: "http://x:1", ParamAuthSecret: "db-auth"}},
			err: `authSecret "db-auth" is set but not mounted`,
		},
		"no URL and no target": {
			req: sdk.Request{},
			err: "parameter url is not set",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			url, err := serverURL(tc.req)
			var user, pwd string
			if err == nil {
				user, pwd, err = credentials(tc.req)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || url != tc.url || user != tc.user || pwd != tc.pwd {
				t.Fatalf("got %q %q %q (%v)", url, user, pwd, err)
			}
		})
	}
}

package hyperbytedb

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/export"
	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// Parameter names, shared by the driver's Info and the Addon manifest.
const (
	ParamURL             = "url"
	ParamAuthSecret      = "authSecret"
	ParamDatabases       = "databases"
	ParamStartTime       = "startTime"
	ParamEndTime         = "endTime"
	ParamBatchSize       = "batchSize"
	ParamMode            = "mode"
	ParamDatabaseMapping = "databaseMapping"
)

// parameters are the parameters the driver declares; see its Info.
var parameters = []sdk.Parameter{
	{Name: ParamURL, Usage: "InfluxDB v1 API base URL; default http://<target>.<namespace>.svc:8086"},
	{Name: ParamAuthSecret, Usage: "Secret with username and password keys, mounted as credential authSecret"},
	{Name: ParamDatabases, Usage: "comma-separated databases; default all but _internal (on restore: all in the backup)"},
	{Name: ParamStartTime, Usage: "backup: only points at or after this RFC 3339 time"},
	{Name: ParamEndTime, Usage: "backup: only points before this RFC 3339 time"},
	{Name: ParamBatchSize, Usage: "restore: points per write request", Default: strconv.Itoa(export.DefaultBatchSize)},
	{Name: ParamMode, Usage: "restore: merge keeps existing points, replace drops restored databases first", Default: string(export.ModeMerge)},
	{Name: ParamDatabaseMapping, Usage: "restore: rename databases, old:new,old2:new2"},
}

// serverURL returns the url parameter, or the target's in-cluster Service
// address.
func serverURL(req sdk.Request) (string, error) {
	if u := req.Params[ParamURL]; u != "" {
		return u, nil
	}
	t := req.Target
	if t.Name == "" || t.Namespace == "" {
		return "", fmt.Errorf("parameter %s is not set and the target has no name and namespace to derive it from", ParamURL)
	}
	return fmt.Sprintf("http://%s.%s.svc:8086", t.Name, t.Namespace), nil
}

// credentials reads username and password from the mounted authSecret,
// a directory with one file per key as Kubernetes mounts a Secret. No
// authSecret means no authentication.
func credentials(req sdk.Request) (user, pass string, err error) {
	dir, mounted := req.Credentials[ParamAuthSecret]
	if !mounted {
		if name := req.Params[ParamAuthSecret]; name != "" {
			return "", "", fmt.Errorf("authSecret %q is set but not mounted as credential %s", name, ParamAuthSecret)
		}
		return "", "", nil
	}
	u, err := os.ReadFile(filepath.Join(dir, "username"))
	if err != nil {
		return "", "", fmt.Errorf("read authSecret: %w", err)
	}
	p, err := os.ReadFile(filepath.Join(dir, "password"))
	if err != nil {
		return "", "", fmt.Errorf("read authSecret: %w", err)
	}
	return strings.TrimRight(string(u), "\r\n"), strings.TrimRight(string(p), "\r\n"), nil
}

// timeWindow parses startTime and endTime; either may be empty.
func timeWindow(params map[string]string) (start, end time.Time, err error) {
	for name, dst := range map[string]*time.Time{ParamStartTime: &start, ParamEndTime: &end} {
		if v := params[name]; v != "" {
			if *dst, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return start, end, fmt.Errorf("%s: %q is not an RFC 3339 time", name, v)
			}
		}
	}
	if !start.IsZero() && !end.IsZero() && !start.Before(end) {
		return start, end, fmt.Errorf("%s %s is not before %s %s", ParamStartTime, params[ParamStartTime], ParamEndTime, params[ParamEndTime])
	}
	return start, end, nil
}

// dumpOptions turns backup parameters into export options.
func dumpOptions(params map[string]string) (export.DumpOptions, error) {
	start, end, err := timeWindow(params)
	if err != nil {
		return export.DumpOptions{}, err
	}
	return export.DumpOptions{Databases: sdk.List(params[ParamDatabases]), Start: start, End: end}, nil
}

// loadOptions turns restore parameters into export options.
func loadOptions(params map[string]string) (export.LoadOptions, error) {
	opts := export.LoadOptions{Mode: export.Mode(params[ParamMode]), Databases: sdk.List(params[ParamDatabases])}
	if opts.Mode != export.ModeMerge && opts.Mode != export.ModeReplace {
		return opts, fmt.Errorf("%s: %q is neither merge nor replace", ParamMode, params[ParamMode])
	}
	if v := params[ParamBatchSize]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return opts, fmt.Errorf("%s: %q is not a positive number", ParamBatchSize, v)
		}
		opts.BatchSize = n
	}
	var err error
	opts.Rename, err = sdk.Mapping(ParamDatabaseMapping, params[ParamDatabaseMapping])
	return opts, err
}

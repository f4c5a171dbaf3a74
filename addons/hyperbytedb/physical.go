package hyperbytedb

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/export"
	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/physical"
	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// Parameters of the physical tasks.
const (
	// ParamFormat is logical (the default: a dump over the HTTP API) or
	// physical (the server's files, see physicalBackup).
	ParamFormat = "format"
	// ParamRPCAddress is the host:port of influxd's RPC service, which
	// `influxd backup` reads from.
	ParamRPCAddress = "rpcAddress"
	// ParamTargetDir is where the offline restore Job mounts the stopped
	// pod's PVC; meta, data and wal below it are the server's directories.
	ParamTargetDir = "targetDir"
	// ParamInfluxd is the path of the influxd binary in the Function's image.
	ParamInfluxd = "influxd"
	// ParamTool is the server's own backup command the physical format
	// runs: influxd (InfluxDB 1.x, the default) or hyperbytedb
	// (HyperbyteDB's, see hyperbytedbBackup).
	ParamTool = "tool"
	// ParamHyperbytedb is the path of the hyperbytedb binary in the
	// Function's image.
	ParamHyperbytedb = "hyperbytedb"
)

// Tools of ParamTool.
const (
	ToolInfluxd     = "influxd"
	ToolHyperbytedb = "hyperbytedb"
)

// Formats of ParamFormat.
const (
	FormatLogical  = "logical"
	FormatPhysical = "physical"
)

// physicalParameters are declared in the driver's Info with the others.
var physicalParameters = []sdk.Parameter{
	{Name: ParamFormat, Usage: "logical (a dump over the HTTP API) or physical (the server's files; restore offline)", Default: FormatLogical},
	{Name: ParamRPCAddress, Usage: "physical backup: influxd's RPC host:port; default the url's host, port 8088"},
	{Name: ParamTargetDir, Usage: "physical: where the operator mounts the target's PVC (read-only for a hyperbytedb backup)", Default: "/keepsake/target"},
	{Name: ParamInfluxd, Usage: "physical: path of influxd in the image", Default: "influxd"},
	{Name: ParamTool, Usage: "physical: the server's backup command, influxd or hyperbytedb", Default: ToolInfluxd},
	{Name: ParamHyperbytedb, Usage: "physical with tool hyperbytedb: path of hyperbytedb in the image", Default: "hyperbytedb"},
}

// physicalBackup runs influxd backup (legacy format) of the selected
// databases, staged in TMPDIR (the Job's scratch volume: influxd backup
// writes only files), and streams them as a deterministic tar to w.
func physicalBackup(ctx context.Context, req *sdk.BackupRequest, w io.Writer) error {
	tool, err := physicalTool(req.Params)
	if err != nil {
		return err
	}
	if tool == ToolHyperbytedb {
		return hyperbytedbBackup(ctx, req, w)
	}
	c, err := client(ctx, req.Request)
	if err != nil {
		return err
	}
	dbs, err := export.SelectDatabases(ctx, c, sdk.List(req.Params[ParamDatabases]))
	if err != nil {
		return err
	}
	host, err := rpcAddress(req.Request)
	if err != nil {
		return err
	}
	staging, err := os.MkdirTemp("", "physical-backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	x := physical.Influxd{Bin: req.Params[ParamInfluxd], Log: os.Stderr}
	if err := x.Backup(ctx, host, dbs, staging, w); err != nil {
		return fmt.Errorf("physical backup: %w", err)
	}
	sdk.Logger().Info("physical backup", "databases", dbs)
	return nil
}

// physicalRestore writes a physical backup into the stopped server's
// directories below targetDir. It never talks to the server, which is not
// running.
func physicalRestore(ctx context.Context, req *sdk.RestoreRequest, r io.Reader) error {
	dir := req.Params[ParamTargetDir]
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%s %q is not a directory: a physical restore runs in an offline restore Job, with the PVC mounted there", ParamTargetDir, dir)
	}
	tool, err := physicalTool(req.Params)
	if err != nil {
		return err
	}
	staging, err := os.MkdirTemp("", "physical-restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	if tool == ToolHyperbytedb {
		return hyperbytedbRestore(ctx, req, r, staging)
	}
	x := physical.Influxd{Bin: req.Params[ParamInfluxd], Log: os.Stderr}
	dbs, err := x.Restore(ctx, r, staging, physical.Dirs{
		Meta: filepath.Join(dir, "meta"), Data: filepath.Join(dir, "data"), WAL: filepath.Join(dir, "wal"),
	})
	if err != nil {
		return fmt.Errorf("physical restore: %w", err)
	}
	sdk.Logger().Info("physical restore", "databases", dbs, "dir", dir)
	return nil
}

// hyperbytedbBackup runs HyperbyteDB's own `hyperbytedb backup` on the
// server's directories below targetDir, where the backup Job mounts pod
// 0's PVC read-only (the task's mountsTargetVolume): the command opens
// the RocksDB directories itself, so it runs beside the files, as the
// HyperbyteDB operator's backup Job does. Its output is staged in TMPDIR
// (the Job's scratch volume: the command writes only files) and streamed
// as a deterministic tar to w.
func hyperbytedbBackup(ctx context.Context, req *sdk.BackupRequest, w io.Writer) error {
	dir := req.Params[ParamTargetDir]
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%s %q is not a directory: a backup with tool hyperbytedb runs in a Job that mounts the target's PVC there (a task with mountsTargetVolume)", ParamTargetDir, dir)
	}
	staging, err := os.MkdirTemp("", "physical-backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	x := hyperbytedbTool(req.Params, dir)
	if err := x.Backup(ctx, staging, w); err != nil {
		return fmt.Errorf("physical backup: %w", err)
	}
	sdk.Logger().Info("physical backup", "tool", ToolHyperbytedb, "dir", dir)
	return nil
}

// hyperbytedbRestore restores a hyperbytedbBackup stream into the stopped
// server's directories below targetDir with `hyperbytedb restore`.
func hyperbytedbRestore(ctx context.Context, req *sdk.RestoreRequest, r io.Reader, staging string) error {
	dir := req.Params[ParamTargetDir]
	if err := hyperbytedbTool(req.Params, dir).Restore(ctx, r, staging); err != nil {
		return fmt.Errorf("physical restore: %w", err)
	}
	sdk.Logger().Info("physical restore", "tool", ToolHyperbytedb, "dir", dir)
	return nil
}

// hyperbytedbTool runs the hyperbytedb parameter's binary on HyperbyteDB's
// directories below dir, laid out as the HyperbyteDB operator lays out a
// PVC (physical.HyperbytedbLayout).
func hyperbytedbTool(params map[string]string, dir string) physical.Hyperbytedb {
	bin := params[ParamHyperbytedb]
	if bin == "" {
		bin = ToolHyperbytedb
	}
	return physical.Hyperbytedb{Bin: bin, Dirs: physical.HyperbytedbLayout.Below(dir), Log: os.Stderr}
}

// physicalTool is the tool parameter: influxd when unset.
func physicalTool(params map[string]string) (string, error) {
	switch t := params[ParamTool]; t {
	case "", ToolInfluxd:
		return ToolInfluxd, nil
	case ToolHyperbytedb:
		return t, nil
	default:
		return "", fmt.Errorf("%s: %q is neither %s nor %s", ParamTool, t, ToolInfluxd, ToolHyperbytedb)
	}
}

// rpcAddress is the rpcAddress parameter, or the url's host at port 8088.
func rpcAddress(req sdk.Request) (string, error) {
	if a := req.Params[ParamRPCAddress]; a != "" {
		return a, nil
	}
	raw, err := serverURL(req)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("%s: cannot derive influxd's RPC address from url %q: set it", ParamRPCAddress, raw)
	}
	return net.JoinHostPort(u.Hostname(), "8088"), nil
}

// isPhysical reports whether the request asks for the physical format.
func isPhysical(params map[string]string) (bool, error) {
	switch f := params[ParamFormat]; f {
	case "", FormatLogical:
		return false, nil
	case FormatPhysical:
		return true, nil
	default:
		return false, fmt.Errorf("%s: %q is neither %s nor %s", ParamFormat, f, FormatLogical, FormatPhysical)
	}
}

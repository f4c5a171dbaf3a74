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
	{Name: ParamTargetDir, Usage: "physical restore: the stopped pod's PVC, holding meta, data and wal", Default: "/keepsake/target"},
	{Name: ParamInfluxd, Usage: "physical: path of influxd in the image", Default: "influxd"},
}

// physicalBackup runs influxd backup (legacy format) of the selected
// databases, staged in TMPDIR (the Job's scratch volume: influxd backup
// writes only files), and streams them as a deterministic tar to w.
func physicalBackup(ctx context.Context, req *sdk.BackupRequest, w io.Writer) error {
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
	staging, err := os.MkdirTemp("", "physical-restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
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

// Package hyperbytedb is Keepsake's driver for HyperbyteDB. In logical mode
// it dumps databases over the InfluxDB v1 HTTP API (which HyperbyteDB
// speaks, and so does InfluxDB 1.x) into the InfluxDB export format, and
// loads such dumps back; in physical mode (physical.go) it copies the
// server's files and restores them offline. The driver binary is
// cmd/hyperbytedb-driver; the Addon and Function manifests are in
// manifests/.
package hyperbytedb

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/export"
	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/influx"
	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// Name and Version identify the driver.
const (
	Name    = "hyperbytedb"
	Version = "0.1.0"
)

// Driver implements sdk.Driver.
type Driver struct{}

var _ sdk.Driver = Driver{}

// Info implements sdk.Driver.
func (Driver) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:         Name,
		Version:      Version,
		Parameters:   append(slices.Clone(parameters), physicalParameters...),
		Capabilities: []sdk.Capability{sdk.CapabilityBackup, sdk.CapabilityRestore},
	}, nil
}

// Backup implements sdk.Driver: a logical dump of the selected databases,
// or with format physical their files (physicalBackup).
func (Driver) Backup(ctx context.Context, req *sdk.BackupRequest, w io.Writer) error {
	if phys, err := isPhysical(req.Params); err != nil || phys {
		if err != nil {
			return err
		}
		return physicalBackup(ctx, req, w)
	}
	opts, err := dumpOptions(req.Params)
	if err != nil {
		return err
	}
	c, err := client(ctx, req.Request)
	if err != nil {
		return err
	}
	counter := export.NewCounter(w)
	if err := export.Dump(ctx, c, opts, counter); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	req.SetCounts(sdkCounts(counter.Counts()))
	return nil
}

// Restore implements sdk.Driver: loads a dump made by Backup, and says
// which databases it restored and how many points; with format physical
// it writes the backup's files offline instead (physicalRestore).
func (Driver) Restore(ctx context.Context, req *sdk.RestoreRequest, r io.Reader) (sdk.Restored, error) {
	if phys, err := isPhysical(req.Params); err != nil || phys {
		if err != nil {
			return sdk.Restored{}, err
		}
		return sdk.Restored{}, physicalRestore(ctx, req, r)
	}
	opts, err := loadOptions(req.Params)
	if err != nil {
		return sdk.Restored{}, err
	}
	c, err := client(ctx, req.Request)
	if err != nil {
		return sdk.Restored{}, err
	}
	stats, err := export.Load(ctx, c, opts, r)
	if err != nil {
		return sdk.Restored{}, fmt.Errorf("restore after %d points: %w", stats.Points, err)
	}
	sdk.Logger().Info("restored", "databases", len(stats.Databases), "points", stats.Points, "skippedPoints", stats.Skipped)
	return restored(stats), nil
}

// restored is what Restore tells the host: the databases and their points.
func restored(stats export.LoadStats) sdk.Restored {
	return sdk.Restored{
		ObjectKind: "databases",
		Objects:    stats.Databases,
		Items:      map[string]uint64{"points": uint64(stats.Points)},
	}
}

// client connects to the server and checks it answers, so a wrong URL
// fails before any stream starts.
func client(ctx context.Context, req sdk.Request) (*influx.Client, error) {
	url, err := serverURL(req)
	if err != nil {
		return nil, err
	}
	user, pass, err := credentials(req)
	if err != nil {
		return nil, err
	}
	c, err := influx.New(url, user, pass)
	if err != nil {
		return nil, err
	}
	if err := c.Ping(ctx); err != nil {
		return nil, fmt.Errorf("ping %s: %w", url, err)
	}
	return c, nil
}

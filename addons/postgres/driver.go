// Package postgres is the PostgreSQL addon's driver: a logical backup of a
// server with its own client tools, `pg_dumpall --globals-only` for roles
// and tablespaces and `pg_dump` of each database as plain SQL, streamed
// without scratch space into one framed dump; a restore loads it back with
// psql into the same or renamed databases. See docs/addons/postgres.md.
package postgres

import (
	"context"
	"io"

	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// Driver runs pg_dumpall, pg_dump and psql from PATH.
type Driver struct{}

var _ sdk.Driver = Driver{}

// Info implements sdk.Driver.
func (Driver) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:         "postgres",
		Version:      "0.1.0",
		Parameters:   parameters,
		Capabilities: []sdk.Capability{sdk.CapabilityBackup, sdk.CapabilityRestore},
	}, nil
}

// Backup implements sdk.Driver: the globals, then every selected database,
// in name order.
func (Driver) Backup(ctx context.Context, req *sdk.BackupRequest, w io.Writer) error {
	c, err := connection(req.Request)
	if err != nil {
		return err
	}
	all, err := listDatabases(ctx, c)
	if err != nil {
		return err
	}
	dbs, err := selectDatabases(all, sdk.List(req.Params[ParamDatabases]))
	if err != nil {
		return err
	}
	names := make([]string, len(dbs))
	for i, db := range dbs {
		names[i] = db.Name
	}
	sdk.Logger().Info("dumping globals and databases", "databases", names)
	return dump(ctx, c, dbs, w)
}

// Restore implements sdk.Driver.
func (Driver) Restore(ctx context.Context, req *sdk.RestoreRequest, r io.Reader) (sdk.Restored, error) {
	c, err := connection(req.Request)
	if err != nil {
		return sdk.Restored{}, err
	}
	opts, err := parseRestoreOptions(req.Params)
	if err != nil {
		return sdk.Restored{}, err
	}
	dbs, err := restore(ctx, c, opts, r)
	if err != nil {
		return sdk.Restored{}, err
	}
	return sdk.Restored{ObjectKind: "databases", Objects: dbs}, nil
}

package hyperbytedb

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// TestPhysicalDriver goes through the driver's physical format as the
// runtime calls it: a backup selecting by the databases parameter, a
// restore into targetDir of the stopped server, the server started again.
func TestPhysicalDriver(t *testing.T) {
	ctx := context.Background()
	db := servers.StartInfluxDB(t)
	api := hyperbytedbtest.Server{URL: db.URL}
	hyperbytedbtest.Mixed(time.Now()).Write(t, api)
	want := hyperbytedbtest.ReadContents(t, api)
	influxd := servers.Bin(t, "influxd")
	params := map[string]string{ParamFormat: FormatPhysical, ParamURL: db.URL, ParamRPCAddress: db.RPCAddr(t), ParamInfluxd: influxd}

	var stream bytes.Buffer
	if err := (Driver{}).Backup(ctx, &sdk.BackupRequest{Request: sdk.Request{Params: params}}, &stream); err != nil {
		t.Fatal(err)
	}
	api.Exec(t, `DROP DATABASE "metrics"`)
	db.Stop()
	restore := &sdk.RestoreRequest{Request: sdk.Request{Params: map[string]string{
		ParamFormat: FormatPhysical, ParamTargetDir: db.Dir, ParamInfluxd: influxd,
	}}}
	if _, err := (Driver{}).Restore(ctx, restore, &stream); err != nil {
		t.Fatal(err)
	}
	back := servers.StartInfluxDBIn(t, db.Dir)
	if d := hyperbytedbtest.Diff(want, hyperbytedbtest.ReadContents(t, hyperbytedbtest.Server{URL: back.URL}), 10); d != "" {
		t.Errorf("after the physical restore:\n%s", d)
	}
}

// TestPhysicalParams checks the physical parameters' errors and defaults.
func TestPhysicalParams(t *testing.T) {
	ctx := context.Background()
	_, err := (Driver{}).Restore(ctx, &sdk.RestoreRequest{Request: sdk.Request{Params: map[string]string{
		ParamFormat: FormatPhysical, ParamTargetDir: "/no/such/dir", ParamInfluxd: "influxd",
	}}}, strings.NewReader(""))
	if err == nil || !strings.Contains(err.Error(), "offline restore Job") {
		t.Errorf("restore into a missing targetDir: %v, want an error naming the offline restore", err)
	}
	err = (Driver{}).Backup(ctx, &sdk.BackupRequest{Request: sdk.Request{Params: map[string]string{ParamFormat: "raw"}}}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `"raw" is neither logical nor physical`) {
		t.Errorf("format raw: %v", err)
	}
	got, err := rpcAddress(sdk.Request{Target: sdk.Target{Name: "tsdb", Namespace: "prod"}, Params: map[string]string{}})
	if err != nil || got != "tsdb.prod.svc:8088" {
		t.Errorf("default rpcAddress = %q, %v; want tsdb.prod.svc:8088", got, err)
	}
}

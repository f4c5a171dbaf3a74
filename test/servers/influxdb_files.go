package servers

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// bindAddress is the RPC bind address line influxConf writes first.
var bindAddress = regexp.MustCompile(`(?m)^bind-address = "([^"]+)"$`)

// RPCAddr is the address of the server's RPC service (the top-level
// bind-address of its config, a free loopback port), which `influxd backup
// -host` talks to.
func (s *InfluxDB) RPCAddr(t testing.TB) string {
	t.Helper()
	conf, err := os.ReadFile(filepath.Join(s.Dir, "influxdb.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m := bindAddress.FindSubmatch(conf)
	if m == nil {
		t.Fatalf("influxdb.conf has no top-level bind-address:\n%s", conf)
	}
	return string(m[1])
}

// StartInfluxDBIn starts influxd, without authentication, on the files of
// dir: dir/meta, dir/data and dir/wal, the layout of the official image's
// /var/lib/influxdb. Tests start it on a directory an offline restore
// wrote, as a pod would start on its restored PVC.
func StartInfluxDBIn(t testing.TB, dir string) *InfluxDB {
	t.Helper()
	SkipIfShort(t, "InfluxDB")
	httpAddr, rpcAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	conf := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(conf, []byte(influxConf(dir, httpAddr, rpcAddr, false)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &InfluxDB{URL: "http://" + httpAddr, Dir: dir, exited: make(chan struct{})}
	s.start(t, conf)
	t.Cleanup(s.Stop)
	if err := s.waitReady(influxStartLimit); err != nil {
		t.Fatalf("influxd: %v\n%s", err, s.logTail())
	}
	return s
}

// Package bench holds Keepsake's benchmarks. The driver benchmarks
// (driver_*.go) compare the HyperbyteDB driver and the runtime with the
// tools they must keep up with, measured in the same run on the same data,
// and fail when a ratio misses its target (docs/performance.md):
//
//	go test -run '^$' -bench BenchmarkDriver -benchtime 1x -timeout 60m ./test/bench/
//
// KEEPSAKE_BENCH_POINTS (default 1000000) sizes the datasets,
// KEEPSAKE_BENCH_GEN_MIB (default 1024) the plugin-boundary payload,
// KEEPSAKE_BENCH_RSS_POINTS (default 5000000) the peak-RSS dataset, and
// KEEPSAKE_BENCH_RELEASE (default 9f343e2) the commit whose driver the
// dump is compared with.
package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/test/servers"
)

const mib = 1 << 20

// The targets (issue 10), as ratios measured in one run.
const (
	targetPluginXRestic  = 4.0 // plugin boundary alone, against restic
	targetBackupXRestic  = 0.9 // keepsake run backup, against restic backup --stdin of the dump
	targetCPUPerMPoints  = 0.5 // CPU-seconds of the runtime and the driver per million points backed up
	targetDumpXCurl      = 0.7 // dump, against curl of the same SELECTs
	targetDumpXRelease   = 0.8 // dump, against the release's driver
	targetRestoreXImport = 1.0 // keepsake run restore, against influx -import of the dump
)

// shapes are the datasets every target holds on: the earlier benchmark's
// (10 series, a point a second: long series, one time bucket holds 3600
// points) and issue 10's (500 series at 10-minute steps sharing
// timestamps: short series, many per bucket).
func shapes(points int) map[string]hyperbytedbtest.Bulk {
	return map[string]hyperbytedbtest.Bulk{
		"series=10":  {DB: "bench", N: points, Series: 10},
		"series=500": {DB: "bench", N: points, Series: 500, Step: 10 * time.Minute},
	}
}

// BenchmarkDriver measures the plugin boundary and the runtime with a
// generated source, then on each dataset shape an end-to-end backup (time
// and CPU), a dump and a restore, each as a ratio to its reference.
func BenchmarkDriver(b *testing.B) {
	tools := newDriverTools(b)
	b.Run("plugin-vs-restic", tools.benchPlugin)
	b.Run("runtime-vs-restic", tools.benchRuntime)
	points := envInt(b, "KEEPSAKE_BENCH_POINTS", 1_000_000)
	for _, name := range []string{"series=10", "series=500"} {
		b.Run(name, func(b *testing.B) {
			e := tools.withData(b, shapes(points)[name])
			dump := filepath.Join(e.dir, "dump-"+name+".txt")
			e.dumpTo(b, dump)
			if fi, err := os.Stat(dump); err == nil {
				b.Logf("dump of %s: %.1f MiB", name, float64(fi.Size())/mib)
			}
			b.Run("backup-vs-restic", func(b *testing.B) { e.benchBackup(b, dump) })
			b.Run("dump-vs-curl-and-release", e.benchDump)
			b.Run("restore-vs-influx-import", func(b *testing.B) { e.benchRestore(b, dump) })
		})
	}
}

// figures reports a sub-benchmark's metrics and checks its targets once
// all are reported (finish, deferred). A failed benchmark prints no
// metrics line, so a missed target names every figure.
type figures struct {
	b      *testing.B
	list   []string
	missed []string
}

func newFigures(b *testing.B) *figures { return &figures{b: b} }

func (f *figures) report(v float64, unit string) {
	f.b.ReportMetric(v, unit)
	f.list = append(f.list, fmt.Sprintf("%.4g %s", v, unit))
}

// atLeast reports a ratio that must not be below its target.
func (f *figures) atLeast(got, target float64, unit string) {
	f.report(got, unit)
	if got < target {
		f.missed = append(f.missed, fmt.Sprintf("%s = %.3f, below the target %.2f", unit, got, target))
	}
}

// atMost reports a cost that must not be above its target.
func (f *figures) atMost(got, target float64, unit string) {
	f.report(got, unit)
	if got > target {
		f.missed = append(f.missed, fmt.Sprintf("%s = %.3f, above the target %.2f", unit, got, target))
	}
}

// finish fails the benchmark for every missed target, naming all figures;
// after a fatal error it adds nothing.
func (f *figures) finish() {
	if f.b.Failed() {
		return
	}
	for _, m := range f.missed {
		f.b.Errorf("%s (%s)", m, strings.Join(f.list, ", "))
	}
}

// dumpTo writes the driver's dump of database bench to path.
func (e *driverEnv) dumpTo(b *testing.B, path string) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	c := e.open(b, e.bin["hyperbytedb-driver"])
	if _, err := c.Backup(context.Background(), e.dumpRequest(), f); err != nil {
		b.Fatal(err)
	}
}

func (e *driverEnv) open(b *testing.B, binary string) *sdk.Client {
	b.Helper()
	c, err := sdk.Open(context.Background(), binary, sdk.WithLogOutput(io.Discard))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

func (e *driverEnv) dumpRequest() *sdk.BackupRequest {
	return &sdk.BackupRequest{Request: sdk.Request{
		Params:    map[string]string{"url": e.influx.URL, "databases": e.data.DB},
		Component: "dump",
	}}
}

// benchPlugin: a driver streaming generated bytes to a host that discards
// them, against `restic backup --stdin` of the same bytes.
func (e *driverEnv) benchPlugin(b *testing.B) {
	f := newFigures(b)
	defer f.finish()
	size := int64(envInt(b, "KEEPSAKE_BENCH_GEN_MIB", 1024)) * mib
	var plugin, raw time.Duration
	for i := range b.N {
		c := e.open(b, e.bin["driver_gen"])
		req := &sdk.BackupRequest{Request: sdk.Request{Params: map[string]string{
			"size": strconv.FormatInt(size, 10), "seed": strconv.Itoa(i + 1)}}}
		start := time.Now()
		if res, err := c.Backup(context.Background(), req, io.Discard); err != nil || int64(res.Bytes) != size {
			b.Fatalf("plugin stream: %d bytes, %v", res.Bytes, err)
		}
		plugin += time.Since(start)
		c.Close()
		cfg, _ := e.newRepo(b)
		raw += rawBackup(b, cfg, payload(int64(i+1), size))
	}
	pluginMBps := float64(size) * float64(b.N) / mib / plugin.Seconds()
	resticMBps := float64(size) * float64(b.N) / mib / raw.Seconds()
	f.report(pluginMBps, "plugin-MiB/s")
	f.report(resticMBps, "restic-MiB/s")
	f.atLeast(pluginMBps/resticMBps, targetPluginXRestic, "x-restic")
}

// benchRuntime: `keepsake run backup` with the generating driver against
// `restic backup --stdin` of the same bytes: the runtime's own cost, with
// a source that is never the bottleneck (no target: the backup's covers
// it).
func (e *driverEnv) benchRuntime(b *testing.B) {
	f := newFigures(b)
	defer f.finish()
	size := int64(envInt(b, "KEEPSAKE_BENCH_GEN_MIB", 1024)) * mib
	var keepsake, raw time.Duration
	for i := range b.N {
		seed := strconv.Itoa(100 + i)
		cfg, dir := e.newRepo(b)
		keepsake += e.keepsakeRun(b, "backup", cfg, dir, "driver_gen", nil, "size="+strconv.FormatInt(size, 10), "seed="+seed)
		cfg, _ = e.newRepo(b)
		raw += rawBackup(b, cfg, payload(int64(100+i), size))
	}
	f.report(keepsake.Seconds()/float64(b.N), "keepsake-s")
	f.report(raw.Seconds()/float64(b.N), "restic-s")
	f.report(raw.Seconds()/keepsake.Seconds(), "x-restic")
}

// benchBackup: `keepsake run backup` (dump, plugin, fan-out, restic)
// against `restic backup --stdin` of the same dump bytes from a file, and
// the CPU time of the runtime and the driver (restic's not counted) per
// million points. A backup cannot be faster than the database can be read
// either, so it also reports the time against the slower of restic and
// curl's SELECT (how well the stages overlap).
func (e *driverEnv) benchBackup(b *testing.B, dump string) {
	f := newFigures(b)
	defer f.finish()
	var keepsake, raw, curl, runtimeCPU, driverCPU time.Duration
	for range b.N {
		curl += e.curlSelect(b, "bulk")
		cfg, dir := e.newRepo(b)
		var w cpuWatch
		took := e.keepsakeBackup(b, cfg, dir, func(pid int) func() { return watchCPU(&w, pid, "hyperbytedb-dri") })
		if w.runtime == 0 || w.driver == 0 {
			b.Fatalf("no CPU reading of the runtime (%s) or the driver (%s)", w.runtime, w.driver)
		}
		keepsake += took
		runtimeCPU, driverCPU = runtimeCPU+w.runtime, driverCPU+w.driver
		file, err := os.Open(dump)
		if err != nil {
			b.Fatal(err)
		}
		cfg, _ = e.newRepo(b)
		raw += rawBackup(b, cfg, file)
		file.Close()
	}
	mpoints := float64(e.data.N) * float64(b.N) / 1e6
	f.report(runtimeCPU.Seconds()/mpoints, "runtime-cpu-s/Mpoints")
	f.report(driverCPU.Seconds()/mpoints, "driver-cpu-s/Mpoints")
	f.report(keepsake.Seconds()/float64(b.N), "keepsake-s")
	f.report(raw.Seconds()/float64(b.N), "restic-s")
	f.report(curl.Seconds()/float64(b.N), "curl-s")
	f.report(max(raw, curl).Seconds()/keepsake.Seconds(), "x-slowest-stage")
	f.atLeast(raw.Seconds()/keepsake.Seconds(), targetBackupXRestic, "x-restic")
	f.atMost((runtimeCPU+driverCPU).Seconds()/mpoints, targetCPUPerMPoints, "cpu-s/Mpoints")
}

// benchDump: the driver's dump through the plugin into a discarding host,
// against curl reading one chunked SELECT * with epoch=ns into /dev/null
// (the source's ceiling), and against the release's driver doing the same
// dump, which must write the same bytes.
func (e *driverEnv) benchDump(b *testing.B) {
	f := newFigures(b)
	defer f.finish()
	release, commit := e.releaseDriver(b)
	var driver, old, curl time.Duration
	for range b.N {
		took, sum := e.timeDump(b, e.bin["hyperbytedb-driver"])
		driver += took
		took, oldSum := e.timeDump(b, release)
		old += took
		if sum != oldSum {
			// Dedup across the upgrade depends on the same bytes.
			b.Errorf("the dump differs from the release's (%s) on unchanged data", commit)
		}
		curl += e.curlSelect(b, "bulk")
	}
	points := float64(e.data.N * b.N)
	f.report(points/driver.Seconds(), "driver-points/s")
	f.report(points/old.Seconds(), "release-points/s")
	f.report(points/curl.Seconds(), "curl-points/s")
	f.atLeast(curl.Seconds()/driver.Seconds(), targetDumpXCurl, "x-curl")
	f.atLeast(old.Seconds()/driver.Seconds(), targetDumpXRelease, "x-release")
	b.Logf("release: %s", commit)
}

// timeDump runs one dump of the dataset with the given driver binary into
// a host that only hashes it.
func (e *driverEnv) timeDump(b *testing.B, binary string) (time.Duration, [sha256.Size]byte) {
	b.Helper()
	c := e.open(b, binary)
	defer c.Close()
	h := sha256.New()
	start := time.Now()
	if _, err := c.Backup(context.Background(), e.dumpRequest(), h); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	return took, [sha256.Size]byte(h.Sum(nil))
}

func (e *driverEnv) curlSelect(b *testing.B, measurements ...string) time.Duration {
	b.Helper()
	start := time.Now()
	for _, m := range measurements {
		out, err := exec.Command("curl", "-sS", "--fail", "-o", "/dev/null", "-G", e.influx.URL+"/query",
			"--data-urlencode", "db="+e.data.DB, "--data-urlencode", `q=SELECT * FROM "`+e.data.DB+`"."autogen"."`+m+`"`,
			"--data-urlencode", "epoch=ns", "--data-urlencode", "chunked=true").CombinedOutput()
		if err != nil {
			b.Fatalf("curl: %v\n%s", err, out)
		}
	}
	return time.Since(start)
}

// benchRestore: `keepsake run restore` of a backup of the dataset (restic
// dump, plugin, driver) into an empty server, against `influx -import
// -path FILE -precision ns` of the same dump, from a file, into another.
func (e *driverEnv) benchRestore(b *testing.B, dump string) {
	f := newFigures(b)
	defer f.finish()
	cfg, dir := e.newRepo(b)
	e.keepsakeBackup(b, cfg, dir, nil)
	var keepsake, influx time.Duration
	for range b.N {
		mine, theirs := servers.StartInfluxDB(b), servers.StartInfluxDB(b)
		keepsake += e.keepsakeRun(b, "restore", cfg, dir, "hyperbytedb-driver", nil, "url="+mine.URL)
		influx += influxImport(b, theirs, dump)
		for _, s := range []*servers.InfluxDB{mine, theirs} {
			if n := countPoints(b, s.URL, e.data.DB); n != e.data.N {
				b.Fatalf("server %s holds %d points after restore, want %d", s.URL, n, e.data.N)
			}
			s.Stop()
		}
	}
	points := float64(e.data.N * b.N)
	f.report(points/keepsake.Seconds(), "keepsake-points/s")
	f.report(points/influx.Seconds(), "influx-import-points/s")
	f.atLeast(influx.Seconds()/keepsake.Seconds(), targetRestoreXImport, "x-influx-import")
}

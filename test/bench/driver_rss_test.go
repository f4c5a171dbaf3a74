package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/test/servers"
)

// BenchmarkDriverPeakRSS backs up a database of n points, then of 2n, with
// `keepsake run backup` and reports the peak resident memory of the
// runtime and of the driver (target: each < 64 MiB, and no larger at 2n).
func BenchmarkDriverPeakRSS(b *testing.B) {
	const (
		targetPeakMiB    = 64   // each of the runtime and the driver
		targetPeakGrowth = 1.05 // "flat": at 2n within 5% of n
	)
	n := envInt(b, "KEEPSAKE_BENCH_RSS_POINTS", 5_000_000)
	var runtime, driver [2]float64
	for i, points := range []int{n, 2 * n} {
		b.Run(fmt.Sprintf("points=%d", points), func(b *testing.B) {
			e := newDriverEnv(b, points)
			for range b.N {
				cfg, dir := e.newRepo(b)
				var runtimePeak, driverPeak int64
				took := e.keepsakeBackup(b, cfg, dir, func(pid int) func() { return watchRSS(pid, &runtimePeak, &driverPeak) })
				runtime[i], driver[i] = float64(runtimePeak)/mib, float64(driverPeak)/mib
				if runtimePeak == 0 || driverPeak == 0 {
					b.Fatal("no RSS reading of the runtime or the driver")
				}
				f := newFigures(b)
				defer f.finish()
				f.report(float64(points)/took.Seconds(), "points/s")
				f.atMost(runtime[i], targetPeakMiB, "runtime-MiB")
				f.atMost(driver[i], targetPeakMiB, "driver-MiB")
			}
		})
	}
	// Only sub-benchmarks print metrics, so the comparison is one.
	b.Run("2x-vs-1x", func(b *testing.B) {
		if runtime[0] == 0 || driver[0] == 0 {
			b.Skip("no readings to compare")
		}
		f := newFigures(b)
		defer f.finish()
		f.atMost(runtime[1]/runtime[0], targetPeakGrowth, "runtime-x")
		f.atMost(driver[1]/driver[0], targetPeakGrowth, "driver-x")
	})
}

// watchRSS polls the peak RSS (VmHWM) of the runtime process and of its
// driver child until the returned stop is called. VmHWM only grows, so the
// last reading before a process exits is its peak up to then. (The
// rusage of a reaped process would not do: Linux reports the larger of
// its own peak and its children's, i.e. restic's.)
func watchRSS(runtime int, runtimePeak, driverPeak *int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		driver := 0
		for {
			*runtimePeak = max(*runtimePeak, statusKiB(runtime, "VmHWM:")<<10)
			if driver == 0 {
				driver = childNamed(runtime, "hyperbytedb-dri")
			}
			if driver != 0 {
				*driverPeak = max(*driverPeak, statusKiB(driver, "VmHWM:")<<10)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// childNamed returns the PID of a child of parent whose comm is name
// (truncated to 15 bytes by the kernel), or 0.
func childNamed(parent int, name string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// stat is "pid (comm) state ppid ...", and comm may hold spaces.
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		fields := strings.Fields(string(stat[end+1:]))
		if open < 0 || len(fields) < 2 || string(stat[open+1:end]) != name || fields[1] != strconv.Itoa(parent) {
			continue
		}
		return pid
	}
	return 0
}

func statusKiB(pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// influxImport runs the official importer on file into s and returns how
// long it took.
func influxImport(b *testing.B, s *servers.InfluxDB, file string) time.Duration {
	b.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(servers.Bin(b, "influx"), "-host", u.Hostname(), "-port", u.Port(),
		"-import", "-path", file, "-precision", "ns")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("influx -import: %v\n%s", err, out.String())
	}
	took := time.Since(start)
	if strings.Contains(out.String(), "failed") {
		b.Fatalf("influx -import reported failures:\n%s", out.String())
	}
	return took
}

// countPoints counts the points of measurement bulk in db.
func countPoints(b *testing.B, base, db string) int {
	b.Helper()
	out, err := exec.Command("curl", "-sS", "--fail", "-G", base+"/query", "--data-urlencode", "db="+db,
		"--data-urlencode", "q=SELECT count(count) FROM bulk", "--data-urlencode", "epoch=ns").Output()
	if err != nil {
		b.Fatalf("count: %v", err)
	}
	var doc struct {
		Results []struct {
			Series []struct{ Values [][]json.Number }
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Results) != 1 || len(doc.Results[0].Series) != 1 {
		return 0
	}
	n, _ := doc.Results[0].Series[0].Values[0][1].Int64()
	return int(n)
}

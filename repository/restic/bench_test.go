package restic_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/repository/internal/testrepo"
	"github.com/keepsake-dev/keepsake/repository/restic"
)

// benchSize is the stream size of the throughput benchmarks, in MiB
// (KEEPSAKE_BENCH_MIB overrides the default 256).
func benchSize(b *testing.B) int64 {
	mib := int64(256)
	if v := os.Getenv("KEEPSAKE_BENCH_MIB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("KEEPSAKE_BENCH_MIB=%q: want a positive number", v)
		}
		mib = n
	}
	return mib * MiB
}

// rawRestic runs the restic CLI of cfg directly, as a user would in a
// shell, with stdin and stdout as given.
func rawRestic(b *testing.B, cfg restic.Config, stdin io.Reader, stdout io.Writer, args ...string) {
	b.Helper()
	args = append(args, "--repo", cfg.Repository, "--password-file", cfg.PasswordFile, "--cache-dir", cfg.CacheDir, "-q")
	cmd := exec.Command(cfg.Binary, append(args, cfg.ExtraArgs...)...)
	cmd.Env = append(os.Environ(), cfg.Env...)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("restic %s: %v\n%s", args[0], err, stderr.String())
	}
}

func benchInit(b *testing.B, env *testrepo.Env, dir string) (*restic.Repo, restic.Config) {
	b.Helper()
	cfg := env.Config(b, dir)
	repo := restic.New(cfg)
	if err := repo.InitIfAbsent(context.Background()); err != nil {
		b.Fatalf("init %s: %v", dir, err)
	}
	return repo, cfg
}

// BenchmarkBackupFromReader compares Backup with `restic backup --stdin`
// on the same bytes, each into its own fresh repository on the same MinIO
// (so neither deduplicates against the other), alternating which goes
// first.
func BenchmarkBackupFromReader(b *testing.B) {
	env := testrepo.Start(b)
	size := benchSize(b)
	var wrapper, raw time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		repo, _ := benchInit(b, env, fmt.Sprintf("bw-%d", i))
		_, rawCfg := benchInit(b, env, fmt.Sprintf("br-%d", i))
		b.StartTimer()
		runWrapper := func() {
			start := time.Now()
			if _, err := repo.Backup(context.Background(), testrepo.Stream(uint64(i), size), restic.BackupOptions{Filename: "f"}, nil); err != nil {
				b.Fatalf("backup: %v", err)
			}
			wrapper += time.Since(start)
		}
		runRaw := func() {
			start := time.Now()
			rawRestic(b, rawCfg, testrepo.Stream(uint64(i), size), io.Discard, "backup", "--stdin", "--stdin-filename", "f")
			raw += time.Since(start)
		}
		alternate(i, runWrapper, runRaw)
		i++
	}
	reportRatio(b, size*int64(i), wrapper, raw)
}

// BenchmarkDumpToWriter compares Dump with `restic dump` of the same
// snapshot, alternating which goes first.
func BenchmarkDumpToWriter(b *testing.B) {
	env := testrepo.Start(b)
	size := benchSize(b)
	repo, cfg := benchInit(b, env, "dump")
	sum, err := repo.Backup(context.Background(), testrepo.Stream(7, size), restic.BackupOptions{Filename: "f"}, nil)
	if err != nil {
		b.Fatalf("backup: %v", err)
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = devNull.Close() }()
	var wrapper, raw time.Duration
	i := 0
	for b.Loop() {
		runWrapper := func() {
			start := time.Now()
			if err := repo.Dump(context.Background(), sum.SnapshotID, "f", discard{}); err != nil {
				b.Fatalf("dump: %v", err)
			}
			wrapper += time.Since(start)
		}
		runRaw := func() {
			start := time.Now()
			rawRestic(b, cfg, nil, devNull, "dump", sum.SnapshotID, "/f")
			raw += time.Since(start)
		}
		alternate(i, runWrapper, runRaw)
		i++
	}
	reportRatio(b, size*int64(i), wrapper, raw)
}

// discard is io.Discard without its ReaderFrom, so Dump's output really
// passes through a Go writer as it would to a driver.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func alternate(i int, first, second func()) {
	if i%2 == 1 {
		first, second = second, first
	}
	first()
	second()
}

// reportRatio reports both throughputs and wrapper/raw.
func reportRatio(b *testing.B, bytes int64, wrapper, raw time.Duration) {
	b.SetBytes(0)
	mbps := func(d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(wrapper), "MB/s-wrapper")
	b.ReportMetric(mbps(raw), "MB/s-raw")
	b.ReportMetric(raw.Seconds()/wrapper.Seconds(), "ratio-vs-raw")
}

// BenchmarkBackupMemory streams 1 GiB (KEEPSAKE_BENCH_MEM_MIB overrides)
// through Backup and reports the peak Go heap and peak RSS of this process
// (restic's memory is its own).
func BenchmarkBackupMemory(b *testing.B) {
	env := testrepo.Start(b)
	size := int64(1024) * MiB
	if v, err := strconv.ParseInt(os.Getenv("KEEPSAKE_BENCH_MEM_MIB"), 10, 64); err == nil && v > 0 {
		size = v * MiB
	}
	i := 0
	var heap, rss uint64
	for b.Loop() {
		b.StopTimer()
		repo, _ := benchInit(b, env, fmt.Sprintf("mem-%d", i))
		runtime.GC()
		resetPeakRSS(b)
		stop := samplePeakHeap(&heap)
		b.StartTimer()
		if _, err := repo.Backup(context.Background(), testrepo.Stream(uint64(i), size), restic.BackupOptions{Filename: "f"}, nil); err != nil {
			b.Fatalf("backup: %v", err)
		}
		stop()
		rss = max(rss, peakRSS(b))
		i++
	}
	b.ReportMetric(float64(heap)/MiB, "MiB-peak-heap")
	b.ReportMetric(float64(rss)/MiB, "MiB-peak-rss")
}

// samplePeakHeap records the largest HeapInuse seen until stop is called.
func samplePeakHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			*peak = max(*peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// resetPeakRSS resets VmHWM of this process (Linux clear_refs "5").
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset peak RSS, it includes set-up: %v", err)
	}
}

// peakRSS reads VmHWM of this process.
func peakRSS(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("parse VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

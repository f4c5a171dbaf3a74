package hyperbytedbtest

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bulk describes a large generated measurement "bulk" in db.autogen: N
// points spread round-robin over Series series, one second apart, four
// fields each (float, integer, string, boolean). Point k is a pure
// function of k and Version, so a test can rewrite any range.
type Bulk struct {
	DB     string
	N      int
	Series int
	// Version changes the field values (not the timestamps or tags) of
	// the points a write touches.
	Version int
	// Pad is the length of an extra string field "note" of random
	// letters, to reach a large dump with fewer points.
	Pad int
	// Step, when set, puts point k at step k/Series of every series
	// (series share timestamps, Step apart) instead of one second after
	// point k-1.
	Step time.Duration
}

// Time returns the time of point k in nanoseconds.
func (b Bulk) Time(k int) int64 {
	if b.Step > 0 {
		return bulkStart + int64(k/b.Series)*int64(b.Step)
	}
	return bulkStart + int64(k)*1_000_000_000
}

// bulkStart is the first point's time (2020-09-13), in nanoseconds.
const bulkStart = 1_600_000_000_000_000_000

// Line returns point k in line protocol.
func (b Bulk) Line(k int) string {
	series := k % b.Series
	v := k + 1000*b.Version
	note := ""
	if b.Pad > 0 {
		note = ",note=\"" + noise(uint64(v), b.Pad) + "\""
	}
	return fmt.Sprintf("bulk,host=host-%03d,region=region-%d usage=%d.%03d,count=%di,state=\"state %d of the machine\",up=%t%s %d\n",
		series, series%4, v%100, v%997, v, v%13, v%2 == 0, note, b.Time(k))
}

// Write creates the database and writes points [from, to) with parallel
// batched writes.
func (b Bulk) Write(t testing.TB, s Server, from, to int) {
	t.Helper()
	s.Exec(t, "CREATE DATABASE "+ident(b.DB))
	const batch = 20000
	var wg sync.WaitGroup
	work := make(chan [2]int)
	errs := make(chan error, 2)
	path := "/write?" + url.Values{"db": {b.DB}, "precision": {"ns"}}.Encode()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sb strings.Builder
			for r := range work {
				sb.Reset()
				for k := r[0]; k < r[1]; k++ {
					sb.WriteString(b.Line(k))
				}
				if _, err := s.tryPost(path, "text/plain", sb.String()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for k := from; k < to; k += batch {
		select {
		case work <- [2]int{k, min(k+batch, to)}:
		case err := <-errs:
			close(work)
			wg.Wait()
			t.Fatal(err)
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// noise returns n letters that look random, as real data does: repetitive
// filler would make restic cut unusually large chunks.
func noise(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 0x6b656570))
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = 'a' + byte(r.IntN(26))
	}
	return string(buf)
}

// SeriesRange returns the point indexes of series sid whose rank within
// the series is in [first, first+count): consecutive in time, so
// consecutive in a dump.
func (b Bulk) SeriesRange(sid, first, count int) []int {
	out := make([]int, 0, count)
	for j := first; j < first+count; j++ {
		out = append(out, j*b.Series+sid)
	}
	return out
}

// WritePoints rewrites the given points (with b's Version).
func (b Bulk) WritePoints(t testing.TB, s Server, ks []int) {
	t.Helper()
	var sb strings.Builder
	for _, k := range ks {
		sb.WriteString(b.Line(k))
	}
	s.Write(t, b.DB, "autogen", sb.String())
}

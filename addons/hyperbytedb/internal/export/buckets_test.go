package export

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
)

func TestParseDuration(t *testing.T) {
	tests := map[string]struct {
		in   string        // as SHOW RETENTION POLICIES reports it
		want time.Duration // parsed
	}{
		"InfluxDB 1.x week":    {in: "168h0m0s", want: 7 * 24 * time.Hour},
		"HyperbyteDB week":     {in: "1w0s", want: 7 * 24 * time.Hour},
		"HyperbyteDB two days": {in: "2d0s", want: 48 * time.Hour},
		"HyperbyteDB mixed":    {in: "1w2d3h4m5s", want: 9*24*time.Hour + 3*time.Hour + 4*time.Minute + 5*time.Second},
		"infinite as 0s":       {in: "0s", want: 0},
		"infinite as INF":      {in: "INF", want: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseDuration(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("parseDuration(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
			}
			if tc.want > 0 {
				if _, _, err := parseDDL(createRetentionPolicy("db", RetentionPolicy{Name: "rp", Duration: got, ShardDuration: got, Replication: 1})); err != nil {
					t.Fatalf("re-emitted DDL does not parse: %v", err)
				}
			}
		})
	}
	if _, err := parseDuration("1 week"); err == nil {
		t.Fatal("parseDuration accepted garbage")
	}
}

func TestNextBucket(t *testing.T) {
	d := &dumper{opts: DumpOptions{Bucket: time.Hour}}
	hour := int64(time.Hour)
	tests := map[string]struct {
		next []int64 // next point of each cursor
		want window  // the bucket
	}{
		"earliest cursor decides":   {next: []int64{5*hour + 7, 2*hour + 1}, want: window{2 * hour, 3 * hour}},
		"negative times floor down": {next: []int64{-1}, want: window{-hour, 0}},
		"bucket start exactly":      {next: []int64{3 * hour}, want: window{3 * hour, 4 * hour}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var cursors []*cursor
			for _, n := range tc.next {
				cursors = append(cursors, &cursor{next: n})
			}
			got, ok := d.nextBucket(cursors)
			if !ok || got != tc.want {
				t.Fatalf("bucket %+v (%t), want %+v", got, ok, tc.want)
			}
		})
	}
	if _, ok := d.nextBucket([]*cursor{{done: true}}); ok {
		t.Fatal("a bucket with every cursor done")
	}
}

// A window of several buckets (windows.go) writes the same bytes as one
// query per bucket: on dense data that overflows a window's buffer and on
// sparse data that widens it, across two measurements.
func TestDumpWindowsKeepBucketOrder(t *testing.T) {
	s := startServer(t, influxDB)
	bulk := hyperbytedbtest.Bulk{DB: "w", N: 20_000, Series: 50, Step: time.Minute}
	bulk.Write(t, s.api, 0, bulk.N)
	var sparse strings.Builder
	for i := range 40 {
		// A point every 30 hours from 1938 on, some before the bulk,
		// some inside it, some after.
		at := bulk.Time(0) + int64(i-10)*30*int64(time.Hour)
		fmt.Fprintf(&sparse, "aaa,k=%d v=%di %d\n", i%3, i, at)
	}
	sparse.WriteString("aaa,k=old v=1i -1000000000000000000\n")
	s.api.Write(t, "w", "autogen", sparse.String())
	perBucket := dump(t, s, DumpOptions{window: &windowLimits{target: 1, max: 1, maxSpan: 1}})
	if got := bytes.Count(perBucket, []byte("\nbulk,")); got != bulk.N {
		t.Fatalf("dumped %d bulk points, want %d", got, bulk.N)
	}
	for name, limits := range map[string]*windowLimits{
		"default":                     nil,
		"windows overflow and shrink": {target: 64 << 10, max: 128 << 10, maxSpan: maxWindowBuckets},
		"two buckets":                 {target: 1 << 30, max: 1 << 30, maxSpan: 2},
	} {
		t.Run(name, func(t *testing.T) {
			if got := dump(t, s, DumpOptions{window: limits}); !bytes.Equal(got, perBucket) {
				t.Fatalf("dump of %d bytes differs from the per-bucket dump of %d bytes", len(got), len(perBucket))
			}
		})
	}
}

package functions

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

// Integration tests: real InfluxDB, MinIO, restic and driver binary.

func TestBackupRestoreRoundTrip(t *testing.T) {
	s := newStand(t)
	ds := hyperbytedbtest.Mixed(time.Now())
	ds.Write(t, s.api)
	want := ds.Contents()
	primary, offsite := s.repo(t, "primary"), s.repo(t, "offsite")

	var out bytes.Buffer
	err := RunBackup(context.Background(), BackupConfig{
		Common: s.common(t, &out, nil), Repositories: []RepositorySpec{primary, offsite}, Session: "nightly-1",
	})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	comps, done := events(t, &out)
	if len(comps) != 2 || len(done) != 1 || done[0].Phase != PhaseSucceeded {
		t.Fatalf("report: %+v %+v", comps, done)
	}
	counts := map[string]uint64{"points": uint64(len(ds.Points)), "series": uint64(ds.Series())}
	for _, c := range comps {
		if c.Phase != PhaseSucceeded || c.SnapshotID == "" || c.Size == 0 || c.Size != comps[0].Size || c.Driver != "hyperbytedb 0.1.0" ||
			!maps.Equal(c.Counts, counts) {
			t.Fatalf("component result %+v, want counts %v", c, counts)
		}
	}
	for _, spec := range []RepositorySpec{primary, offsite} {
		snaps := s.snapshots(t, spec)
		if len(snaps) != 1 || snaps[0].Hostname != "prod/db" ||
			!slices.Equal(snaps[0].Tags, []string{"keepsake", "component=dump", "session=nightly-1"}) {
			t.Fatalf("snapshots of %s: %+v", spec.Name, snaps)
		}
	}

	for _, db := range ds.Databases {
		s.api.Exec(t, "DROP DATABASE "+quoteIdent(db.Name))
	}
	restored := restoreFrom(t, s, offsite, "latest", map[string]string{"mode": "replace"})
	assertContents(t, s, want)
	assertRestored(t, restored, ds)

	// Merge keeps points the backup does not have; replace removes them.
	extra := hyperbytedbtest.Point{DB: "events", RP: "autogen", Measurement: "log",
		Fields: map[string]any{"msg": "written after the backup"}, Time: time.Unix(0, 5)}
	s.api.Write(t, "events", "autogen", "log msg=\"written after the backup\" 5\n")
	restoreFrom(t, s, primary, comps[0].SnapshotID, map[string]string{"mode": "merge"})
	withExtra := ds
	withExtra.Points = append(slices.Clone(ds.Points), extra)
	assertContents(t, s, withExtra.Contents())
	restoreFrom(t, s, primary, "latest", map[string]string{"mode": "replace"})
	assertContents(t, s, want)
}

func quoteIdent(name string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
}

// restoreFrom restores snapshot of repo and returns what the driver says
// it restored.
func restoreFrom(t *testing.T, s *stand, repo RepositorySpec, snapshot string, params map[string]string) *corev1alpha1.RestoredData {
	t.Helper()
	var out bytes.Buffer
	err := RunRestore(context.Background(), RestoreConfig{Common: s.common(t, &out, params), Repository: repo, Snapshot: snapshot})
	if err != nil {
		t.Fatalf("restore %s of %s: %v", snapshot, repo.Name, err)
	}
	comps, done := events(t, &out)
	if len(comps) != 1 || comps[0].Phase != PhaseSucceeded || comps[0].SnapshotID == "" || len(done) != 1 {
		t.Fatalf("restore report: %+v %+v", comps, done)
	}
	return comps[0].Restored
}

// assertRestored checks the driver said it restored the databases and
// points of ds.
func assertRestored(t *testing.T, got *corev1alpha1.RestoredData, ds hyperbytedbtest.Dataset) {
	t.Helper()
	var dbs []string
	for _, db := range ds.Databases {
		dbs = append(dbs, db.Name)
	}
	slices.Sort(dbs)
	want := &corev1alpha1.RestoredData{ObjectKind: "databases", ObjectCount: int64(len(dbs)), Objects: dbs,
		Items: []corev1alpha1.RestoredItems{{Unit: "points", Count: int64(len(ds.Points))}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the restore says it restored %+v, want %+v", got, want)
	}
}

func assertContents(t *testing.T, s *stand, want hyperbytedbtest.Contents) {
	t.Helper()
	if diff := hyperbytedbtest.Diff(want, hyperbytedbtest.ReadContents(t, s.api), 10); diff != "" {
		t.Fatal(diff)
	}
}

func TestBackupSelectedDatabases(t *testing.T) {
	s := newStand(t)
	hyperbytedbtest.Mixed(time.Now()).Write(t, s.api)
	repo := s.repo(t, "primary")
	var out bytes.Buffer
	if err := RunBackup(context.Background(), BackupConfig{
		Common: s.common(t, &out, map[string]string{"databases": "events"}), Repositories: []RepositorySpec{repo},
	}); err != nil {
		t.Fatal(err)
	}
	dump := s.dump(t, repo, "latest")
	var contexts []string
	for _, line := range strings.Split(string(dump), "\n") {
		if strings.HasPrefix(line, "# CONTEXT-DATABASE:") || strings.HasPrefix(line, "CREATE DATABASE") {
			contexts = append(contexts, line)
		}
	}
	want := []string{"CREATE DATABASE events WITH DURATION INF REPLICATION 1 SHARD DURATION 1w NAME autogen", "# CONTEXT-DATABASE:events"}
	if !slices.Equal(contexts, want) {
		t.Fatalf("databases in the snapshot: %q, want %q", contexts, want)
	}
}

// dump returns the component file of a snapshot.
func (s *stand) dump(t testing.TB, spec RepositorySpec, snapshot string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.resticRepo(t, spec).Dump(context.Background(), snapshot, "dump", &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bigStand is a stand holding n generated points, each with a pad-byte
// string field.
func bigStand(t *testing.T, n, pad int) (*stand, hyperbytedbtest.Bulk) {
	t.Helper()
	s := newStand(t)
	b := hyperbytedbtest.Bulk{DB: "big", N: n, Series: 10, Pad: pad}
	b.Write(t, s.api, 0, n)
	return s, b
}

// A dump that fails half way must leave no snapshot: first the driver is
// killed, then InfluxDB.
func TestFailedDumpLeavesNoSnapshot(t *testing.T) {
	s, _ := bigStand(t, 200_000, 0)
	repo := s.repo(t, "primary")
	t.Run("driver killed", func(t *testing.T) {
		var out bytes.Buffer
		cfg := BackupConfig{Common: s.common(t, &out, nil), Repositories: []RepositorySpec{repo}}
		go killWhenWritten(t, cfg.Driver, 2<<20, func(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) })
		err := RunBackup(context.Background(), cfg)
		assertFailedWithoutSnapshot(t, s, repo, &out, err, "driver process hyperbytedb-driver crashed (signal: killed)")
	})
	t.Run("influxdb stopped", func(t *testing.T) {
		var out bytes.Buffer
		cfg := BackupConfig{Common: s.common(t, &out, nil), Repositories: []RepositorySpec{repo}}
		go killWhenWritten(t, cfg.Driver, 2<<20, func(int) { s.influx.Kill() })
		err := RunBackup(context.Background(), cfg)
		assertFailedWithoutSnapshot(t, s, repo, &out, err,
			`backup: dump: dump "big"."autogen".bulk: query "SELECT * FROM \"big\".\"autogen\".bulk WHERE time >= `)
	})
}

func assertFailedWithoutSnapshot(t *testing.T, s *stand, repo RepositorySpec, out *bytes.Buffer, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("backup error %v, want one containing %q", err, want)
	}
	comps, done := events(t, out)
	if len(comps) != 1 || comps[0].Phase != PhaseFailed || comps[0].SnapshotID != "" || !strings.Contains(comps[0].Error, want) {
		t.Fatalf("component result %+v", comps)
	}
	if len(done) != 1 || done[0].Phase != PhaseFailed {
		t.Fatalf("run result %+v", done)
	}
	if snaps := s.snapshots(t, repo); len(snaps) != 0 {
		t.Fatalf("a failed dump became snapshot(s) %+v", snaps)
	}
	t.Logf("error: %v", err)
}

// Incremental backups of the usual time-series changes upload little
// (docs/dump-order.md): 30 days of hourly points in 500 series, ~190 MB of
// dump. restic cuts chunks of 0.5 to 8 MiB (about 1 MiB on average), so
// any change costs a chunk or two: the dump must be large for a change at
// one place to add well under 1%.
func TestIncrementalBackupDeduplicates(t *testing.T) {
	const series, days, pad = 500, 30, 400
	s := newStand(t)
	b := hyperbytedbtest.Bulk{DB: "big", Series: series, Step: time.Hour, Pad: pad}
	day := 24 * series
	hole := 15*day + 12*series // one hour in the middle, left out at first
	b.Write(t, s.api, 0, hole)
	b.Write(t, s.api, hole+series, days*day)
	repo := s.repo(t, "primary")
	s.initWithFixedChunker(t, repo)
	backup := func() ComponentResult {
		t.Helper()
		var out bytes.Buffer
		if err := RunBackup(context.Background(), BackupConfig{Common: s.common(t, &out, nil), Repositories: []RepositorySpec{repo}}); err != nil {
			t.Fatal(err)
		}
		comps, _ := events(t, &out)
		return comps[0]
	}
	first, second := backup(), backup()
	if sha256.Sum256(s.dump(t, repo, first.SnapshotID)) != sha256.Sum256(s.dump(t, repo, second.SnapshotID)) {
		t.Fatal("two dumps of unchanged data differ")
	}
	b.Write(t, s.api, days*day, (days+1)*day)
	appended := backup()
	b.Write(t, s.api, hole, hole+series)
	backfilled := backup()
	s.api.ExecIn(t, "big", fmt.Sprintf("DELETE FROM bulk WHERE time < %d", b.Time(day)))
	expired := backup()

	// Dropping the head of the dump rewrites the chunks until restic's
	// chunker cuts where it cut before: a cost of one to three chunks
	// (restic's average is 1 MiB), whatever the dump's size. On this
	// 190 MB dump that is 1-2%; below 1% needs a dump of about 400 MB, too
	// slow for `make test` here. So expiry is bounded by what it costs, a
	// few chunks, and the figure is logged. The polynomial is fixed
	// (initWithFixedChunker), so the figure is the same on every run.
	const fewChunks = 4 << 20
	cases := []struct {
		name     string
		got      ComponentResult
		limit    float64 // share of the dump
		maxBytes uint64  // or this many bytes, when more
	}{
		{"unchanged", second, 0.001, 0},
		{"one more day appended to every series", appended, 0.05, 0},
		{"one hour back-filled in the middle", backfilled, 0.03, 0},
		{"oldest day expired", expired, 0.01, fewChunks},
	}
	t.Logf("dump %d bytes (%d series x %d days, hourly); first backup added %d", first.Size, series, days, first.DataAdded)
	for _, c := range cases {
		r := ratio(c.got.DataAdded, c.got.Size)
		t.Logf("%s: added %d of %d bytes = %.3f%% (limit %.1f%% or %d bytes)", c.name, c.got.DataAdded, c.got.Size, 100*r, 100*c.limit, c.maxBytes)
		if r >= c.limit && c.got.DataAdded >= c.maxBytes {
			t.Errorf("%s added %.3f%% of the dump (%d bytes), want < %.1f%% or < %d bytes", c.name, 100*r, c.got.DataAdded, 100*c.limit, c.maxBytes)
		}
	}
}

func ratio(a, b uint64) float64 { return float64(a) / float64(b) }

// A repository that cannot be opened fails alone: the others still get
// their snapshot, and the run reports both outcomes.
func TestBackupRepositoryFailsAlone(t *testing.T) {
	s := newStand(t)
	hyperbytedbtest.Mixed(time.Now()).Write(t, s.api)
	good, bad := s.repo(t, "good"), s.repo(t, "bad")
	var out bytes.Buffer
	wrong := bad
	wrong.PasswordFile = s.file(t, "other-password", "not the password")
	if err := s.resticRepo(t, bad).InitIfAbsent(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := RunBackup(context.Background(), BackupConfig{Common: s.common(t, &out, nil), Repositories: []RepositorySpec{good, wrong}})
	if err == nil || !strings.Contains(err.Error(), "backup failed in 1 of 2 repositories: bad: open repository bad") {
		t.Fatalf("backup error: %v", err)
	}
	comps, done := events(t, &out)
	if len(comps) != 2 || comps[0].Phase != PhaseSucceeded || comps[0].SnapshotID == "" ||
		comps[1].Phase != PhaseFailed || comps[1].SnapshotID != "" || !strings.Contains(comps[1].Error, "password") {
		t.Fatalf("component results %+v", comps)
	}
	if len(done) != 1 || done[0].Phase != PhaseFailed {
		t.Fatalf("run result %+v", done)
	}
	if n := len(s.snapshots(t, good)); n != 1 {
		t.Fatalf("good repository has %d snapshots, want 1", n)
	}
}

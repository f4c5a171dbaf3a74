package physical_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/physical"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// TestOfflineRestore takes a physical backup of a live influxd, changes its
// data, stops it, restores the backup offline into its own directories (as
// a restore Job writes a stopped pod's PVC) and starts influxd on them:
// every point, field type and retention policy is the backup's.
func TestOfflineRestore(t *testing.T) {
	ctx := context.Background()
	db := servers.StartInfluxDB(t)
	api := hyperbytedbtest.Server{URL: db.URL}
	hyperbytedbtest.Mixed(time.Now()).Write(t, api)
	want := hyperbytedbtest.ReadContents(t, api)
	dbs := databases(want)
	x := physical.Influxd{Bin: servers.Bin(t, "influxd")}

	var stream bytes.Buffer
	if err := x.Backup(ctx, db.RPCAddr(t), dbs, t.TempDir(), &stream); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := x.Backup(ctx, db.RPCAddr(t), dbs, t.TempDir(), &again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stream.Bytes(), again.Bytes()) {
		t.Errorf("two backups of unchanged data differ (%d and %d bytes): the stream is not deterministic", stream.Len(), again.Len())
	}

	api.Write(t, "metrics", "autogen", "cpu,host=h9 value=99 1700000000000000000")
	api.Exec(t, `DROP DATABASE "events"`)
	api.Exec(t, `CREATE DATABASE "added"`)
	db.Stop()

	restored, err := x.Restore(ctx, &stream, t.TempDir(), physical.Dirs{
		Meta: filepath.Join(db.Dir, "meta"), Data: filepath.Join(db.Dir, "data"), WAL: filepath.Join(db.Dir, "wal"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(restored, dbs) {
		t.Errorf("restored databases %v, want %v", restored, dbs)
	}
	back := servers.StartInfluxDBIn(t, db.Dir)
	got := hyperbytedbtest.ReadContents(t, hyperbytedbtest.Server{URL: back.URL})
	if d := hyperbytedbtest.Diff(want, got, 10); d != "" {
		t.Errorf("after the offline restore:\n%s", d)
	}
}

func databases(c hyperbytedbtest.Contents) []string {
	var dbs []string
	for name := range c.Schema {
		dbs = append(dbs, name)
	}
	slices.Sort(dbs)
	return dbs
}

// TestReadTarRefusesEscapes checks that a stream cannot write outside the
// staging directory.
func TestReadTarRefusesEscapes(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "a", "sub/c"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := physical.WriteTar(&buf, src); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := physical.ReadTar(bytes.NewReader(buf.Bytes()), out); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(out, "sub", "c")); err != nil || string(data) != "sub/c" {
		t.Errorf("sub/c = %q, %v", data, err)
	}
	for _, name := range []string{"../x", "/abs", "sub/../../x"} {
		var evil bytes.Buffer
		tw := tar.NewWriter(&evil)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 1, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte("x"))
		_ = tw.Close()
		err := physical.ReadTar(&evil, filepath.Join(dir, "evil"))
		if err == nil {
			t.Errorf("tar entry %q was extracted, want an error", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Errorf("a file escaped the staging directory")
	}
}

// TestOfflineRestoreOfManyShards: a database of twelve shards (a point a
// week, influxd's default shard duration) comes back whole. influxd
// 1.6's own offline restore put shard 10's files into shard 1's directory
// and lost shard 1 (BenchmarkPhysicalVsLogical found it at 5 million
// points: 41,600 points gone, the first shard's).
func TestOfflineRestoreOfManyShards(t *testing.T) {
	ctx := context.Background()
	db := servers.StartInfluxDB(t)
	api := hyperbytedbtest.Server{URL: db.URL}
	api.Exec(t, `CREATE DATABASE "weeks"`)
	const week = 7 * 24 * time.Hour
	start := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	var lines []string
	for i := range 12 {
		lines = append(lines, fmt.Sprintf("load,host=h%d value=%d %d", i%3, i, start.Add(time.Duration(i)*week).UnixNano()))
	}
	api.Write(t, "weeks", "autogen", strings.Join(lines, "\n"))
	want := hyperbytedbtest.ReadContents(t, api)
	x := physical.Influxd{Bin: servers.Bin(t, "influxd")}
	var stream bytes.Buffer
	if err := x.Backup(ctx, db.RPCAddr(t), []string{"weeks"}, t.TempDir(), &stream); err != nil {
		t.Fatal(err)
	}
	db.Stop()
	if _, err := x.Restore(ctx, &stream, t.TempDir(), physical.Dirs{
		Meta: filepath.Join(db.Dir, "meta"), Data: filepath.Join(db.Dir, "data"), WAL: filepath.Join(db.Dir, "wal"),
	}); err != nil {
		t.Fatal(err)
	}
	back := servers.StartInfluxDBIn(t, db.Dir)
	if d := hyperbytedbtest.Diff(want, hyperbytedbtest.ReadContents(t, hyperbytedbtest.Server{URL: back.URL}), 20); d != "" {
		t.Errorf("after the offline restore of twelve shards:\n%s", d)
	}
}

// TestRestoreWithoutInfluxdKeepsTheTarget: when the image has no influxd
// (the chart's default image, the keepsake one, has none), the restore
// fails before it empties the stopped server's directories: the database
// comes back as it was instead of empty.
func TestRestoreWithoutInfluxdKeepsTheTarget(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "backup")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, physical.ManifestName), []byte("metrics\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if err := physical.WriteTar(&stream, src); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target")
	dirs := physical.Dirs{Meta: filepath.Join(target, "meta"), Data: filepath.Join(target, "data"), WAL: filepath.Join(target, "wal")}
	kept := filepath.Join(dirs.Meta, "meta.db")
	if err := os.MkdirAll(dirs.Meta, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kept, []byte("the live metastore"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-such-influxd")
	x := physical.Influxd{Bin: missing}
	_, err := x.Restore(context.Background(), &stream, t.TempDir(), dirs)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("restore with influxd %s: error %v, want one naming the missing binary", missing, err)
	}
	if data, rerr := os.ReadFile(kept); rerr != nil || string(data) != "the live metastore" {
		t.Errorf("the restore emptied the target before failing: %s is %q, %v (error was: %v)", kept, data, rerr, err)
	}
}

package physical

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ManifestName is the file of the tar stream that lists the backed-up
// databases, one per line: the offline restore takes one database at a
// time, and influxd's file names (<db>.<rp>.<shard>.<n>) cannot tell a
// database from a retention policy when names hold dots.
const ManifestName = "keepsake-databases"

// Influxd runs the influxd binary's backup and restore commands.
type Influxd struct {
	// Bin is the path of influxd, e.g. "influxd" (looked up on PATH).
	Bin string
	// Log receives the commands' output; influxd writes progress there.
	Log io.Writer
}

// Backup backs up, from the server whose RPC service (bind-address,
// port 8088 by default) listens at host, the metastore and databases into
// dir, which must be empty, then writes dir to w with WriteTar. influxd
// backup writes files only, so dir is a staging directory on scratch disk.
func (x Influxd) Backup(ctx context.Context, host string, databases []string, dir string, w io.Writer) error {
	if err := x.run(ctx, "backup", "-host", host, dir); err != nil {
		return err
	}
	for _, db := range databases {
		if err := x.run(ctx, "backup", "-host", host, "-database", db, dir); err != nil {
			return err
		}
	}
	manifest := strings.Join(databases, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte(manifest), 0o644); err != nil {
		return err
	}
	return WriteTar(w, dir)
}

// Dirs are a stopped server's directories, as its config names them
// ([meta] dir, [data] dir and wal-dir).
type Dirs struct {
	Meta, Data, WAL string
}

// Restore extracts a Backup stream from r into staging (an empty
// directory) and restores it offline into dirs: their contents are removed
// first (the restore replaces the server's data), `influxd restore
// -metadir` restores the metastore, and the shards' files are unpacked
// into the data directory (see unpackShards).
func (x Influxd) Restore(ctx context.Context, r io.Reader, staging string, dirs Dirs) ([]string, error) {
	if err := ReadTar(r, staging); err != nil {
		return nil, err
	}
	dbs, err := readManifest(filepath.Join(staging, ManifestName))
	if err != nil {
		return nil, err
	}
	// Nothing of the stopped server is touched before the restore can run.
	if err := x.check(); err != nil {
		return nil, err
	}
	for _, d := range []string{dirs.Meta, dirs.Data, dirs.WAL} {
		if err := emptyDir(d); err != nil {
			return nil, err
		}
	}
	if err := x.run(ctx, "restore", "-metadir", dirs.Meta, staging); err != nil {
		return nil, err
	}
	if err := unpackShards(staging, dirs.Data); err != nil {
		return nil, err
	}
	return dbs, nil
}

// unpackShards extracts every shard file of a backup in staging (each a
// tar of <db>/<rp>/<shard>/<file>, named <db>.<rp>.<shard>.<n>) into the
// data directory, as `influxd restore -database -datadir` would. That
// command is not used: with ten shards or more, Debian's influxd 1.6.7
// restores shard 10's files into shard 1's directory and none into shard
// 10's, so shard 1's data is lost (seen with twelve weekly shards in
// TestOfflineRestoreOfManyShards, and as 41,600 missing points of 5
// million in BenchmarkPhysicalVsLogical); the backup's files are right.
func unpackShards(staging, data string) error {
	entries, err := os.ReadDir(staging)
	if err != nil {
		return err
	}
	for _, e := range entries { // Backup writes each shard once (.00), into an empty directory
		name := e.Name()
		if !e.Type().IsRegular() || name == ManifestName || strings.HasPrefix(name, "meta.") {
			continue
		}
		f, err := os.Open(filepath.Join(staging, name))
		if err != nil {
			return err
		}
		err = ReadTar(f, data)
		f.Close()
		if err != nil {
			return fmt.Errorf("shard file %s: %w", name, err)
		}
	}
	return nil
}

func readManifest(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("the stream is not a physical backup (no %s): %w", ManifestName, err)
	}
	var dbs []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			dbs = append(dbs, line)
		}
	}
	return dbs, sc.Err()
}

// emptyDir removes what dir holds, keeping dir (a mount point cannot be
// removed), and creates it when missing.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// check fails when influxd cannot be run: the image lacks it, or the
// influxd parameter names a path that is not there.
func (x Influxd) check() error {
	if _, err := exec.LookPath(x.Bin); err != nil {
		return fmt.Errorf("influxd %q: %w: the Function's image must hold InfluxDB 1.x's influxd (task parameter influxd gives its path)", x.Bin, err)
	}
	return nil
}

// run runs influxd with args, failing with the tail of its output.
func (x Influxd) run(ctx context.Context, args ...string) error {
	return runTool(ctx, x.Bin, nil, x.Log, args...)
}

package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// imageSources are the host files test/images builds the cluster's images
// from, by its flag names. The keepsake image is added by ImportImages when
// a keepsake binary is given.
func (c Config) imageSources() map[string]string {
	src := map[string]string{
		"pause": c.bin("pause"), "busybox": busyboxBinary,
		"local-path-provisioner": c.bin("local-path-provisioner"),
	}
	if c.Servers {
		src["minio"] = c.bin("minio")
		src["influxd"] = influxdBinary
	}
	return src
}

// importImages builds (or takes from the cache) the cluster's images and
// imports them once containerd answers.
func (c Config) importImages(ctx context.Context) error {
	if err := c.waitContainerd(ctx); err != nil {
		return err
	}
	return c.ImportImages(ctx, c.imageSources())
}

// ImportImages builds images with test/images from the given sources (its
// flag names: "keepsake", "restic", "minio", ...) and imports them into the
// node's containerd. E2e suites call it to load a freshly built keepsake
// binary as keepsake.local/keepsake:dev.
func (c Config) ImportImages(ctx context.Context, sources map[string]string) error {
	args := []string{"-out", c.state("image-cache"), "-containerd-address", c.containerdSocket(), "-ctr", ctrBinary}
	for flag, path := range sources {
		args = append(args, "-"+flag, path)
	}
	cmd := exec.CommandContext(ctx, c.bin("keepsake-images"), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("keepsake-images: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return os.WriteFile(c.state("logs", "images.log"), out, 0o644)
}

// waitContainerd waits until containerd answers on its socket.
func (c Config) waitContainerd(ctx context.Context) error {
	return poll(ctx, "containerd", 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		out, err := exec.CommandContext(ctx, ctrBinary, "--address", c.containerdSocket(), "version").CombinedOutput()
		if err != nil {
			return false, fmt.Errorf("ctr version: %v: %s", err, strings.TrimSpace(string(out)))
		}
		return true, nil
	})
}

// Images of the addons the e2e suites run, as test/images names them.
const (
	// PostgresDriverImage is the PostgreSQL addon's image: its driver and
	// Debian's PostgreSQL 15 client tools.
	PostgresDriverImage = "keepsake.local/postgres-driver:dev"
	// HyperbytedbDriverImage is the HyperbyteDB addon's image: its driver
	// and Debian's influxd (InfluxDB 1.x), which the physical tasks run.
	HyperbytedbDriverImage = "keepsake.local/hyperbytedb-driver:dev"
	// HyperbytedbToolImage stands in for a HyperbytedbCluster's image with
	// the HyperbyteDB driver copied in, which the addon's
	// hyperbytedb-backup and hyperbytedb-restore tasks run: the driver and
	// the emulation of HyperbyteDB's command line (not HyperbyteDB).
	HyperbytedbToolImage = "keepsake.local/hyperbytedb-tool:dev"
	// RedisImage holds Debian's redis-server and redis-cli and busybox's
	// shell: a Redis server, and the script addon's Functions' image.
	RedisImage = "keepsake.local/redis:7.0"
	// RedisdumpDriverImage is the image of docs/writing-an-addon.md's
	// example driver; ImportImages builds it from source
	// RedisdumpDriverSource.
	RedisdumpDriverImage = "keepsake.local/redisdump-driver:dev"
	// RedisdumpDriverSource is the ImportImages source of
	// RedisdumpDriverImage: the driver binary.
	RedisdumpDriverSource = "redisdump-driver"
)

// AddonImageSources are the host files of PostgresDriverImage,
// HyperbytedbDriverImage, HyperbytedbToolImage and RedisImage, for
// ImportImages: the PostgreSQL and HyperbyteDB drivers at pgDriver and
// hyperbytedbDriver, the emulated hyperbytedb at hyperbytedbEmulation,
// and Debian's tools (packages postgresql, influxdb, redis-server,
// redis-tools, busybox-static).
func AddonImageSources(pgDriver, hyperbytedbDriver, hyperbytedbEmulation string) map[string]string {
	return map[string]string{
		"postgres-driver": pgDriver, "hyperbytedb-driver": hyperbytedbDriver, "influxd": influxdBinary, "hyperbytedb-emulation": hyperbytedbEmulation,
		"pg_dump": postgresBinDir + "/pg_dump", "pg_dumpall": postgresBinDir + "/pg_dumpall", "psql": postgresBinDir + "/psql",
		"busybox": busyboxBinary, "redis-server": "/usr/bin/redis-server", "redis-cli": "/usr/bin/redis-cli",
	}
}

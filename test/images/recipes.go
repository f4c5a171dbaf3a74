package main

// Registry is the registry part of every image reference built here. It
// names no real host: the images exist only in the node's containerd, and
// pods use them with imagePullPolicy IfNotPresent or Never.
const Registry = "keepsake.local"

// recipe describes one image: which host files go where, and how it runs.
type recipe struct {
	ref        string
	files      []imageFile
	symlinks   map[string]string
	entrypoint []string
	cmd        []string
	env        []string
	// applets makes /bin/<applet> links to the busybox file.
	applets bool
}

// imageFile is a file taken from the host path given by flag source.
type imageFile struct {
	source   string
	dst      string
	mode     int64
	optional bool
}

const defaultPath = "PATH=/usr/local/bin:/usr/bin:/bin"

// recipes are the images the local cluster and the e2e suites use, by name.
var recipes = map[string]recipe{
	"pause": {
		ref:        Registry + "/pause:3.10",
		files:      []imageFile{{source: "pause", dst: "/pause", mode: 0o755}},
		entrypoint: []string{"/pause"},
	},
	"busybox": {
		ref:     Registry + "/busybox:1.35",
		files:   []imageFile{{source: "busybox", dst: "/bin/busybox", mode: 0o755}},
		applets: true,
		cmd:     []string{"/bin/sh"},
		env:     []string{defaultPath},
	},
	"minio": {
		ref:        Registry + "/minio:dev",
		files:      []imageFile{{source: "minio", dst: "/usr/bin/minio", mode: 0o755}},
		entrypoint: []string{"/usr/bin/minio"},
		env:        []string{defaultPath, "MINIO_BROWSER=off", "MINIO_UPDATE=off"},
	},
	"influxdb": {
		ref:        Registry + "/influxdb:1.6",
		files:      []imageFile{{source: "influxd", dst: "/usr/bin/influxd", mode: 0o755}},
		entrypoint: []string{"/usr/bin/influxd"},
		env: []string{defaultPath, "INFLUXDB_REPORTING_DISABLED=true",
			"INFLUXDB_META_DIR=/var/lib/influxdb/meta", "INFLUXDB_DATA_DIR=/var/lib/influxdb/data",
			"INFLUXDB_DATA_WAL_DIR=/var/lib/influxdb/wal", "INFLUXDB_HTTP_BIND_ADDRESS=:8086",
			"INFLUXDB_BIND_ADDRESS=127.0.0.1:8088"},
	},
	"local-path-provisioner": {
		ref: Registry + "/local-path-provisioner:v0.0.30",
		files: []imageFile{{source: "local-path-provisioner", dst: "/usr/bin/local-path-provisioner",
			mode: 0o755}},
		entrypoint: []string{"/usr/bin/local-path-provisioner"},
		env:        []string{defaultPath},
	},
	// keepsake is a placeholder until the release image exists: the keepsake
	// binary (and restic and the built-in drivers, when given) from whatever
	// paths are passed in. The operator runs it; Jobs copy keepsake and
	// restic out of it; the built-in Functions run it for its drivers.
	"keepsake": {
		ref: Registry + "/keepsake:dev",
		files: []imageFile{
			{source: "keepsake", dst: "/usr/local/bin/keepsake", mode: 0o755},
			{source: "restic", dst: "/usr/local/bin/restic", mode: 0o755, optional: true},
			{source: "hyperbytedb-driver", dst: "/usr/local/bin/hyperbytedb-driver", mode: 0o755, optional: true},
			{source: "script-driver", dst: "/usr/local/bin/script-driver", mode: 0o755, optional: true},
		},
		entrypoint: []string{"/usr/local/bin/keepsake"},
		env:        []string{defaultPath},
	},
	// hyperbytedb-driver is the HyperbyteDB addon's image, as the release
	// image ghcr.io/keepsake-dev/hyperbytedb-driver is meant to be: its
	// driver, and InfluxDB 1.x's influxd (Debian's), which the physical
	// tasks run (`influxd backup` over the server's RPC port, the offline
	// `influxd restore -metadir`). The logical tasks need the driver only.
	// The chart runs it with
	// addons.hyperbytedb.image=keepsake.local/hyperbytedb-driver:dev.
	"hyperbytedb-driver": {
		ref: Registry + "/hyperbytedb-driver:dev",
		files: []imageFile{
			{source: "hyperbytedb-driver", dst: "/usr/local/bin/hyperbytedb-driver", mode: 0o755},
			{source: "influxd", dst: "/usr/local/bin/influxd", mode: 0o755},
		},
		entrypoint: []string{"/usr/local/bin/hyperbytedb-driver"},
		env:        []string{defaultPath},
	},
	// hyperbytedb-tool stands in for the image docs/physical-mode.md has the
	// HyperbyteDB tool Functions run: the HyperbytedbCluster's own image
	// with the addon's driver copied in at /usr/local/bin/hyperbytedb-driver.
	// Its /usr/local/bin/hyperbytedb is NOT HyperbyteDB: it is the
	// emulation of HyperbyteDB's backup and restore command line
	// (addons/hyperbytedb/hyperbytedbtest/cli, bin/hyperbytedb-emulation),
	// as HyperbyteDB cannot be built here. The Functions need no shell. The
	// chart runs it with
	// addons.hyperbytedb.toolImage=keepsake.local/hyperbytedb-tool:dev.
	"hyperbytedb-tool": {
		ref: Registry + "/hyperbytedb-tool:dev",
		files: []imageFile{
			{source: "hyperbytedb-emulation", dst: "/usr/local/bin/hyperbytedb", mode: 0o755},
			{source: "hyperbytedb-driver", dst: "/usr/local/bin/hyperbytedb-driver", mode: 0o755},
		},
		entrypoint: []string{"/usr/local/bin/hyperbytedb"},
		env:        []string{defaultPath},
	},
	// postgres-driver is the PostgreSQL addon's image: its driver and
	// Debian's PostgreSQL 15 client tools, with the interpreter and
	// libraries ldd resolves for them, and busybox as /bin/sh: pg_dumpall
	// finds pg_dump beside itself and checks its version with popen("pg_dump
	// -V"), which runs /bin/sh (without one: `program "pg_dump" is needed by
	// pg_dumpall but was not found in the same directory`). Give -pg_dump
	// etc. the binaries of /usr/lib/postgresql/15/bin, not /usr/bin's wrapper
	// scripts. The chart runs it with
	// addons.postgres.image=keepsake.local/postgres-driver:dev.
	"postgres-driver": {
		ref: Registry + "/postgres-driver:dev",
		files: []imageFile{
			{source: "postgres-driver", dst: "/usr/local/bin/postgres-driver", mode: 0o755},
			{source: "pg_dump", dst: "/usr/local/bin/pg_dump", mode: 0o755},
			{source: "pg_dumpall", dst: "/usr/local/bin/pg_dumpall", mode: 0o755},
			{source: "psql", dst: "/usr/local/bin/psql", mode: 0o755},
			{source: "busybox", dst: "/bin/sh", mode: 0o755},
		},
		entrypoint: []string{"/usr/local/bin/postgres-driver"},
		env:        []string{defaultPath},
	},
	// redis is Debian's Redis 7 (redis-server and redis-cli, with the
	// libraries ldd resolves for them) and busybox's shell and applets: the
	// server the e2e backs up with the script addon, and the image of the
	// script addon's Functions there, whose commands run redis-cli under
	// /bin/sh. Give -redis-server /usr/bin/redis-server (a link to
	// redis-check-rdb, which acts as the server by the name it is run as).
	"redis": {
		ref: Registry + "/redis:7.0",
		files: []imageFile{
			{source: "busybox", dst: "/bin/busybox", mode: 0o755},
			{source: "redis-server", dst: "/usr/bin/redis-server", mode: 0o755},
			{source: "redis-cli", dst: "/usr/bin/redis-cli", mode: 0o755},
		},
		applets: true,
		cmd:     []string{"/usr/bin/redis-server"},
		env:     []string{defaultPath},
	},
	// redisdump-driver is the image of docs/writing-an-addon.md's example
	// driver, with the content its Dockerfile gives it (FROM scratch, the
	// static driver at /usr/local/bin/redisdump-driver, nothing else): the
	// e2e layout guide builds the driver by following the guide, checks
	// the Dockerfile says exactly that, and assembles the image here, as
	// no Docker engine runs on the test machine.
	"redisdump-driver": {
		ref:   Registry + "/redisdump-driver:dev",
		files: []imageFile{{source: "redisdump-driver", dst: "/usr/local/bin/redisdump-driver", mode: 0o755}},
	},
}

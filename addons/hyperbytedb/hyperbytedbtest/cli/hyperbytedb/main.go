// Command hyperbytedb is the emulation of HyperbyteDB's backup and restore
// command line (package cli), for trying the driver's HyperbyteDB tool
// path by hand: `hyperbytedb -c CFG backup --output DIR`, `hyperbytedb -c
// CFG restore --input DIR`. It is not HyperbyteDB.
package main

import (
	"os"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stderr))
}

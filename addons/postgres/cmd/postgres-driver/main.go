// Command postgres-driver is Keepsake's PostgreSQL driver, a go-plugin
// binary started by `keepsake run backup|restore`: it streams pg_dumpall's
// globals and pg_dump's plain SQL of each database into the repository, and
// loads such a dump back with psql. Run by hand it only explains that it is
// a plugin.
package main

import (
	"github.com/keepsake-dev/keepsake/addons/postgres"
	"github.com/keepsake-dev/keepsake/addons/sdk"
)

func main() {
	sdk.Serve(postgres.Driver{})
}

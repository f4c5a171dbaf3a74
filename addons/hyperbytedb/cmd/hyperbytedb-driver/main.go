// Command hyperbytedb-driver is the HyperbyteDB driver of Keepsake, a
// go-plugin binary started by `keepsake run backup|restore`. Run by hand it
// only explains that it is a plugin.
package main

import (
	"github.com/keepsake-dev/keepsake/addons/hyperbytedb"
	"github.com/keepsake-dev/keepsake/addons/sdk"
)

func main() {
	sdk.Serve(hyperbytedb.Driver{})
}

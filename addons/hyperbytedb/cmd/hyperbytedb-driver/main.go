// Command hyperbytedb-driver is the HyperbyteDB driver of Keepsake, a
// go-plugin binary started by `keepsake run backup|restore`. Run by hand it
// only explains that it is a plugin.
package main

import (
	"os"
	"runtime/debug"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb"
	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// memoryLimit is the soft heap limit unless GOMEMLIMIT says otherwise. The
// driver's live data is one query chunk and a few buffers; the limit makes
// the garbage collector keep the footprint near that instead of letting
// the heap double between collections.
const memoryLimit = 40 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	sdk.Serve(hyperbytedb.Driver{})
}

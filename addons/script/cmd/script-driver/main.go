// Command script-driver is Keepsake's script driver, a go-plugin binary
// started by `keepsake run backup|restore`: it runs the user's backup
// command and streams its standard output into the repository, and pipes a
// snapshot into the user's restore command. Run by hand it only explains
// that it is a plugin.
package main

import (
	"github.com/keepsake-dev/keepsake/addons/script"
	"github.com/keepsake-dev/keepsake/addons/sdk"
)

func main() {
	sdk.Serve(script.Driver{})
}

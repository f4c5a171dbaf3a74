// Command driver_gen is a benchmark driver: its Backup streams a generated
// payload (parameter size, in bytes) as fast as it can, so a benchmark can
// measure the plugin boundary alone.
package main

import (
	"context"
	"io"
	"math/rand/v2"
	"strconv"

	"github.com/keepsake-dev/keepsake/addons/sdk"
)

type generator struct{}

func (generator) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "gen", Version: "0", Parameters: []sdk.Parameter{{Name: "size", Required: true}, {Name: "seed", Default: "1"}},
		Capabilities: []sdk.Capability{sdk.CapabilityBackup}}, nil
}

func (generator) Backup(_ context.Context, req *sdk.BackupRequest, w io.Writer) error {
	size, err := strconv.ParseInt(req.Params["size"], 10, 64)
	if err != nil {
		return err
	}
	seed, err := strconv.Atoi(req.Params["seed"])
	if err != nil {
		return err
	}
	_, err = io.CopyN(w, Payload(seed), size)
	return err
}

func (generator) Restore(context.Context, *sdk.RestoreRequest, io.Reader) (sdk.Restored, error) {
	return sdk.Restored{}, io.ErrUnexpectedEOF
}

// Payload is the generated stream: fast, incompressible, never repeating.
func Payload(seed int) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	return rand.NewChaCha8(key)
}

func main() {
	sdk.Serve(generator{})
}

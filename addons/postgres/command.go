package postgres

import (
	"context"
	"fmt"
	"io"
	"os"

	sdktool "github.com/keepsake-dev/keepsake/addons/sdk/tool"
)

// tool is one run of pg_dump, pg_dumpall or psql, with libpq's
// environment, in a process group of its own (Debian's /usr/bin/pg_dump is
// a wrapper script whose child must go too when the call is cancelled).
type tool struct {
	*sdktool.Cmd
	ctx  context.Context
	what string // e.g. `pg_dump of database "shop"`, for messages
}

// errorMarks are what a line reporting an error holds: psql's "ERROR:",
// libpq's "FATAL:", pg_dump's "error:". A failure quotes standard error
// from the first such line on: psql's --echo-errors prints the failed
// statement after it, whose beginning says the most.
var errorMarks = []string{"ERROR:", "FATAL:", "PANIC:", "error:"}

// newTool prepares name with args, connecting to database as c says.
func newTool(ctx context.Context, c conn, database, what, name string, args ...string) *tool {
	t := &tool{Cmd: sdktool.Command(ctx, what, name, args...), ctx: ctx, what: what}
	t.Tail.FromFirst(errorMarks...)
	t.Env = append(os.Environ(), c.env(database)...)
	return t
}

// run runs the tool with stdin as its input and returns its output.
func (t *tool) run(stdin io.Reader) ([]byte, error) {
	var out limitedBuffer
	t.Stdin, t.Stdout = stdin, &out
	if err := t.Run(); err != nil {
		return nil, err
	}
	if out.overflow {
		return nil, fmt.Errorf("%s: more than %d bytes of output", t.what, maxQueryOutput)
	}
	return out.data, nil
}

// maxQueryOutput bounds what the driver's own queries may return.
const maxQueryOutput = 16 << 20

// limitedBuffer keeps up to maxQueryOutput bytes.
type limitedBuffer struct {
	data     []byte
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if len(b.data)+len(p) > maxQueryOutput {
		b.overflow = true
		return len(p), nil
	}
	b.data = append(b.data, p...)
	return len(p), nil
}

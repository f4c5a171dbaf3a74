package export

import (
	"context"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/influx"
)

// SelectDatabases returns the databases a backup takes: the wanted ones,
// which must all exist, or else every database but _internal. The
// physical backup selects as the logical dump does.
func SelectDatabases(ctx context.Context, c *influx.Client, wanted []string) ([]string, error) {
	return selectDatabases(ctx, c, wanted)
}

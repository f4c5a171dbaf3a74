package hyperbytedb

import (
	"context"
	"fmt"
	"io"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/export"
	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// Units of the counts a logical Backup records and Verify finds.
const (
	CountPoints = "points"
	CountSeries = "series"
)

var _ sdk.Verifier = Driver{}

// Verify implements sdk.Verifier: it parses a logical dump end to end,
// every DDL statement and every point, and counts its points and series
// as Backup counted them. It needs no server. A physical backup records
// no counts, so the runtime does not verify it this way.
func (Driver) Verify(ctx context.Context, _ *sdk.VerifyRequest, r io.Reader) (sdk.Counts, error) {
	counts, err := export.Count(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("the dump does not parse after %d points: %w", counts.Points, err)
	}
	sdk.Logger().Info("verified", "points", counts.Points, "series", counts.Series)
	return sdkCounts(counts), nil
}

// sdkCounts is counts as the SDK reports them.
func sdkCounts(counts export.Counts) sdk.Counts {
	return sdk.Counts{CountPoints: counts.Points, CountSeries: counts.Series}
}

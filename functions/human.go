package functions

import (
	"time"

	"github.com/dustin/go-humanize"
)

// humanBytes formats n in binary units as `kubectl get` readers expect
// them, e.g. "512 B", "1.2 MiB", "37 GiB".
func humanBytes(n uint64) string { return humanize.IBytes(n) }

// humanDuration rounds d for status fields: tenths of a second under a
// minute ("3.2s"), whole seconds above ("2m3s").
func humanDuration(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

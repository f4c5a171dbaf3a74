package functions

import (
	"fmt"
	"time"
)

// humanBytes formats n in binary units as `kubectl get` readers expect
// them, e.g. "512 B", "1.2 MiB", "37 GiB": one decimal below 10 units.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, exp := float64(n)/unit, 0
	for v >= unit && exp < 5 {
		v /= unit
		exp++
	}
	prefix := "KMGTPE"[exp : exp+1]
	if v < 10 {
		return fmt.Sprintf("%.1f %siB", v, prefix)
	}
	return fmt.Sprintf("%.0f %siB", v, prefix)
}

// humanDuration rounds d for status fields: tenths of a second under a
// minute ("3.2s"), whole seconds above ("2m3s").
func humanDuration(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

package hyperbytedbtest

import (
	"maps"
	"slices"
	"strings"
)

// Series is the number of distinct series of ds: measurement and tag set
// combinations, counted per database and retention policy.
func (ds Dataset) Series() int {
	seen := map[string]bool{}
	for _, p := range ds.Points {
		key := []string{p.DB, p.RP, p.Measurement}
		for _, k := range slices.Sorted(maps.Keys(p.Tags)) {
			key = append(key, k, p.Tags[k])
		}
		seen[strings.Join(key, "\x00")] = true
	}
	return len(seen)
}

package restic

import (
	"fmt"
	"regexp"
	"strconv"
)

// RetentionPolicy says which snapshots Forget keeps: the newest Last ones,
// the newest of each of the last Hourly hours, Daily days, and so on, plus
// every snapshot younger than Within. Zero fields keep nothing by that rule.
type RetentionPolicy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
	// Within is a restic duration such as "30d" or "1y6m"; empty for none.
	Within string
}

// withinPattern is restic's duration syntax: numbers with y, m, d or h.
var withinPattern = regexp.MustCompile(`^([0-9]+[ymdh])+$`)

// args returns restic forget's --keep-* options, none for an empty policy.
func (p RetentionPolicy) args() ([]string, error) {
	var args []string
	for _, keep := range []struct {
		flag string
		n    int
	}{
		{"--keep-last", p.Last}, {"--keep-hourly", p.Hourly}, {"--keep-daily", p.Daily},
		{"--keep-weekly", p.Weekly}, {"--keep-monthly", p.Monthly}, {"--keep-yearly", p.Yearly},
	} {
		if keep.n < 0 {
			return nil, fmt.Errorf("retention policy: %s %d is negative", keep.flag, keep.n)
		}
		if keep.n > 0 {
			args = append(args, keep.flag, strconv.Itoa(keep.n))
		}
	}
	if p.Within != "" {
		if !withinPattern.MatchString(p.Within) {
			return nil, fmt.Errorf("retention policy: max age %q is not like 30d or 1y6m", p.Within)
		}
		args = append(args, "--keep-within", p.Within)
	}
	return args, nil
}

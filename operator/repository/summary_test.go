package repository

import "testing"

func TestHumanBytes(t *testing.T) {
	cases := map[string]struct {
		n    int64  // bytes
		want string // as status.size shows them
	}{
		"zero":              {n: 0, want: "0 B"},
		"below a KiB":       {n: 1023, want: "1023 B"},
		"one KiB":           {n: 1024, want: "1.0 KiB"},
		"decimal below ten": {n: 3048, want: "3.0 KiB"},
		"no decimal above":  {n: 37 << 30, want: "37 GiB"},
		"mebibytes":         {n: 1258291, want: "1.2 MiB"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := humanBytes(tc.n); got != tc.want {
				t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
			}
		})
	}
}

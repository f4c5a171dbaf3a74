package restic

import (
	"slices"
	"testing"
)

func TestRetentionPolicyArgs(t *testing.T) {
	tests := map[string]struct {
		// policy is the retention policy to translate.
		policy RetentionPolicy
		// want are the expected restic forget options.
		want []string
		// wantErr says the policy is invalid.
		wantErr bool
	}{
		"empty":     {policy: RetentionPolicy{}, want: nil},
		"last only": {policy: RetentionPolicy{Last: 3}, want: []string{"--keep-last", "3"}},
		"every rule": {
			policy: RetentionPolicy{Last: 1, Hourly: 2, Daily: 3, Weekly: 4, Monthly: 5, Yearly: 6, Within: "30d"},
			want: []string{"--keep-last", "1", "--keep-hourly", "2", "--keep-daily", "3", "--keep-weekly", "4",
				"--keep-monthly", "5", "--keep-yearly", "6", "--keep-within", "30d"},
		},
		"compound max age":     {policy: RetentionPolicy{Within: "1y6m2d"}, want: []string{"--keep-within", "1y6m2d"}},
		"negative count":       {policy: RetentionPolicy{Daily: -1}, wantErr: true},
		"weeks are not a unit": {policy: RetentionPolicy{Within: "2w"}, wantErr: true},
		"no unit":              {policy: RetentionPolicy{Within: "30"}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.policy.args()
			if (err != nil) != tc.wantErr {
				t.Fatalf("args() error = %v, wantErr %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("args() = %q, want %q", got, tc.want)
			}
		})
	}
}

package sdk

import (
	"maps"
	"testing"
)

func TestResolveParams(t *testing.T) {
	declared := []Parameter{
		{Name: "url", Required: true},
		{Name: "batchSize", Default: "5000"},
		{Name: "databases"},
	}
	tests := map[string]struct {
		given   map[string]string // parameters as the host passed them
		want    map[string]string // parameters the driver must see
		wantErr string            // exact error, empty for success
	}{
		"defaults filled, absent optional left out": {
			given: map[string]string{"url": "http://db:8086"},
			want:  map[string]string{"url": "http://db:8086", "batchSize": "5000"},
		},
		"given value beats default, empty value kept": {
			given: map[string]string{"url": "u", "batchSize": "10", "databases": ""},
			want:  map[string]string{"url": "u", "batchSize": "10", "databases": ""},
		},
		"missing required": {
			given:   map[string]string{},
			wantErr: "missing required parameters: url",
		},
		"unknown names listed sorted with missing ones": {
			given:   map[string]string{"zeta": "1", "batchsize": "2"},
			wantErr: "missing required parameters: url; unknown parameters: batchsize, zeta",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ResolveParams(declared, tc.given)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

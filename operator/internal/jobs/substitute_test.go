package jobs

import "testing"

func TestSubstitute(t *testing.T) {
	vars := map[string]string{"url": "http://db:8086", "empty": "", "db": "telemetry"}
	cases := map[string]struct {
		in      string            // text with variables
		vars    map[string]string // variables; nil means the shared set
		want    string            // text after substitution
		wantErr string            // error text; "" means none
	}{
		"no variables":               {in: "--report-to=stdout", want: "--report-to=stdout"},
		"set variable":               {in: "--url=${url}", want: "--url=http://db:8086"},
		"two variables":              {in: "${db}@${url}", want: "telemetry@http://db:8086"},
		"default unused when set":    {in: "${db:=all}", want: "telemetry"},
		"default used when unset":    {in: "--mode=${mode:=merge}", want: "--mode=merge"},
		"empty default":              {in: "--databases=${databases:=}", want: "--databases="},
		"set to empty beats default": {in: "${empty:=x}", want: ""},
		"unset without default":      {in: "--auth=${authSecret}", wantErr: `no value for authSecret in "--auth=${authSecret}"`},
		"dollar without braces":      {in: "$url", want: "$url"},
		"value is not re-expanded":   {in: "${a}", vars: map[string]string{"a": "${url}", "url": "x"}, want: "${url}"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v := vars
			if tc.vars != nil {
				v = tc.vars
			}
			got, err := Substitute(tc.in, v)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Substitute(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

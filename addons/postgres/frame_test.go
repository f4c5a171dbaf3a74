package postgres

import (
	"bytes"
	"strings"
	"testing"
)

// encode frames sections as a backup does: globals, then one database
// per further section.
func encode(t *testing.T, sections ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(writeFrame(&b, headerFrame))
	must(writeFrame(&b, globalsFrame))
	must(copySection(&b, strings.NewReader(sections[0])))
	for i, s := range sections[1:] {
		must(writeDatabaseFrame(&b, database{Name: string(rune('a' + i)), Owner: "o"}))
		must(copySection(&b, strings.NewReader(s)))
	}
	must(writeFrame(&b, endFrame))
	return b.Bytes()
}

// decode reads every section back, as a restore does.
func decode(dump []byte) ([]string, error) {
	d := newDecoder(bytes.NewReader(dump))
	if err := d.header(); err != nil {
		return nil, err
	}
	var out []string
	for {
		f, err := d.frame()
		if err != nil {
			return out, err
		}
		if f.kind == frameEnd {
			return out, d.rest()
		}
		var b bytes.Buffer
		if err := d.copySection(&b, nil); err != nil {
			return out, err
		}
		out = append(out, b.String())
	}
}

func TestFramingRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 300<<10) // longer than both readers' buffers
	tests := map[string]struct {
		sections []string // globals, then databases
	}{
		"plain SQL":                   {sections: []string{"CREATE ROLE a;\n", "CREATE TABLE t (x int);\nCOPY t FROM stdin;\n1\n\\.\n"}},
		"lines that look like frames": {sections: []string{"--keepsake:end\n", "--keepsake:database {}\n--keepsake\n---keepsake:line x\n--keepsake:line y\n"}},
		"a long line":                 {sections: []string{"", "COPY t FROM stdin;\n" + long + "\n--keepsake:end" + long + "\n"}},
		"empty sections":              {sections: []string{"", "", ""}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dump := encode(t, tc.sections...)
			if n := bytes.Count(dump, []byte("\n"+endFrame+"\n")); n != 1 {
				t.Fatalf("dump has %d end frame lines, want 1", n)
			}
			got, err := decode(dump)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.sections) {
				t.Fatalf("decoded %d sections, want %d", len(got), len(tc.sections))
			}
			for i := range got {
				if got[i] != tc.sections[i] {
					t.Errorf("section %d = %q, want %q", i, truncate(got[i], 80), truncate(tc.sections[i], 80))
				}
			}
		})
	}
}

func TestFramingAddsAMissingNewline(t *testing.T) {
	got, err := decode(encode(t, "no newline", "SELECT 1;"))
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != "no newline\n" || got[1] != "SELECT 1;\n" {
		t.Fatalf("sections %q", got)
	}
}

func TestDecodingBadDumps(t *testing.T) {
	good := encode(t, "CREATE ROLE a;\n", "SELECT 1;\n")
	tests := map[string]struct {
		dump []byte // what the restore reads
		want string // substring of the error
	}{
		"not a dump":        {dump: []byte("PGDMP custom format"), want: "not a Keepsake PostgreSQL dump"},
		"empty":             {dump: nil, want: "read the dump's header"},
		"truncated":         {dump: good[:len(good)-len(endFrame)-5], want: "dump ends before its end frame"},
		"bytes after end":   {dump: append(bytes.Clone(good), "extra"...), want: "5 bytes after its end frame"},
		"unknown frame":     {dump: []byte(headerFrame + "\n--keepsake:tablespace x\n"), want: "where a frame line belongs"},
		"bad database json": {dump: []byte(headerFrame + "\n--keepsake:database {\n"), want: "bad database frame"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decode(tc.dump)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestRestoreRewrites(t *testing.T) {
	tests := map[string]struct {
		rewrite func([]byte) []byte
		line    string // the dump's line
		want    string // what psql gets
	}{
		"the backup's restrict key": {rewrite: dropRestrict, line: `\restrict ` + restrictKey + "\n", want: ""},
		"its unrestrict":            {rewrite: dropRestrict, line: `\unrestrict ` + restrictKey + "\n", want: ""},
		"another key stays":         {rewrite: dropRestrict, line: "\\unrestrict abc\n", want: "\\unrestrict abc\n"},
		"a role": {rewrite: createRoleIfMissing, line: "CREATE ROLE \"Al ice\";\n",
			want: "DO $keepsake_role$BEGIN CREATE ROLE \"Al ice\"; EXCEPTION WHEN duplicate_object THEN NULL; END$keepsake_role$;\n"},
		"a role name holding the tag": {rewrite: createRoleIfMissing, line: "CREATE ROLE \"x$keepsake_role$\";\n", want: "CREATE ROLE \"x$keepsake_role$\";\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := string(tc.rewrite([]byte(tc.line))); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseRestoreOptions(t *testing.T) {
	tests := map[string]struct {
		params map[string]string // besides the defaults
		want   string            // substring of the error; "" for none
	}{
		"defaults":         {},
		"replace":          {params: map[string]string{ParamMode: ModeReplace}},
		"unknown mode":     {params: map[string]string{ParamMode: "merge"}, want: `mode: "merge" is neither create nor replace`},
		"bad globals":      {params: map[string]string{ParamGlobals: "yes"}, want: `globals: "yes" is neither true nor false`},
		"not a pair":       {params: map[string]string{ParamDatabaseMapping: "shop"}, want: `"shop" is not old:new`},
		"mapped twice":     {params: map[string]string{ParamDatabaseMapping: "a:b,a:c"}, want: `"a" is mapped twice`},
		"two onto one":     {params: map[string]string{ParamDatabaseMapping: "a:c,b:c"}, want: `"a" and "b" are both mapped to "c"`},
		"a rename mapping": {params: map[string]string{ParamDatabaseMapping: " shop : shop_copy "}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			params := map[string]string{ParamMode: ModeCreate, ParamGlobals: "true"}
			for k, v := range tc.params {
				params[k] = v
			}
			opts, err := parseRestoreOptions(params)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			case name == "a rename mapping" && opts.target("shop") != "shop_copy":
				t.Fatalf("shop is restored as %q", opts.target("shop"))
			}
		})
	}
}

package sdk

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestList(t *testing.T) {
	if got := List(" a, ,b ,, c d "); !slices.Equal(got, []string{"a", "b", "c d"}) {
		t.Fatalf("List = %q", got)
	}
	if got := List(""); got != nil {
		t.Fatalf("List of nothing = %q, want none", got)
	}
}

func TestMapping(t *testing.T) {
	got, err := Mapping("m", "a:b, c : d")
	if err != nil || !maps.Equal(got, map[string]string{"a": "b", "c": "d"}) {
		t.Fatalf("Mapping = %v, %v", got, err)
	}
	for value, want := range map[string]string{
		"a":       `m: "a" is not old:new`,
		"a:":      `m: "a:" is not old:new`,
		"a:b,a:c": `m: "a" is mapped twice`,
		"a:c,b:c": `m: "a" and "b" are both mapped to "c"`,
	} {
		if _, err := Mapping("m", value); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Mapping(%q) error = %v, want %q", value, err, want)
		}
	}
}

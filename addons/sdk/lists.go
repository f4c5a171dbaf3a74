package sdk

import (
	"fmt"
	"strings"
)

// List splits a comma-separated parameter value (e.g. databases=a, b)
// into its items, trimmed, dropping blank ones.
func List(value string) []string {
	var out []string
	for _, item := range strings.Split(value, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Mapping parses a parameter of old:new pairs (e.g.
// databaseMapping=shop:shop_copy, crm:crm_copy) into a map from old to new.
// A pair without both names, a name mapped twice and two names mapped to
// one are errors naming the parameter.
func Mapping(param, value string) (map[string]string, error) {
	out := map[string]string{}
	sources := map[string]string{} // new name -> the old one mapped to it
	for _, pair := range List(value) {
		from, to, ok := strings.Cut(pair, ":")
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		if !ok || from == "" || to == "" {
			return nil, fmt.Errorf("%s: %q is not old:new", param, pair)
		}
		if _, dup := out[from]; dup {
			return nil, fmt.Errorf("%s: %q is mapped twice", param, from)
		}
		if other, dup := sources[to]; dup {
			return nil, fmt.Errorf("%s: %q and %q are both mapped to %q", param, other, from, to)
		}
		out[from], sources[to] = to, from
	}
	return out, nil
}

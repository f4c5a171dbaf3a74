package sdk

import (
	"fmt"
	"sort"
	"strings"
)

// ResolveParams checks given against the declared parameters and returns
// the parameters a driver sees: every declared parameter that was given or
// has a default. It fails on unknown names (a typo must not silently fall
// back to a default) and on missing required parameters; the error names
// all of them at once.
func ResolveParams(declared []Parameter, given map[string]string) (map[string]string, error) {
	known := make(map[string]bool, len(declared))
	resolved := make(map[string]string, len(declared))
	var missing []string
	for _, p := range declared {
		known[p.Name] = true
		v, ok := given[p.Name]
		switch {
		case ok:
			resolved[p.Name] = v
		case p.Required:
			missing = append(missing, p.Name)
		case p.Default != "":
			resolved[p.Name] = p.Default
		}
	}
	var unknown []string
	for name := range given {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	return resolved, paramsError(missing, unknown)
}

func paramsError(missing, unknown []string) error {
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "missing required parameters: "+strings.Join(missing, ", "))
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		problems = append(problems, "unknown parameters: "+strings.Join(unknown, ", "))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(problems, "; "))
}

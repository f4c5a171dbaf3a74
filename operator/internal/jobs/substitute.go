// Package jobs assembles the Jobs that run Addon tasks: an init container
// that copies the Keepsake runtime out of the keepsake image, then the
// Function's container, with secrets mounted as files and the "restricted"
// Pod Security settings.
package jobs

import (
	"fmt"
	"regexp"
	"strings"
)

// variable matches ${name} and ${name:=default}; default may be empty and
// may not contain '}'.
var variable = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:=([^}]*))?\}`)

// Substitute replaces ${name} in s by vars[name], and ${name:=default} by
// vars[name] or default when name is unset. A variable that is unset and
// has no default is an error naming it, so a Function that needs a
// parameter the user did not give fails before any Job starts.
func Substitute(s string, vars map[string]string) (string, error) {
	var missing []string
	out := variable.ReplaceAllStringFunc(s, func(m string) string {
		sub := variable.FindStringSubmatch(m)
		if v, ok := vars[sub[1]]; ok {
			return v
		}
		if sub[2] != "" {
			return sub[3]
		}
		missing = append(missing, sub[1])
		return m
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for %s in %q", strings.Join(missing, ", "), s)
	}
	return out, nil
}

// SubstituteAll applies Substitute to every string of list.
func SubstituteAll(list []string, vars map[string]string) ([]string, error) {
	if list == nil {
		return nil, nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		v, err := Substitute(s, vars)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

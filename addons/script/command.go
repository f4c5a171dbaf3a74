package script

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/addons/sdk/tool"
)

// shell runs every command, as `/bin/sh -c <command>`: the one thing the
// user's image must have besides the database's tools.
const shell = "/bin/sh"

// prepare checks the command parameter and builds the run: the driver's
// environment plus the target's and the Secret's variables, in a process
// group of its own, so that cancelling kills the whole pipeline, not only
// the shell.
func prepare(ctx context.Context, op, line, param string, req sdk.Request) (*tool.Cmd, error) {
	if strings.TrimSpace(line) == "" {
		return nil, fmt.Errorf("parameter %s is empty: set the shell command to run for the %s", param, op)
	}
	env, err := commandEnv(req)
	if err != nil {
		return nil, err
	}
	c := tool.Command(ctx, op+" command", shell, "-c", line)
	c.Env = env
	return c, nil
}

// envName is what a Secret key must look like to become a variable.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// commandEnv is the driver's environment, the target's KEEPSAKE_TARGET_*
// and KEEPSAKE_COMPONENT, and one variable per key of the mounted Secret.
func commandEnv(req sdk.Request) ([]string, error) {
	env := append(os.Environ(),
		"KEEPSAKE_TARGET_GROUP="+req.Target.APIGroup, "KEEPSAKE_TARGET_KIND="+req.Target.Kind,
		"KEEPSAKE_TARGET_NAME="+req.Target.Name, "KEEPSAKE_TARGET_NAMESPACE="+req.Target.Namespace,
		"KEEPSAKE_COMPONENT="+req.Component)
	dir, mounted := req.Credentials[ParamSecret]
	if !mounted {
		if name := req.Params[ParamSecret]; name != "" {
			return nil, fmt.Errorf("secret %q is set but not mounted as credential %s", name, ParamSecret)
		}
		return env, nil
	}
	vars, err := secretEnv(dir)
	if err != nil {
		return nil, fmt.Errorf("read the mounted secret %s: %w", req.Params[ParamSecret], err)
	}
	return append(env, vars...), nil
}

// secretEnv reads a mounted Secret, one file per key. Kubernetes' own
// entries (..data and the like) and keys that are no variable name are
// skipped. Values are never logged.
func secretEnv(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, e := range entries {
		if !envName.MatchString(e.Name()) {
			continue
		}
		value, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", e.Name(), err)
		}
		env = append(env, e.Name()+"="+string(value))
	}
	return env, nil
}

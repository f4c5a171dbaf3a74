package hyperbytedb

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"testing"

	"sigs.k8s.io/yaml"
)

// Shapes of the manifests, as much as this test checks.
type addonManifest struct {
	APIVersion, Kind string
	Metadata         struct{ Name string }
	Spec             struct {
		BackupTasks, RestoreTasks []struct {
			Name, Function, Driver string
			Singleton              bool
			TargetMustBeStopped    bool
			Parameters             []struct {
				Name, Usage, Default, Type string
				Required                   bool
			}
		}
	}
}

type functionManifest struct {
	APIVersion, Kind string
	Metadata         struct{ Name string }
	Spec             struct {
		Image         string
		Command, Args []string
	}
}

var variable = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:=[^}]*)?\}`)

// fixedParam is a --param=name= argument, whatever its value.
var fixedParam = regexp.MustCompile(`^--param=([A-Za-z_][A-Za-z0-9_]*)=`)

// TestManifestsMatchDriver keeps the Addon and Functions in step with the
// driver: same parameters and defaults, and every ${variable} of a
// Function's args is a parameter of its task (or ${driver}).
func TestManifestsMatchDriver(t *testing.T) {
	info, _ := Driver{}.Info(context.Background())
	declared := map[string]string{}
	for _, p := range info.Parameters {
		declared[p.Name] = p.Default
	}
	var addon addonManifest
	readYAML(t, "manifests/addon.yaml", &addon)
	if addon.APIVersion != "addons.keepsake.dev/v1alpha1" || addon.Kind != "Addon" {
		t.Fatalf("addon.yaml is %s %s", addon.APIVersion, addon.Kind)
	}
	functions := map[string]functionManifest{}
	docs := bytes.Split(readFile(t, "manifests/function.yaml"), []byte("\n---\n"))
	for _, doc := range docs {
		var f functionManifest
		if err := yaml.UnmarshalStrict(doc, &f); err != nil {
			t.Fatalf("function.yaml: %v", err)
		}
		functions[f.Metadata.Name] = f
	}
	used := map[string]bool{}
	for _, task := range append(addon.Spec.BackupTasks, addon.Spec.RestoreTasks...) {
		params := map[string]bool{"driver": true}
		// The operator sets targetDir for the Jobs of an offline restore.
		params["targetDir"] = task.TargetMustBeStopped
		for _, p := range task.Parameters {
			def, ok := declared[p.Name]
			if !ok || def != p.Default {
				t.Errorf("task %s parameter %s (default %q): driver declares %v (default %q)", task.Name, p.Name, p.Default, ok, def)
			}
			// A Secret's name must be mounted, not passed as a string.
			if secret := p.Name == ParamAuthSecret; secret != (p.Type == "secret") {
				t.Errorf("task %s parameter %s has type %q", task.Name, p.Name, p.Type)
			}
			params[p.Name], used[p.Name] = true, true
		}
		f, ok := functions[task.Function]
		if !ok || f.Kind != "Function" || f.Spec.Image == "" {
			t.Fatalf("task %s: function %q missing or incomplete", task.Name, task.Function)
		}
		for _, arg := range f.Spec.Args {
			// A parameter the Function fixes, e.g. --param=format=physical.
			if m := fixedParam.FindStringSubmatch(arg); m != nil {
				used[m[1]] = true
			}
			for _, m := range variable.FindAllStringSubmatch(arg, -1) {
				if !params[m[1]] {
					t.Errorf("function %s uses ${%s}, which task %s does not declare", task.Function, m[1], task.Name)
				}
			}
		}
	}
	for name := range declared {
		if !used[name] {
			t.Errorf("driver parameter %s is in no task", name)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(readFile(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

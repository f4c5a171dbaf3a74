package addons

import (
	"bytes"
	"regexp"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// Shapes of the manifests, as much as the test checks.
type addonManifest struct {
	APIVersion, Kind string
	Metadata         struct{ Name string }
	Spec             struct {
		BackupTasks, RestoreTasks []struct {
			Name, Function, Driver string
			Singleton              bool
			TargetMustBeStopped    bool
			MountsTargetVolume     bool
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

var manifestVariable = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:=([^}]*))?\}`)

// passedParam is a --param=name= argument of a Function, whatever its
// value: a task's parameter, one the Function fixes itself (e.g.
// --param=format=physical) or one the operator sets (${targetDir}).
var passedParam = regexp.MustCompile(`^--param=([A-Za-z_][A-Za-z0-9_]*)=`)

// CheckManifests fails t unless an addon's Addon (addonYAML, named name)
// and Functions (functionsYAML, documents separated by ---) are in step
// with its driver's Info: the same parameters and defaults, a usage each,
// authSecret of type secret, every task running driver, every
// ${variable} of a Function's args a parameter of its task with the same
// default (or ${driver}, or ${targetDir} in a task whose target must be
// stopped or that mounts the target's volume: the operator sets those),
// and every parameter in some task or passed by a Function
// (--param=name=value).
func CheckManifests(t testing.TB, info sdk.Info, name, driver string, addonYAML, functionsYAML []byte) {
	t.Helper()
	declared := map[string]string{}
	for _, p := range info.Parameters {
		declared[p.Name] = p.Default
	}
	var addon addonManifest
	if err := yaml.UnmarshalStrict(addonYAML, &addon); err != nil {
		t.Fatalf("the Addon: %v", err)
	}
	if addon.APIVersion != "addons.keepsake.dev/v1alpha1" || addon.Kind != "Addon" || addon.Metadata.Name != name {
		t.Fatalf("the Addon is %s %s %s, want addons.keepsake.dev/v1alpha1 Addon %s", addon.APIVersion, addon.Kind, addon.Metadata.Name, name)
	}
	functions := map[string]functionManifest{}
	for _, doc := range bytes.Split(functionsYAML, []byte("\n---\n")) {
		var f functionManifest
		if err := yaml.UnmarshalStrict(doc, &f); err != nil {
			t.Fatalf("the Functions: %v", err)
		}
		functions[f.Metadata.Name] = f
	}
	used := map[string]bool{}
	for _, task := range append(addon.Spec.BackupTasks, addon.Spec.RestoreTasks...) {
		params := map[string]string{"driver": ""}
		if task.TargetMustBeStopped || task.MountsTargetVolume {
			params["targetDir"] = "" // the PVC's mount point in an offline restore or a backup reading it
		}
		for _, p := range task.Parameters {
			def, ok := declared[p.Name]
			if !ok || def != p.Default || p.Usage == "" {
				t.Errorf("task %s parameter %s (default %q): driver declares %v (default %q)", task.Name, p.Name, p.Default, ok, def)
			}
			if secret := p.Name == "authSecret"; secret != (p.Type == "secret") {
				t.Errorf("task %s parameter %s has type %q", task.Name, p.Name, p.Type)
			}
			params[p.Name], used[p.Name] = p.Default, true
		}
		if task.Driver != driver {
			t.Errorf("task %s runs driver %s", task.Name, task.Driver)
		}
		f, ok := functions[task.Function]
		if !ok || f.Kind != "Function" || f.Spec.Image == "" {
			t.Fatalf("task %s: function %q missing or incomplete", task.Name, task.Function)
		}
		for _, arg := range f.Spec.Args {
			if m := passedParam.FindStringSubmatch(arg); m != nil {
				used[m[1]] = true // the Function passes it to the driver
			}
			for _, m := range manifestVariable.FindAllStringSubmatch(arg, -1) {
				def, ok := params[m[1]]
				if !ok || (m[1] != "driver" && m[1] != "targetDir" && def != m[3]) {
					t.Errorf("function %s uses %s, which task %s declares %v with default %q", task.Function, m[0], task.Name, ok, def)
				}
			}
		}
	}
	for param := range declared {
		if !used[param] {
			t.Errorf("driver parameter %s is in no task", param)
		}
	}
}

// Package chart tests the Helm chart charts/keepsake with the real tools:
// bin/helm renders and lints it, the pod-security-admission library judges
// the operator's pod, and a real kube-apiserver (with Keepsake's CRDs)
// accepts what it renders.
package chart

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/keepsake-dev/keepsake/test/servers"
)

// namespace is the release namespace every rendering uses.
const namespace = "keepsake-system"

// defaultImage is the image reference values.yaml makes.
const defaultImage = "keepsake.local/keepsake:dev"

func chartDir(t *testing.T) string {
	return filepath.Join(servers.RepoRoot(t), "charts", "keepsake")
}

// render runs `helm template` on the chart with extra helm flags (e.g.
// --set) and returns its output.
func render(t *testing.T, flags ...string) string {
	t.Helper()
	args := append([]string{"template", "keepsake", chartDir(t), "--namespace", namespace}, flags...)
	return run(t, servers.Bin(t, "helm"), args...)
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// objects decodes a multi-document YAML stream, skipping empty documents.
func objects(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var out []*unstructured.Unstructured
	for {
		var u unstructured.Unstructured
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decode rendered manifests: %v", err)
		}
		if len(u.Object) > 0 {
			out = append(out, &u)
		}
	}
}

// find returns the one rendered object of kind and name, failing the test
// when there is none.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string, into any) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
				t.Fatalf("convert %s %s: %v", kind, name, err)
			}
			return
		}
	}
	t.Fatalf("chart renders no %s %s", kind, name)
}

func TestChartRendersEveryObject(t *testing.T) {
	want := map[string]string{ // "Kind/name" -> namespace ("" when cluster-scoped)
		"ServiceAccount/keepsake-operator":              namespace,
		"ClusterRole/keepsake-operator":                 "",
		"ClusterRoleBinding/keepsake-operator":          "",
		"Role/keepsake-operator-leader-election":        namespace,
		"RoleBinding/keepsake-operator-leader-election": namespace,
		"Deployment/keepsake-operator":                  namespace,
		"Service/keepsake-operator-metrics":             namespace,
		"Addon/hyperbytedb":                             "",
		"Function/hyperbytedb-logical-backup":           "",
		"Function/hyperbytedb-logical-restore":          "",
		"Function/hyperbytedb-physical-backup":          "",
		"Function/hyperbytedb-physical-restore":         "",
		"Function/hyperbytedb-tool-backup":              "",
		"Function/hyperbytedb-tool-restore":             "",
		"Addon/script":                                  "",
		"Function/script-backup":                        "",
		"Function/script-restore":                       "",
		"Addon/postgres":                                "",
		"Function/postgres-logical-backup":              "",
		"Function/postgres-logical-restore":             "",
	}
	got := map[string]string{}
	for _, o := range objects(t, render(t)) {
		key := o.GetKind() + "/" + o.GetName()
		if _, dup := got[key]; dup {
			t.Errorf("%s rendered twice", key)
		}
		got[key] = o.GetNamespace()
	}
	for key, ns := range want {
		gotNS, ok := got[key]
		switch {
		case !ok:
			t.Errorf("chart renders no %s", key)
		case gotNS != ns:
			t.Errorf("%s in namespace %q, want %q", key, gotNS, ns)
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			t.Errorf("chart renders %s, which this test does not expect: add it", key)
		}
	}
}

func TestOperatorPodIsRestricted(t *testing.T) {
	var d appsv1.Deployment
	find(t, objects(t, render(t)), "Deployment", "keepsake-operator", &d)
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	tmpl := d.Spec.Template
	for _, r := range evaluator.EvaluatePod(restricted, &tmpl.ObjectMeta, &tmpl.Spec) {
		if !r.Allowed {
			t.Errorf("restricted check failed: %s: %s", r.ForbiddenReason, r.ForbiddenDetail)
		}
	}
	c := tmpl.Spec.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("operator container's root filesystem is writable")
	}
	if u := tmpl.Spec.SecurityContext.RunAsUser; u == nil || *u != 65532 {
		t.Errorf("operator pod runs as user %v, want 65532", u)
	}
}

func TestOperatorRunsWithFlagsItAccepts(t *testing.T) {
	cases := map[string]struct {
		set    []string // helm --set values
		want   []string // args the operator container must get
		absent []string // prefixes no arg of the operator container may have
	}{
		"defaults": {
			want: []string{"operator", "--image=" + defaultImage, "--leader-elect",
				"--leader-election-namespace=" + namespace, "--metrics-bind-address=:8080",
				"--health-probe-bind-address=:8081"},
			// Each kind of Job gets its own ServiceAccount.
			absent: []string{"--job-service-account", "--trigger-service-account"},
		},
		"service accounts and image": {
			set: []string{"image.repository=registry.example/keepsake", "image.tag=v1.2.3",
				"jobServiceAccount=backup-jobs", "triggerServiceAccount=backup-trigger"},
			want: []string{"--image=registry.example/keepsake:v1.2.3",
				"--job-service-account=backup-jobs", "--trigger-service-account=backup-trigger"},
		},
		"log level": {
			set:  []string{"logLevel=debug"},
			want: []string{"--log-level=debug"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var flags []string
			for _, s := range tc.set {
				flags = append(flags, "--set", s)
			}
			var d appsv1.Deployment
			find(t, objects(t, render(t, flags...)), "Deployment", "keepsake-operator", &d)
			c := d.Spec.Template.Spec.Containers[0]
			for _, w := range tc.want {
				if !slices.Contains(c.Args, w) {
					t.Errorf("operator args %q lack %q", c.Args, w)
				}
			}
			for _, a := range tc.absent {
				if slices.ContainsFunc(c.Args, func(arg string) bool { return strings.HasPrefix(arg, a) }) {
					t.Errorf("operator args %q have %s", c.Args, a)
				}
			}
			if want := strings.TrimPrefix(c.Args[1], "--image="); c.Image != want {
				t.Errorf("operator runs image %q but passes --image=%s", c.Image, want)
			}
			checkOperatorAccepts(t, c.Command, c.Args)
		})
	}
}

// checkOperatorAccepts fails when args hold a flag `keepsake operator`
// does not define, or give a value-less flag that is not a bool.
func checkOperatorAccepts(t *testing.T, command, args []string) {
	t.Helper()
	if !slices.Equal(command, []string{"/usr/local/bin/keepsake"}) || len(args) == 0 || args[0] != "operator" {
		t.Fatalf("operator container runs %q %q, want /usr/local/bin/keepsake operator ...", command, args)
	}
	defined := operatorFlags(t)
	for _, arg := range args[1:] {
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		method, ok := defined[name]
		switch {
		case !ok:
			t.Errorf("keepsake operator defines no flag --%s (operator/main.go)", name)
		case !hasValue && method != "BoolVar" && method != "Bool":
			t.Errorf("--%s is a %s flag and needs a value", name, method)
		}
	}
}

// operatorFlags returns the flags operator/main.go defines on its FlagSet,
// name -> FlagSet method. It reads the source rather than importing the
// package, so this test does not build the whole operator.
func operatorFlags(t *testing.T) map[string]string {
	t.Helper()
	path := filepath.Join(servers.RepoRoot(t), "operator", "main.go")
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]string{}
	ast.Inspect(file, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || !flagSetMethod.MatchString(sel.Sel.Name) || len(call.Args) < 2 {
			return true
		}
		nameArg := call.Args[0] // fs.String("name", ...)
		if strings.HasSuffix(sel.Sel.Name, "Var") {
			nameArg = call.Args[1] // fs.StringVar(&v, "name", ...)
		}
		if lit, ok := nameArg.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			flags[strings.Trim(lit.Value, "`\"")] = sel.Sel.Name
		}
		return true
	})
	if len(flags) == 0 {
		t.Fatalf("found no flag definitions in %s", path)
	}
	return flags
}

// flagSetMethod matches the flag.FlagSet methods that define a flag.
var flagSetMethod = regexp.MustCompile(`^(Bool|String|Int|Int64|Uint|Uint64|Float64|Duration|Text|Func|BoolFunc)(Var)?$|^Var$`)

// generatedRole reads the ClusterRole `make generate` writes from the
// reconcilers' RBAC markers.
func generatedRole(t *testing.T) rbacv1.ClusterRole {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "files", "operator-role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatalf("parse files/operator-role.yaml: %v", err)
	}
	if len(role.Rules) == 0 {
		t.Fatal("files/operator-role.yaml holds no rules")
	}
	return role
}

func TestClusterRoleIsTheGeneratedOne(t *testing.T) {
	var role rbacv1.ClusterRole
	find(t, objects(t, render(t)), "ClusterRole", "keepsake-operator", &role)
	if want := generatedRole(t).Rules; !equality.Semantic.DeepEqual(role.Rules, want) {
		t.Errorf("ClusterRole rules differ from files/operator-role.yaml:\n got %+v\nwant %+v", role.Rules, want)
	}
}

// wildcardRules are the rules allowed to name every API group and resource,
// keyed "groups resources verbs", with the reason they exist. Any other
// wildcard fails TestClusterRoleGrantsTheLeast.
var wildcardRules = map[string]string{}

func TestClusterRoleGrantsTheLeast(t *testing.T) {
	var role rbacv1.ClusterRole
	find(t, objects(t, render(t)), "ClusterRole", "keepsake-operator", &role)
	readOnly := []string{"get", "list", "watch"}
	for _, r := range role.Rules {
		if slices.Contains(r.Verbs, "*") {
			t.Errorf("rule %+v grants every verb", r)
		}
		if slices.Contains(r.APIGroups, "*") || slices.Contains(r.Resources, "*") {
			key := fmt.Sprintf("%s %s %s", strings.Join(r.APIGroups, ","), strings.Join(r.Resources, ","), strings.Join(r.Verbs, ","))
			if _, ok := wildcardRules[key]; !ok {
				t.Errorf("rule %+v names every API group or resource", r)
			}
		}
		coreGroup := slices.Contains(r.APIGroups, "") || slices.Contains(r.APIGroups, "*")
		secrets := slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "*")
		if coreGroup && secrets {
			// create, for the copies of another namespace's storage Secrets
			// a Job mounts (immutable, owned by the Job, garbage-collected
			// with it: docs/multi-namespace.md); never update or delete.
			for _, v := range r.Verbs {
				if !slices.Contains(readOnly, v) && v != "create" {
					t.Errorf("rule %+v lets the operator %s Secrets", r, v)
				}
			}
		}
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %+v grants non-resource URLs", r)
		}
	}
}

// imageLine is a Function's image line, which differs between
// addons/hyperbytedb/manifests and the chart's copy.
var imageLine = regexp.MustCompile(`(?m)^  image: .*$`)

// TestHyperbytedbManifestsMatchTheChartCopies: the chart's copies are the
// manifests but for the image lines, which are addons.hyperbytedb.image,
// or addons.hyperbytedb.toolImage for the Functions of HyperbyteDB's own
// tool (their image is the cluster's with the driver copied in).
func TestHyperbytedbManifestsMatchTheChartCopies(t *testing.T) {
	const chartImage = `  image: {{ .Values.addons.hyperbytedb.image | default (include "keepsake.image" .) | quote }}`
	const toolImage = `  image: {{ .Values.addons.hyperbytedb.toolImage | default (include "keepsake.image" .) | quote }}`
	root := servers.RepoRoot(t)
	for _, name := range []string{"addon.yaml", "function.yaml"} {
		source, err := os.ReadFile(filepath.Join(root, "addons", "hyperbytedb", "manifests", name))
		if err != nil {
			t.Fatal(err)
		}
		copied, err := os.ReadFile(filepath.Join(chartDir(t), "files", "addons", "hyperbytedb", name))
		if err != nil {
			t.Fatal(err)
		}
		sourceImages := imageLine.FindAllString(string(source), -1)
		copiedImages := imageLine.FindAllString(string(copied), -1)
		if len(sourceImages) != len(copiedImages) {
			t.Errorf("%s: %d image lines in the manifests, %d in the chart's copy", name, len(sourceImages), len(copiedImages))
		}
		for i, l := range copiedImages {
			want := chartImage
			if i < len(sourceImages) && strings.Contains(sourceImages[i], "/hyperbytedb-with-driver:") {
				want = toolImage
			}
			if l != want {
				t.Errorf("%s: chart's copy has %q, want %q", name, l, want)
			}
		}
		if a, b := imageLine.ReplaceAllString(string(source), ""), imageLine.ReplaceAllString(string(copied), ""); a != b {
			t.Errorf("charts/keepsake/files/addons/hyperbytedb/%s differs from addons/hyperbytedb/manifests/%s "+
				"beyond the image line: copy it again and keep the templated image line", name, name)
		}
	}
}

func TestScriptManifestsMatchTheChartCopies(t *testing.T) {
	const chartImage = `  image: {{ .Values.addons.script.image | quote }}`
	root := servers.RepoRoot(t)
	for _, name := range []string{"addon.yaml", "function.yaml"} {
		source, err := os.ReadFile(filepath.Join(root, "addons", "script", "manifests", name))
		if err != nil {
			t.Fatal(err)
		}
		copied, err := os.ReadFile(filepath.Join(chartDir(t), "files", "addons", "script", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range imageLine.FindAllString(string(copied), -1) {
			if l != chartImage {
				t.Errorf("%s: chart's copy has %q, want %q", name, l, chartImage)
			}
		}
		if a, b := imageLine.ReplaceAllString(string(source), ""), imageLine.ReplaceAllString(string(copied), ""); a != b {
			t.Errorf("charts/keepsake/files/addons/script/%s differs from addons/script/manifests/%s beyond the image line", name, name)
		}
	}
}

func TestPostgresManifestsMatchTheChartCopies(t *testing.T) {
	const chartImage = `  image: {{ .Values.addons.postgres.image | quote }}`
	root := servers.RepoRoot(t)
	for _, name := range []string{"addon.yaml", "function.yaml"} {
		source, err := os.ReadFile(filepath.Join(root, "addons", "postgres", "manifests", name))
		if err != nil {
			t.Fatal(err)
		}
		copied, err := os.ReadFile(filepath.Join(chartDir(t), "files", "addons", "postgres", name))
		if err != nil {
			t.Fatal(err)
		}
		if a, b := len(imageLine.FindAllString(string(source), -1)), len(imageLine.FindAllString(string(copied), -1)); a != b {
			t.Errorf("%s: %d image lines in the manifests, %d in the chart's copy", name, a, b)
		}
		for _, l := range imageLine.FindAllString(string(copied), -1) {
			if l != chartImage {
				t.Errorf("%s: chart's copy has %q, want %q", name, l, chartImage)
			}
		}
		if a, b := imageLine.ReplaceAllString(string(source), ""), imageLine.ReplaceAllString(string(copied), ""); a != b {
			t.Errorf("charts/keepsake/files/addons/postgres/%s differs from addons/postgres/manifests/%s beyond the image line", name, name)
		}
	}
}

func TestPostgresAddonValues(t *testing.T) {
	count := func(objs []*unstructured.Unstructured) (n int, images []string) {
		for _, o := range objs {
			if strings.HasPrefix(o.GetName(), "postgres") {
				n++
				if img, ok, _ := unstructured.NestedString(o.Object, "spec", "image"); ok {
					images = append(images, img)
				}
			}
		}
		return n, images
	}
	n, images := count(objects(t, render(t, "--set", "addons.postgres.image=registry.example/postgres-driver:v9")))
	if n != 3 || len(images) != 2 || images[0] != "registry.example/postgres-driver:v9" || images[1] != images[0] {
		t.Errorf("rendered %d postgres objects with images %v, want the Addon and two Functions on registry.example/postgres-driver:v9", n, images)
	}
	if n, _ := count(objects(t, render(t, "--set", "addons.postgres.enabled=false"))); n != 0 {
		t.Errorf("addons.postgres.enabled=false still renders %d postgres objects", n)
	}
}

func TestScriptAddonValues(t *testing.T) {
	count := func(objs []*unstructured.Unstructured) (n int, images []string) {
		for _, o := range objs {
			if strings.HasPrefix(o.GetName(), "script") {
				n++
				if img, ok, _ := unstructured.NestedString(o.Object, "spec", "image"); ok {
					images = append(images, img)
				}
			}
		}
		return n, images
	}
	n, images := count(objects(t, render(t, "--set", "addons.script.image=registry.example/mariadb:11")))
	if n != 3 || len(images) != 2 || images[0] != "registry.example/mariadb:11" || images[1] != images[0] {
		t.Errorf("rendered %d script objects with images %v, want the Addon and two Functions on registry.example/mariadb:11", n, images)
	}
	if n, _ := count(objects(t, render(t, "--set", "addons.script.enabled=false"))); n != 0 {
		t.Errorf("addons.script.enabled=false still renders %d script objects", n)
	}
}

func TestHyperbytedbAddonValues(t *testing.T) {
	cases := map[string]struct {
		set   []string // helm --set values
		image string   // the Functions' image; "" when no Function may render
		// toolImage is the image of the Functions of HyperbyteDB's own
		// tool (hyperbytedb-tool-*); image when "".
		toolImage string
	}{
		"defaults":       {image: defaultImage},
		"own image":      {set: []string{"addons.hyperbytedb.image=registry.example/hyperbytedb-driver:v9"}, image: "registry.example/hyperbytedb-driver:v9", toolImage: defaultImage},
		"own tool image": {set: []string{"addons.hyperbytedb.toolImage=registry.example/hyperbytedb-with-driver:v9"}, image: defaultImage, toolImage: "registry.example/hyperbytedb-with-driver:v9"},
		"operator image": {set: []string{"image.tag=v2"}, image: "keepsake.local/keepsake:v2"},
		"disabled":       {set: []string{"addons.hyperbytedb.enabled=false"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var flags []string
			for _, s := range tc.set {
				flags = append(flags, "--set", s)
			}
			addons, functions := 0, 0
			for _, o := range objects(t, render(t, flags...)) {
				if !strings.HasPrefix(o.GetName(), "hyperbytedb") {
					continue // another addon's
				}
				switch o.GetKind() {
				case "Addon":
					addons++
				case "Function":
					functions++
					want := tc.image
					if strings.HasPrefix(o.GetName(), "hyperbytedb-tool-") && tc.toolImage != "" {
						want = tc.toolImage
					}
					if img, _, _ := unstructured.NestedString(o.Object, "spec", "image"); img != want {
						t.Errorf("Function %s runs %q, want %q", o.GetName(), img, want)
					}
				}
			}
			want := 0
			if tc.image != "" {
				want = 1
			}
			// Logical, physical and HyperbyteDB's tool, backup and restore.
			if addons != want || functions != 6*want {
				t.Errorf("rendered %d Addons and %d Functions, want %d and %d", addons, functions, want, 6*want)
			}
		})
	}
}

func TestHelmLint(t *testing.T) {
	out := run(t, servers.Bin(t, "helm"), "lint", "--strict", chartDir(t))
	if !strings.Contains(out, "0 chart(s) failed") {
		t.Errorf("helm lint: %s", out)
	}
}

// TestAPIServerAcceptsTheManifests server-side dry-runs everything the chart
// renders against a real kube-apiserver holding Keepsake's CRDs, with
// strict field validation, so an unknown or misplaced field fails.
func TestAPIServerAcceptsTheManifests(t *testing.T) {
	servers.SkipIfShort(t, "kube-apiserver")
	apiServer, err := servers.StartAPIServer()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := apiServer.Stop(); err != nil {
			t.Error(err)
		}
	}()
	kubeconfig := adminKubeconfig(t, apiServer)
	kubectl := servers.Bin(t, "kubectl")
	run(t, kubectl, "--kubeconfig", kubeconfig, "create", "namespace", namespace)

	manifests := filepath.Join(t.TempDir(), "keepsake.yaml")
	rendered := render(t)
	if err := os.WriteFile(manifests, []byte(rendered), 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(t, kubectl, "--kubeconfig", kubeconfig, "apply", "--dry-run=server",
		"--validate=strict", "-f", manifests)
	if n, want := strings.Count(out, "(server dry run)"), len(objects(t, rendered)); n != want {
		t.Errorf("kubectl accepted %d objects, want %d:\n%s", n, want, out)
	}
}

// adminKubeconfig writes a kubeconfig of a system:masters user of apiServer.
func adminKubeconfig(t *testing.T, apiServer *servers.APIServer) string {
	t.Helper()
	admin, err := apiServer.Env.ControlPlane.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

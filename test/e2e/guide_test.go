package e2e

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/test/addons"
	"github.com/keepsake-dev/keepsake/test/cluster"
	"github.com/keepsake-dev/keepsake/test/demo"
	"github.com/keepsake-dev/keepsake/test/guide"
)

// guideImage is the image reference the guide's Functions name, which the
// layout replaces with the image it assembled.
const guideImage = "registry.example.com/redisdump-driver:0.1.0"

// guideDockerfile is the Dockerfile whose content the image recipe
// redisdump-driver of test/images gives the image.
var guideDockerfile = []string{"FROM scratch", "COPY redisdump-driver /usr/local/bin/redisdump-driver"}

// guideRedisPassword is the password of the layout's Redis.
const guideRedisPassword = "guide-redis-5ecret"

// guideLayout follows docs/writing-an-addon.md to its end on the cluster:
// the module, the driver and its conformance test (guide.Follow), the
// image its Dockerfile describes (assembled by keepsake-images), the
// Addon and Functions as written with only the image replaced, and the
// guide's BackupConfiguration and RestoreSession, as written, against a
// password-protected Redis: the dump read back with restic is the
// driver's format, and the restored Redis has the digest and the key
// count of the original.
func guideLayout(t *testing.T, e *demo.Env) {
	e = e.With(t)
	w := guide.Follow(t)
	checkDockerfile(t, w.File("Dockerfile"))
	ctx := demo.Context(t, 5*time.Minute)
	if err := e.Stand.Cluster.ImportImages(ctx, map[string]string{cluster.RedisdumpDriverSource: w.File("redisdump-driver")}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"manifests/functions.yaml", "manifests/addon.yaml"} {
		manifest := strings.ReplaceAll(readGuideFile(t, w, f), guideImage, cluster.RedisdumpDriverImage)
		path := writeTemp(t, manifest)
		if _, err := e.Kubectl(ctx, "apply", "-f", path); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Kubectl(demo.Context(t, time.Minute), "delete", "--ignore-not-found", "-f", path) })
	}

	redis := redisStatefulSet(t, e, guideRedisPassword)
	secret := fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: redis-credentials, namespace: %s}
stringData: {password: %q}
`, e.Params.Namespace, guideRedisPassword)
	if err := e.Stand.Apply(ctx, secret, nil); err != nil {
		t.Fatal(err)
	}
	want := addons.FillRedis(t, redis)
	keys := redis.MustDo(t, "DBSIZE")

	var bc corev1alpha1.BackupConfiguration
	applyGuideObject(t, e, w, "deploy/backup.yaml", &bc)
	session, repo := bc.Spec.Sessions[0], bc.Spec.Sessions[0].Repositories[0]
	bks := e.WaitBackupSession(backupconfiguration.FirstSessionName(bc.Name, session.Name), corev1alpha1.BackupSessionSucceeded)
	snap := sessionSnapshot(t, e, bks)
	logBackup(t, "backup of Redis by the guide's driver", bks, snap)
	if dump := readDump(t, e, repo.Directory, snap); !bytes.HasPrefix(dump, []byte("redisdump 1\n")) {
		t.Fatalf("the dump is not the guide's format: it starts %q", dump[:min(len(dump), 16)])
	}

	redis.MustDo(t, "FLUSHALL")
	if got := redis.MustDo(t, "DBSIZE"); got != "0" {
		t.Fatalf("%s keys after FLUSHALL", got)
	}
	var rs corev1alpha1.RestoreSession
	applyGuideObject(t, e, w, "deploy/restore.yaml", &rs)
	restored := e.WaitRestoreSession(rs.Name, corev1alpha1.RestoreSucceeded)
	logTimeToFinal(t, restored.CreationTimestamp.Time, restored.Status.Conditions)
	if restored.Status.Snapshot != snap.Name {
		t.Errorf("the RestoreSession restored Snapshot %q, want the backup's %q", restored.Status.Snapshot, snap.Name)
	}
	if got, want := restored.Status.Restored, keys+" keys"; got != want {
		t.Errorf("the RestoreSession says it restored %q, want %q", got, want)
	}
	if got := redis.MustDo(t, "DEBUG", "DIGEST"); got != want {
		t.Fatalf("restored data set digest %s, want %s", got, want)
	}
}

// checkDockerfile fails t unless the guide's Dockerfile gives the image
// the content keepsake-images' recipe gives it.
func checkDockerfile(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
	}
	if strings.Join(lines, "\n") != strings.Join(guideDockerfile, "\n") {
		t.Fatalf("the guide's Dockerfile is\n%s\nbut the image recipe redisdump-driver (test/images) assembles\n%s\nchange both",
			strings.Join(lines, "\n"), strings.Join(guideDockerfile, "\n"))
	}
}

// applyGuideObject applies the guide's file in the layout's namespace, as
// written, and decodes it into obj.
func applyGuideObject(t *testing.T, e *demo.Env, w *guide.Walk, file string, obj any) {
	t.Helper()
	manifest := readGuideFile(t, w, file)
	if err := yaml.UnmarshalStrict([]byte(manifest), obj); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if _, err := e.Kubectl(demo.Context(t, time.Minute), "apply", "-n", e.Params.Namespace, "-f", w.File(file)); err != nil {
		t.Fatal(err)
	}
}

func readGuideFile(t *testing.T, w *guide.Walk, file string) string {
	t.Helper()
	data, err := os.ReadFile(w.File(file))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// writeTemp writes manifest to a file of t's and returns its path.
func writeTemp(t *testing.T, manifest string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "manifest-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(manifest); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

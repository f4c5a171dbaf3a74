package jobs

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// TestMountPathsUnique: two repositories on two local BackupStorages that
// both keep the default mount path, a third on one of them again, and the
// encryption Secret named a second time as the driver's Secret: every
// mount path of the task container is distinct, as the API server demands
// (it refused such a Job, and the session stayed Pending), and each
// repository's settings point at its own storage's mount.
func TestMountPathsUnique(t *testing.T) {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = storagev1alpha1.AddToScheme(s)
	pvc := func(claim string) *storagev1alpha1.LocalStorage {
		return &storagev1alpha1.LocalStorage{MountPath: defaultLocalMount, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}
	}
	objs := []runtime.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "pw"}, Data: map[string][]byte{PasswordKey: []byte("x")}},
	}
	for _, name := range []string{"a", "b"} {
		objs = append(objs, &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name},
			Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.StorageBackend{Provider: storagev1alpha1.ProviderLocal, Local: pvc(name)}}})
	}
	for repo, bs := range map[string]string{"r1": "a", "r2": "b", "r3": "a"} {
		objs = append(objs, &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: repo},
			Spec: storagev1alpha1.RepositorySpec{StorageRef: storagev1alpha1.ObjectReference{Name: bs}, Path: repo,
				EncryptionSecret: storagev1alpha1.ObjectReference{Name: "pw"}}})
	}
	c := fake.NewClientBuilder().WithScheme(s).WithRuntimeObjects(objs...).Build()
	ctx := context.Background()
	repos, err := ResolveRepositories(ctx, c, c, "demo", []string{"r1", "r2", "r3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sp := spec(function(nil))
	sp.Secrets = append(repos.Secrets, "pw")
	job, err := Build(sp)
	if err != nil {
		t.Fatal(err)
	}
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "owner", UID: "u"}}
	if err := repos.Attach(ctx, c, owner, job); err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	seen := map[string]bool{}
	for _, m := range pod.Containers[0].VolumeMounts {
		if seen[m.MountPath] {
			t.Errorf("mount path %s is mounted twice: %+v", m.MountPath, pod.Containers[0].VolumeMounts)
		}
		seen[m.MountPath] = true
	}
	vols := map[string]bool{}
	for _, v := range pod.Volumes {
		if vols[v.Name] {
			t.Errorf("volume %s twice", v.Name)
		}
		vols[v.Name] = true
	}
	want := map[string]string{"r1.json": defaultLocalMount, "r2.json": defaultLocalMount + "-2", "r3.json": defaultLocalMount}
	for file, path := range want {
		if got := repos.Settings[file]; got != `{"provider":"local","s3":{"endpoint":"","bucket":"","prefix":"","region":"","forcePathStyle":false,"insecureTLS":false,"caBundleFile":"","maxConnections":0},"local":{"path":"`+path+`"}}` {
			t.Errorf("%s = %s, want local path %s", file, got, path)
		}
	}
}

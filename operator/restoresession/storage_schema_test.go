package restoresession_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestLocalVolumeSourceSchema: the API server accepts only a
// PersistentVolumeClaim, or NFS with allowNFS, as a local BackupStorage's
// volume; hostPath would mount the node's disk into every Job using it.
func TestLocalVolumeSourceSchema(t *testing.T) {
	ns := testenv.Default.Namespace(t, nil)
	pvc := corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "backups"}}
	nfs := corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs.local", Path: "/backups"}}
	tests := map[string]struct {
		local   storagev1alpha1.LocalStorage // the spec.storage.local tried
		wantErr string                       // part of the refusal; "" when accepted
	}{
		"pvc":              {local: storagev1alpha1.LocalStorage{VolumeSource: pvc}},
		"nfs with opt-in":  {local: storagev1alpha1.LocalStorage{VolumeSource: nfs, AllowNFS: true}},
		"nfs without":      {local: storagev1alpha1.LocalStorage{VolumeSource: nfs}, wantErr: "needs allowNFS: true"},
		"hostPath":         {local: storagev1alpha1.LocalStorage{VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}, wantErr: "hostPath, are not allowed"},
		"emptyDir":         {local: storagev1alpha1.LocalStorage{VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}, wantErr: "exactly one persistentVolumeClaim or nfs"},
		"pvc and hostPath": {local: storagev1alpha1.LocalStorage{VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: pvc.PersistentVolumeClaim, HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}, wantErr: "are not allowed"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			bs := &storagev1alpha1.BackupStorage{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: strings.ReplaceAll(strings.ReplaceAll(name, " ", "-"), "P", "p")},
				Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.StorageBackend{
					Provider: storagev1alpha1.ProviderLocal, Local: &tc.local,
				}},
			}
			bs.Name = strings.ToLower(bs.Name)
			err := testenv.Default.Client.Create(context.Background(), bs)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want a refusal saying %q", err, tc.wantErr)
			}
		})
	}
}

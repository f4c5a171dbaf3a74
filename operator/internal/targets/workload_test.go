package targets

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPVCs(t *testing.T) {
	tests := map[string]struct {
		// templates are the StatefulSet's volumeClaimTemplates' names.
		templates []string
		// replicas is the StatefulSet's spec.replicas; nil is unset.
		replicas *int32
		// want are the PVC names, ordinal by ordinal.
		want []string
	}{
		"one template, three replicas": {templates: []string{"data"}, replicas: ptr.To[int32](3),
			want: []string{"data-db-0", "data-db-1", "data-db-2"}},
		"two templates": {templates: []string{"data", "wal"}, replicas: ptr.To[int32](2),
			want: []string{"data-db-0", "wal-db-0", "data-db-1", "wal-db-1"}},
		"replicas unset is one": {templates: []string{"data"}, want: []string{"data-db-0"}},
		"no templates":          {replicas: ptr.To[int32](2)},
		"zero replicas":         {templates: []string{"data"}, replicas: ptr.To[int32](0)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: appsv1.StatefulSetSpec{Replicas: tc.replicas}}
			for _, n := range tc.templates {
				sts.Spec.VolumeClaimTemplates = append(sts.Spec.VolumeClaimTemplates, corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: n}})
			}
			if got := PVCs(sts, Replicas(sts)); !slices.Equal(got, tc.want) {
				t.Errorf("PVCs = %v, want %v", got, tc.want)
			}
		})
	}
}

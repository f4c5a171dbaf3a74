package backupsession_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// Names of the fixtures of a task that mounts the target's volume.
const (
	volumeAddon    = "bs-test-files"
	volumeFunction = "bs-test-files-backup"
	volumeTask     = "physical-backup"
	// filesTarget is a StatefulSet with one volumeClaimTemplate, data.
	filesTarget = "tsdb"
	filesNode   = "node-a"
)

var volumeCatalogOnce, crdOnce sync.Once

// installCRD installs the HyperbytedbCluster CRD, once for the package.
func installCRD(t *testing.T) {
	crdOnce.Do(func() {
		if err := servers.InstallHyperbytedbCRD(testenv.Default.API.Config); err != nil {
			t.Fatal(err)
		}
	})
}

// hyperbytedbCluster is a HyperbytedbCluster of one replica.
func hyperbytedbCluster(ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "hyperbytedb.hyperbyte.cloud/v1alpha1",
		"kind":       "HyperbytedbCluster",
		"metadata":   map[string]any{"namespace": ns, "name": name},
		"spec": map[string]any{
			"replicas": int64(1), "image": "hyperbytedb:0.8.3",
			"storage": map[string]any{"volumeClaimTemplate": map[string]any{"size": "1Gi"}},
		},
	}}
}

// createVolumeCatalog creates an Addon whose backup task mounts the
// target's volume, and its Function, which passes ${targetDir}.
func createVolumeCatalog(t *testing.T) {
	volumeCatalogOnce.Do(func() {
		testenv.Default.Create(t,
			&addonsv1alpha1.Function{
				ObjectMeta: metav1.ObjectMeta{Name: volumeFunction},
				Spec: addonsv1alpha1.FunctionSpec{
					Image:   "db-server:1",
					Command: []string{"/keepsake/bin/keepsake"},
					Args:    []string{"run", "backup", "--driver=${driver}", "--param=targetDir=${targetDir}"},
				},
			},
			&addonsv1alpha1.Addon{
				ObjectMeta: metav1.ObjectMeta{Name: volumeAddon},
				Spec: addonsv1alpha1.AddonSpec{BackupTasks: []addonsv1alpha1.Task{{
					Name: volumeTask, Function: volumeFunction, Driver: driverPath, MountsTargetVolume: true,
				}}},
			})
	})
}

// TestTaskMountsTargetVolume: a backup task with mountsTargetVolume gets
// pod 0's PVC of the target's StatefulSet (a HyperbytedbCluster's too)
// mounted read-only at /keepsake/target and runs on that pod's node; when the PVC, the pod or a single volumeClaimTemplate is missing,
// the session fails with reason TargetVolumeUnavailable and no Job.
func TestTaskMountsTargetVolume(t *testing.T) {
	tests := map[string]struct {
		// target is the StatefulSet the configuration backs up.
		target string
		// cluster makes the target the HyperbytedbCluster of that name,
		// whose StatefulSet has the same name.
		cluster bool
		// noPVC and noPod leave out data-tsdb-0 and tsdb-0.
		noPVC, noPod bool
		// wantMessage is part of the failure's message; "" for a Job.
		wantMessage string
	}{
		"mounted on the pod's node": {target: filesTarget},
		"a HyperbytedbCluster's":    {target: filesTarget, cluster: true},
		"PVC missing":               {target: filesTarget, noPVC: true, wantMessage: "PVC data-tsdb-0 of pod tsdb-0 not found"},
		"pod missing":               {target: filesTarget, noPod: true, wantMessage: "pod tsdb-0 not found"},
		// The fixtures' StatefulSet db has no volumeClaimTemplates.
		"no volumeClaimTemplate": {target: targetName, wantMessage: "StatefulSet db's pod 0, but the StatefulSet has 0 volumeClaimTemplates, not one"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := fixtures(t)
			createVolumeCatalog(t)
			filesFixtures(t, ns, !tc.noPVC, !tc.noPod)
			bc := config(ns, volumeAddon, func(s *corev1alpha1.Session) {
				s.Addon.Tasks = []corev1alpha1.TaskReference{{Name: volumeTask}}
			})
			bc.Spec.Target.Name = tc.target
			if tc.cluster {
				installCRD(t)
				testenv.Default.Create(t, hyperbytedbCluster(ns, tc.target))
				bc.Spec.Target.APIGroup, bc.Spec.Target.Kind = "hyperbytedb.hyperbyte.cloud", "HyperbytedbCluster"
			}
			testenv.Default.Create(t, bc)
			bks := firstSession(ns)
			if tc.wantMessage != "" {
				c := waitPhase(t, bks, corev1alpha1.BackupSessionFailed, corev1alpha1.ConditionBackupSucceeded, corev1alpha1.ReasonTargetVolumeUnavailable)
				if !strings.Contains(c.Message, tc.wantMessage) {
					t.Errorf("message %q, want it to say %q", c.Message, tc.wantMessage)
				}
				if jobs := jobsOf(t, bks); len(jobs) != 0 {
					t.Errorf("got %d Jobs, want none", len(jobs))
				}
				return
			}
			waitPhase(t, bks, corev1alpha1.BackupSessionRunning, corev1alpha1.ConditionBackupJobCreated, corev1alpha1.ReasonJobCreated)
			checkTargetVolume(t, getJob(t, bks).Spec.Template.Spec)
		})
	}
}

// checkTargetVolume checks that the pod mounts data-tsdb-0 read-only at
// /keepsake/target, passes that directory, and must run on filesNode.
func checkTargetVolume(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool {
		return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "data-tsdb-0"
	})
	if i < 0 || !pod.Volumes[i].PersistentVolumeClaim.ReadOnly {
		t.Fatalf("volumes %s: want PVC data-tsdb-0, read-only", testenv.JSON(pod.Volumes))
	}
	c := pod.Containers[0]
	want := corev1.VolumeMount{Name: pod.Volumes[i].Name, MountPath: "/keepsake/target", ReadOnly: true}
	if !slices.Contains(c.VolumeMounts, want) {
		t.Errorf("mounts %s: want %s", testenv.JSON(c.VolumeMounts), testenv.JSON(want))
	}
	if !slices.Contains(c.Args, "--param=targetDir=/keepsake/target") {
		t.Errorf("args %v: want ${targetDir} set to /keepsake/target", c.Args)
	}
	if !slices.Contains(c.Env, corev1.EnvVar{Name: "KEEPSAKE_TARGET_DIR", Value: "/keepsake/target"}) {
		t.Errorf("env %s: want KEEPSAKE_TARGET_DIR", testenv.JSON(c.Env))
	}
	wantAffinity := `{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["` + filesNode + `"]}]}]}}}`
	if got := testenv.JSON(pod.Affinity); got != wantAffinity {
		t.Errorf("affinity %s, want %s", got, wantAffinity)
	}
}

// filesFixtures creates in ns the StatefulSet tsdb with volumeClaimTemplate
// data and, if asked, its pod 0 on filesNode and that pod's PVC, as the
// StatefulSet controller and the scheduler would.
func filesFixtures(t *testing.T, ns string, pvc, pod bool) {
	t.Helper()
	env := testenv.Default
	labels := map[string]string{"app": filesTarget}
	claim := corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
	}
	container := corev1.Container{Name: "db", Image: "db-server:1"}
	env.Create(t, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: filesTarget},
		Spec: appsv1.StatefulSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{container}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: claim}},
		},
	})
	if pvc {
		env.Create(t, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-" + filesTarget + "-0"}, Spec: claim})
	}
	if pod {
		env.Create(t, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: filesTarget + "-0", Labels: labels},
			Spec:       corev1.PodSpec{NodeName: filesNode, Containers: []corev1.Container{container}},
		})
	}
}

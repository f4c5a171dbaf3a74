package restoresession_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/operator/restoresession"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// Names of the offline fixtures.
const (
	physicalAddon    = "rs-test-physical"
	physicalFunction = "rs-test-physical-restore"
	physicalTask     = "physical-restore"
	tsdbName         = "tsdb"
	physicalSnapshot = "physical"
)

var physicalOnce, crdOnce sync.Once

// createPhysicalCatalog creates, once for the package, an Addon whose
// restore task needs its target stopped, and its Function.
func createPhysicalCatalog(t *testing.T) {
	physicalOnce.Do(func() {
		testenv.Default.Create(t,
			&addonsv1alpha1.Function{
				ObjectMeta: metav1.ObjectMeta{Name: physicalFunction},
				Spec: addonsv1alpha1.FunctionSpec{
					Image:   "tsdb-tools:1",
					Command: []string{"/keepsake/bin/keepsake"},
					Args:    []string{"run", "restore", "--driver=${driver}", "--param=datadir=${targetDir}"},
				},
			},
			&addonsv1alpha1.Addon{
				ObjectMeta: metav1.ObjectMeta{Name: physicalAddon},
				Spec: addonsv1alpha1.AddonSpec{RestoreTasks: []addonsv1alpha1.Task{{
					Name: physicalTask, Function: physicalFunction, Driver: driverPath, TargetMustBeStopped: true,
				}}},
			})
	})
}

// installCRD installs the HyperbytedbCluster CRD, once for the package.
func installCRD(t *testing.T) {
	crdOnce.Do(func() {
		if err := servers.InstallHyperbytedbCRD(testenv.Default.API.Config); err != nil {
			t.Fatal(err)
		}
	})
}

// offlineFixtures creates the fixtures of a restore, a Succeeded Snapshot,
// and a StatefulSet tsdb of replicas pods (Running) with one PVC each,
// and returns the namespace and the StatefulSet.
func offlineFixtures(t *testing.T, replicas int32) (string, *appsv1.StatefulSet) {
	t.Helper()
	createPhysicalCatalog(t)
	ns := fixtures(t)
	createSnapshot(t, snapshotOf(ns, physicalSnapshot, storagev1alpha1.SnapshotSucceeded, time.Now(), map[string]string{componentName: resticID}))
	sts := tsdbStatefulSet(ns, replicas)
	testenv.Default.Create(t, sts)
	for i := range replicas {
		testenv.Default.Create(t, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("data-%s-%d", tsdbName, i)},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		})
	}
	startPods(t, sts)
	return ns, sts
}

// tsdbStatefulSet is a StatefulSet with a volumeClaimTemplate data.
func tsdbStatefulSet(ns string, replicas int32) *appsv1.StatefulSet {
	labels := map[string]string{"app": tsdbName}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tsdbName},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "tsdb", Image: "tsdb:1",
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/tsdb"}}}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
}

// startPods plays the StatefulSet controller and the kubelet: it creates
// the StatefulSet's pods, Running, and reports them all Ready.
func startPods(t *testing.T, sts *appsv1.StatefulSet) {
	t.Helper()
	ctx := context.Background()
	c := testenv.Default.Client
	if err := c.Get(ctx, client.ObjectKeyFromObject(sts), sts); err != nil {
		t.Fatal(err)
	}
	n := *sts.Spec.Replicas
	for i := range n {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: sts.Namespace, Name: fmt.Sprintf("%s-%d", sts.Name, i), Labels: sts.Spec.Template.Labels},
			Spec:       *sts.Spec.Template.Spec.DeepCopy(),
		}
		for _, tpl := range sts.Spec.VolumeClaimTemplates {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: tpl.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: fmt.Sprintf("%s-%s-%d", tpl.Name, sts.Name, i)},
			}})
		}
		testenv.Default.Create(t, pod)
		pod.Status.Phase = corev1.PodRunning
		if err := c.Status().Update(ctx, pod); err != nil {
			t.Fatalf("pod %s Running: %v", pod.Name, err)
		}
	}
	setReady(t, sts, n)
}

// setReady reports n replicas of the StatefulSet Ready at its generation.
func setReady(t *testing.T, sts *appsv1.StatefulSet, n int32) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(sts), sts); err != nil {
			return false, err.Error()
		}
		sts.Status.ObservedGeneration = sts.Generation
		sts.Status.Replicas, sts.Status.ReadyReplicas, sts.Status.AvailableReplicas = n, n, n
		if err := testenv.Default.Client.Status().Update(ctx, sts); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// stopPods waits until the StatefulSet is scaled to 0, then plays its
// controller: it deletes the pods and reports 0 replicas.
func stopPods(t *testing.T, sts *appsv1.StatefulSet) {
	t.Helper()
	waitReplicas(t, sts, 0)
	var pods corev1.PodList
	c := testenv.Default.Client
	if err := c.List(context.Background(), &pods, client.InNamespace(sts.Namespace), client.MatchingLabels(sts.Spec.Selector.MatchLabels)); err != nil {
		t.Fatal(err)
	}
	for _, pod := range pods.Items {
		if err := c.Delete(context.Background(), &pod, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil {
			t.Fatalf("delete pod %s: %v", pod.Name, err)
		}
	}
	setReady(t, sts, 0)
}

// waitReplicas waits until the StatefulSet's spec.replicas is n.
func waitReplicas(t *testing.T, sts *appsv1.StatefulSet, n int32) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(sts), sts); err != nil {
			return false, err.Error()
		}
		return sts.Spec.Replicas != nil && *sts.Spec.Replicas == n, fmt.Sprintf("StatefulSet %s replicas %v, want %d", sts.Name, ptr.Deref(sts.Spec.Replicas, -1), n)
	})
}

// offlineRestore is a RestoreSession of the physical task into target.
func offlineRestore(ns, name string, target storagev1alpha1.TypedObjectReference) *corev1alpha1.RestoreSession {
	return restore(ns, name, corev1alpha1.SnapshotLatest, func(s *corev1alpha1.RestoreSessionSpec) {
		s.Target = target
		s.Addon = corev1alpha1.AddonInfo{Name: physicalAddon, Tasks: []corev1alpha1.TaskReference{{Name: physicalTask}}}
	})
}

// stsTarget names the StatefulSet tsdb.
var stsTarget = storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: tsdbName}

// pvcJobs waits for the n PVC Jobs of rs and returns them by ordinal.
func pvcJobs(t *testing.T, rs *corev1alpha1.RestoreSession, n int) []*batchv1.Job {
	t.Helper()
	var out []*batchv1.Job
	for i := range n {
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: rs.Namespace, Name: restoresession.PVCJobName(rs.Name, i)}}
		testenv.WaitExists(t, job)
		out = append(out, job)
	}
	return out
}

// phaseWatch records, from a watch started before the RestoreSession
// exists, every phase it goes through, in order.
type phaseWatch struct {
	mu     sync.Mutex
	phases []corev1alpha1.RestoreSessionPhase
	stop   context.CancelFunc
}

// watchPhases watches the RestoreSession name of namespace ns. The API
// server's watch cache may answer a new watch with an error (a resource
// version it has not caught up with yet): then it lists again and watches
// from the list's version, so no change is missed.
func watchPhases(t *testing.T, ns, name string) *phaseWatch {
	t.Helper()
	wc, err := client.NewWithWatch(testenv.Default.API.Config, client.Options{Scheme: testenv.Default.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pw := &phaseWatch{stop: cancel}
	t.Cleanup(pw.stop)
	go func() {
		for ctx.Err() == nil {
			pw.follow(ctx, wc, ns, name)
		}
	}()
	return pw
}

// follow lists, then watches from the list's version until the watch
// ends or fails.
func (pw *phaseWatch) follow(ctx context.Context, wc client.WithWatch, ns, name string) {
	var list corev1alpha1.RestoreSessionList
	if err := wc.List(ctx, &list, client.InNamespace(ns)); err != nil {
		time.Sleep(100 * time.Millisecond)
		return
	}
	for i := range list.Items {
		pw.record(&list.Items[i], name)
	}
	w, err := wc.Watch(ctx, &corev1alpha1.RestoreSessionList{}, client.InNamespace(ns),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	if err != nil {
		time.Sleep(100 * time.Millisecond)
		return
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		rs, ok := ev.Object.(*corev1alpha1.RestoreSession)
		if !ok {
			time.Sleep(100 * time.Millisecond)
			return
		}
		pw.record(rs, name)
	}
}

// record notes the phase of rs when it is the watched one and its phase
// changed.
func (pw *phaseWatch) record(rs *corev1alpha1.RestoreSession, name string) {
	if rs.Name != name || rs.Status.Phase == "" {
		return
	}
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if n := len(pw.phases); n == 0 || pw.phases[n-1] != rs.Status.Phase {
		pw.phases = append(pw.phases, rs.Status.Phase)
	}
}

// check fails the test unless the phases seen so far are want.
func (pw *phaseWatch) check(t *testing.T, want ...corev1alpha1.RestoreSessionPhase) {
	t.Helper()
	testenv.Eventually(t, func(context.Context) (bool, string) {
		pw.mu.Lock()
		defer pw.mu.Unlock()
		return slices.Equal(pw.phases, want), fmt.Sprintf("phases %v, want %v", pw.phases, want)
	})
}

// hyperbytedbCluster is a HyperbytedbCluster named tsdb of replicas.
func hyperbytedbCluster(ns string, replicas int64, paused bool) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "hyperbytedb.hyperbyte.cloud/v1alpha1",
		"kind":       "HyperbytedbCluster",
		"metadata":   map[string]any{"namespace": ns, "name": tsdbName},
		"spec": map[string]any{
			"replicas": replicas, "image": "hyperbytedb:0.8.3", "paused": paused,
			"storage": map[string]any{"volumeClaimTemplate": map[string]any{"size": "1Gi"}},
		},
	}}
	return u
}

// paused reads the HyperbytedbCluster's spec.paused.
func paused(t *testing.T, ns string) bool {
	t.Helper()
	u := hyperbytedbCluster(ns, 1, false)
	if err := testenv.Default.Client.Get(context.Background(), client.ObjectKeyFromObject(u), u); err != nil {
		t.Fatal(err)
	}
	p, _, _ := unstructured.NestedBool(u.Object, "spec", "paused")
	return p
}

package backupconfiguration_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// update writes bc's spec, re-reading it on a conflict with the operator.
func update(t *testing.T, bc *corev1alpha1.BackupConfiguration) {
	t.Helper()
	spec := bc.Spec.DeepCopy()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(bc), bc); err != nil {
			return false, err.Error()
		}
		bc.Spec = *spec
		if err := testenv.Default.Client.Update(ctx, bc); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

func getCronJob(t *testing.T, bc *corev1alpha1.BackupConfiguration) *batchv1.CronJob {
	t.Helper()
	var cj batchv1.CronJob
	key := client.ObjectKey{Namespace: bc.Namespace, Name: backupconfiguration.CronJobName(bc.Name, sessionName)}
	if err := testenv.Default.Client.Get(context.Background(), key, &cj); err != nil {
		t.Fatalf("get CronJob: %v", err)
	}
	return &cj
}

// waitCronJob waits until the session's CronJob satisfies ok.
func waitCronJob(t *testing.T, bc *corev1alpha1.BackupConfiguration, ok func(*batchv1.CronJob) bool) {
	t.Helper()
	key := client.ObjectKey{Namespace: bc.Namespace, Name: backupconfiguration.CronJobName(bc.Name, sessionName)}
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		var cj batchv1.CronJob
		if err := testenv.Default.Client.Get(ctx, key, &cj); err != nil {
			return false, err.Error()
		}
		return ok(&cj), "CronJob spec: " + testenv.JSON(cj.Spec)
	})
}

// waitSessions waits until the BackupSessions of ns are exactly want,
// sorted by name.
func waitSessions(t *testing.T, ns string, want []string) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		got, err := sessionNames(ctx, ns)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(got, want), "BackupSessions: " + strings.Join(got, ", ")
	})
}

// assertSessions checks that the BackupSessions of ns are exactly want,
// sorted by name, now: call it once the operator has reconciled.
func assertSessions(t *testing.T, ns string, want []string) {
	t.Helper()
	got, err := sessionNames(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("BackupSessions = %q, want %q", got, want)
	}
}

func sessionNames(ctx context.Context, ns string) ([]string, error) {
	var list corev1alpha1.BackupSessionList
	if err := testenv.Default.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var names []string
	for _, b := range list.Items {
		names = append(names, b.Name)
	}
	slices.Sort(names)
	return names, nil
}

func cronJobNames(items []batchv1.CronJob) string {
	var names []string
	for _, cj := range items {
		names = append(names, cj.Name)
	}
	return strings.Join(names, ", ")
}

func findCondition(conds []metav1.Condition, condType string) *metav1.Condition {
	return meta.FindStatusCondition(conds, condType)
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	return testenv.JSON(a) == testenv.JSON(b)
}

func clientKey(o client.Object) client.ObjectKey { return client.ObjectKeyFromObject(o) }

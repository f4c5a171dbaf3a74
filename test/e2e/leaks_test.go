package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/test/cluster"
	"github.com/keepsake-dev/keepsake/test/demo"
)

// identifierKeys hold names, not secrets: a user name or an access key ID
// shows in logs and URLs by design (S3 sends the key ID with every
// request), and certificates are public.
var identifierKeys = map[string]bool{
	"username": true, "AWS_ACCESS_KEY_ID": true, "access_key_id": true, "MINIO_ROOT_USER": true,
	"ca.crt": true, "public.crt": true,
}

// noSecretLeaked: every Secret value of the namespaces the scenarios used
// (S3 secret keys, repository passwords, database passwords, a TLS key)
// shows in no pod log of Keepsake's pods or the operator, no Event, no
// Keepsake object, Job, CronJob, Pod or ConfigMap. The database and MinIO
// pods are the user's; their logs are not Keepsake's to keep clean.
func noSecretLeaked(t *testing.T, c *cluster.Cluster, e *demo.Env, namespaces []string) {
	ctx := demo.Context(t, 5*time.Minute)
	secrets := secretValues(t, ctx, e, namespaces)
	if len(secrets) == 0 {
		t.Fatal("no Secret values found to look for")
	}
	places := map[string]string{}
	for _, ns := range namespaces {
		for name, text := range objectTexts(t, ctx, e, ns) {
			places[name] = text
		}
		for name, text := range podLogs(t, ctx, c, ns, func(p *corev1.Pod) bool {
			return p.Labels["app"] != "metrics" && p.Labels["app"] != "minio-tls"
		}) {
			places[name] = text
		}
	}
	for name, text := range podLogs(t, ctx, c, demo.OperatorNamespace, func(*corev1.Pod) bool { return true }) {
		places[name] = text
	}
	for secret, value := range secrets {
		for place, text := range places {
			if strings.Contains(text, value) {
				t.Errorf("the value of %s shows in %s", secret, place)
			}
		}
	}
	t.Logf("%d Secret values looked for in %d places (logs, Events, objects)", len(secrets), len(places))
}

// secretValues maps "Secret ns/name key" to its value, for every value that
// is a secret (not a ServiceAccount token, not an identifier).
func secretValues(t *testing.T, ctx context.Context, e *demo.Env, namespaces []string) map[string]string {
	t.Helper()
	values := map[string]string{}
	for _, ns := range namespaces {
		var list corev1.SecretList
		if err := e.Kube.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Items {
			if s.Type == corev1.SecretTypeServiceAccountToken {
				continue
			}
			for k, v := range s.Data {
				if !identifierKeys[k] && len(v) >= 8 {
					values[fmt.Sprintf("Secret %s/%s key %s", ns, s.Name, k)] = string(v)
				}
			}
		}
	}
	return values
}

// objectTexts returns the JSON of every object of namespace ns a Secret
// value must not reach, and the Events' messages, by kind/name.
func objectTexts(t *testing.T, ctx context.Context, e *demo.Env, ns string) map[string]string {
	t.Helper()
	lists := []client.ObjectList{
		&corev1alpha1.BackupConfigurationList{}, &corev1alpha1.BackupSessionList{}, &corev1alpha1.RestoreSessionList{},
		&storagev1alpha1.BackupStorageList{}, &storagev1alpha1.RepositoryList{}, &storagev1alpha1.SnapshotList{},
		&batchv1.JobList{}, &batchv1.CronJobList{}, &corev1.PodList{}, &corev1.ConfigMapList{}, &corev1.EventList{},
	}
	texts := map[string]string{}
	for _, list := range lists {
		if err := e.Kube.List(ctx, list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		items, err := apimeta.ExtractList(list)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range items {
			b, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			o := obj.(client.Object)
			texts[fmt.Sprintf("%T %s/%s", obj, ns, o.GetName())] = string(b)
		}
	}
	return texts
}

// podLogs returns the logs of every container (init containers too) of the
// pods of ns that keep says to look at, by pod/container.
func podLogs(t *testing.T, ctx context.Context, c *cluster.Cluster, ns string, keep func(*corev1.Pod) bool) map[string]string {
	t.Helper()
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	logs := map[string]string{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !keep(p) {
			continue
		}
		for _, ctr := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			b, err := c.Client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: ctr.Name}).DoRaw(ctx)
			if err != nil {
				// A container that never started has no log.
				continue
			}
			logs[fmt.Sprintf("log of pod %s/%s container %s", ns, p.Name, ctr.Name)] = string(b)
		}
	}
	return logs
}

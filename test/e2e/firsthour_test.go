package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/repository"
	"github.com/keepsake-dev/keepsake/test/demo"
)

// firstHourBound is how soon after its creation a mistake must show in
// kubectl get and describe.
const firstHourBound = 30 * time.Second

// mistakeConfiguration is a BackupConfiguration a new user writes, with
// the parts they get wrong as parameters.
const mistakeConfiguration = `
apiVersion: core.keepsake.dev/v1alpha1
kind: BackupConfiguration
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  target: {apiGroup: apps, kind: StatefulSet, name: metrics}
  backends:
    - name: minio
      storageRef: {name: minio}
  sessions:
    - name: hourly
      scheduler: {schedule: "{{.Schedule}}"}
      addon:
        name: hyperbytedb
        tasks:
          - name: logical-backup
            params: {authSecret: {{.Auth}}{{.Extra}}}
      repositories:
        - name: {{.Name}}-repo
          backend: minio
          directory: {{.Directory}}
          encryptionSecret: {name: {{.Password}}}
      backupTimeout: {{.Timeout}}
`

// mistakeRestore is a RestoreSession a new user writes.
const mistakeRestore = `
apiVersion: core.keepsake.dev/v1alpha1
kind: RestoreSession
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  target: {apiGroup: apps, kind: StatefulSet, name: {{.Target}}}
  dataSource:
    repository: {name: holder}
    snapshot: {{.Snapshot}}
  addon:
    name: hyperbytedb
    tasks:
      - name: logical-restore
        params: {authSecret: metrics-auth}
`

// firstHourFixtures are what the mistakes need besides the namespace's
// storage: a Secret with the password under the wrong key, and a
// Repository that already holds directory "taken".
const firstHourFixtures = `
apiVersion: v1
kind: Secret
metadata: {name: no-password, namespace: {{.Namespace}}}
stringData: {PASSWORD: misnamed-key}
---
apiVersion: storage.keepsake.dev/v1alpha1
kind: Repository
metadata: {name: holder, namespace: {{.Namespace}}}
spec:
  storageRef: {name: minio}
  path: taken
  encryptionSecret: {name: restic-password}
`

// mistake is one case of the first hour: what the user applies and what
// kubectl then shows them.
type mistake struct {
	// tmpl and params are the manifest; params fill the defaults' gaps.
	tmpl   string
	params map[string]string
	// refused is part of the API server's message when it must refuse the
	// manifest; the wants below are then unused.
	refused string
	// kind is the object the user looks at (named params["Name"]).
	kind client.Object
	// phase, condition, reason and message (part of it; %s is the
	// namespace) are what it shows.
	phase, condition, reason, message string
}

// firstHour applies each mistake of the first hour on the cluster, as a
// user would, and asserts that kubectl shows its reason on the object
// they look at within firstHourBound of its creation (measured between the
// object's creation and its condition's transition, both stamped by the
// cluster), or that the API server refuses it with a message a person
// reads; and that none of them made a Job.
func firstHour(t *testing.T, e *demo.Env) {
	e = e.With(t)
	apply(t, e, firstHourFixtures, map[string]string{})
	bc, rs := &corev1alpha1.BackupConfiguration{}, &corev1alpha1.RestoreSession{}
	mistakes := map[string]mistake{
		"encryption Secret without RESTIC_PASSWORD": {
			tmpl: mistakeConfiguration, params: map[string]string{"Name": "no-password", "Password": "no-password"},
			kind: bc, phase: string(corev1alpha1.BackupConfigurationNotReady), condition: corev1alpha1.ConditionReady, reason: corev1alpha1.ReasonSecretKeyMissing,
			message: "Secret %s/no-password has no key RESTIC_PASSWORD",
		},
		"authSecret that does not exist": {
			tmpl: mistakeConfiguration, params: map[string]string{"Name": "no-auth", "Auth": "no-such-auth"},
			kind: bc, phase: string(corev1alpha1.BackupConfigurationNotReady), condition: corev1alpha1.ConditionReady, reason: corev1alpha1.ReasonSecretNotFound,
			message: "Secret %s/no-such-auth not found",
		},
		"repository directory another Repository holds": {
			tmpl: mistakeConfiguration, params: map[string]string{"Name": "taken", "Directory": "taken"},
			kind: bc, phase: string(corev1alpha1.BackupConfigurationNotReady), condition: corev1alpha1.ConditionReady, reason: corev1alpha1.ReasonRepositoryNotReady,
			message: "Repository %s/taken-repo is not Ready: LocationInUse",
		},
		"unknown task parameter": {
			tmpl: mistakeConfiguration, params: map[string]string{"Name": "unknown-param", "Extra": ", database: metrics"},
			kind: bc, phase: string(corev1alpha1.BackupConfigurationInvalid), condition: corev1alpha1.ConditionReady, reason: corev1alpha1.ReasonUnknownParameter,
			message: "has no parameter database; its parameters are:",
		},
		"restore into a target that does not exist": {
			tmpl: mistakeRestore, params: map[string]string{"Name": "no-target", "Target": "no-such-db"},
			kind: rs, phase: string(corev1alpha1.RestoreInvalid), condition: corev1alpha1.ConditionTargetFound, reason: corev1alpha1.ReasonTargetNotFound,
			message: "StatefulSet %s/no-such-db not found",
		},
		"restore of a Snapshot that does not exist": {
			tmpl: mistakeRestore, params: map[string]string{"Name": "no-snapshot", "Snapshot": "no-such-snapshot"},
			kind: rs, phase: string(corev1alpha1.RestorePending), condition: corev1alpha1.ConditionSnapshotResolved, reason: corev1alpha1.ReasonSnapshotNotFound,
			message: "waiting up to",
		},
		"schedule with a step of 61 minutes": {
			tmpl: mistakeConfiguration, params: map[string]string{"Name": "step-61", "Schedule": "*/61 * * * *"},
			refused: "the minute field (the first) must be * or 0-59",
		},
		"schedule at hour 25": {
			tmpl: mistakeConfiguration, params: map[string]string{"Name": "hour-25", "Schedule": "0 25 * * *"},
			refused: "the hour field (the second) must be * or 0-23",
		},
		"backupTimeout that is not a duration": {
			tmpl: mistakeConfiguration, params: map[string]string{"Name": "bad-timeout", "Timeout": "soon"},
			refused: "backupTimeout must be a duration such as 30m or 6h",
		},
		"repository directory with ..": {
			tmpl: mistakeConfiguration, params: map[string]string{"Name": "dot-dot", "Directory": "../x"},
			refused: "directory must not contain . or .. segments",
		},
	}
	for name, m := range mistakes {
		params := map[string]string{
			"Namespace": e.Params.Namespace, "Schedule": "0 * * * *", "Auth": "metrics-auth", "Extra": "",
			"Directory": m.params["Name"], "Password": "restic-password", "Timeout": "10m",
			"Target": "metrics", "Snapshot": "latest",
		}
		for k, v := range m.params {
			params[k] = v
		}
		err := e.Stand.Apply(demo.Context(t, time.Minute), m.tmpl, params)
		switch {
		case m.refused == "" && err != nil:
			t.Errorf("%s: kubectl apply: %v", name, err)
		case m.refused != "" && (err == nil || !strings.Contains(err.Error(), m.refused)):
			t.Errorf("%s: kubectl apply: %v; want it refused saying %q", name, err, m.refused)
		case m.refused != "":
			t.Logf("%s: refused: %s", name, lastLine(err.Error()))
		}
		m.params = params
		mistakes[name] = m
	}
	for name, m := range mistakes {
		if m.refused != "" {
			continue
		}
		t.Run(name, func(t *testing.T) { m.wait(t, e) })
	}
	var jobs batchv1.JobList
	if err := e.Kube.List(demo.Context(t, time.Minute), &jobs, client.InNamespace(e.Params.Namespace)); err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		// The holder Repository's sync Job is the one Job that may run.
		if j.Labels[repository.LabelSyncOf] != "holder" {
			t.Errorf("Job %s was created for a mistake", j.Name)
		}
	}
}

// wait waits until the object the user looks at shows the mistake, and
// checks it showed within firstHourBound of its creation.
func (m mistake) wait(t *testing.T, e *demo.Env) {
	name, ns := m.params["Name"], e.Params.Namespace
	want := fmt.Sprintf(m.message, ns)
	if !strings.Contains(m.message, "%s") {
		want = m.message
	}
	var shown *metav1.Condition
	var created metav1.Time
	obj := m.kind.DeepCopyObject().(client.Object)
	waitObject(t, e, ns, name, obj, func(obj client.Object) (bool, string) {
		phase, conds := phaseAndConditions(obj)
		created = obj.GetCreationTimestamp()
		shown = meta.FindStatusCondition(conds, m.condition)
		if shown == nil {
			return false, phase + ": no " + m.condition + " condition"
		}
		ok := phase == m.phase && shown.Status == metav1.ConditionFalse && shown.Reason == m.reason && strings.Contains(shown.Message, want)
		return ok, fmt.Sprintf("%s: %s %s: %s", phase, shown.Type, shown.Reason, shown.Message)
	})
	took := shown.LastTransitionTime.Sub(created.Time)
	t.Logf("%T %s: %s %s: %s (shown %s after creation)", obj, name, m.phase, shown.Reason, shown.Message, took)
	if took > firstHourBound {
		t.Errorf("the reason showed %s after the object's creation, want within %s", took, firstHourBound)
	}
}

// phaseAndConditions reads the phase and conditions of a
// BackupConfiguration or RestoreSession.
func phaseAndConditions(obj client.Object) (string, []metav1.Condition) {
	switch o := obj.(type) {
	case *corev1alpha1.BackupConfiguration:
		return string(o.Status.Phase), o.Status.Conditions
	case *corev1alpha1.RestoreSession:
		return string(o.Status.Phase), o.Status.Conditions
	}
	panic(fmt.Sprintf("no phase for %T", obj))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

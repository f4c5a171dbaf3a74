package apis_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/keepsake-dev/keepsake/test/servers"
)

// example loads docs/examples/<name>.yaml, the valid manifests the README
// shows, as an object ready to create in a fresh namespace.
func example(t *testing.T, name, namespace string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(servers.RepoRoot(t), "docs", "examples", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &obj.Object); err != nil {
		t.Fatalf("parse example %s: %v", name, err)
	}
	if obj.GetNamespace() != "" {
		obj.SetNamespace(namespace)
	} else {
		// Cluster-scoped: give each case its own name.
		obj.SetName(obj.GetName() + "-" + namespace)
	}
	return obj
}

// mutation changes a valid example into the case under test.
type mutation func(t *testing.T, obj map[string]any)

// set puts value at the dotted path; a number in the path indexes a list.
func set(path string, value any) mutation {
	return func(t *testing.T, obj map[string]any) {
		t.Helper()
		parent, last := walk(t, obj, path)
		parent[last] = value
	}
}

// unset removes the field at the dotted path.
func unset(path string) mutation {
	return func(t *testing.T, obj map[string]any) {
		t.Helper()
		parent, last := walk(t, obj, path)
		if _, ok := parent[last]; !ok {
			t.Fatalf("unset %s: no such field in the example", path)
		}
		delete(parent, last)
	}
}

func walk(t *testing.T, obj map[string]any, path string) (map[string]any, string) {
	t.Helper()
	keys := strings.Split(path, ".")
	cur := obj
	for _, k := range keys[:len(keys)-1] {
		next := cur[k]
		if list, ok := next.([]any); ok {
			next = list[0]
		}
		m, ok := next.(map[string]any)
		if !ok {
			t.Fatalf("path %s: %s is not an object in the example", path, k)
		}
		cur = m
	}
	return cur, keys[len(keys)-1]
}

// TestSchemaValidation creates each documented example, changed by a
// mutation, on a real kube-apiserver and checks it is accepted or rejected
// with the expected message.
func TestSchemaValidation(t *testing.T) {
	cases := map[string]struct {
		example string     // docs/examples/<example>.yaml to start from
		mutate  []mutation // changes that make the case
		wantErr string     // substring of the API server's message; "" = accepted
	}{
		"storage example":                          {example: "backupstorage"},
		"storage s3 without bucket":                {example: "backupstorage", mutate: []mutation{unset("spec.storage.s3.bucket")}, wantErr: "spec.storage.s3.bucket: Required value"},
		"storage s3 provider no section":           {example: "backupstorage", mutate: []mutation{unset("spec.storage.s3")}, wantErr: "provider s3 requires the s3 section"},
		"storage unknown provider":                 {example: "backupstorage", mutate: []mutation{set("spec.storage.provider", "gcs")}, wantErr: `spec.storage.provider: Unsupported value: "gcs"`},
		"storage bucket not a bucket name":         {example: "backupstorage", mutate: []mutation{set("spec.storage.s3.bucket", "My_Bucket")}, wantErr: "bucket must be an S3 bucket name"},
		"storage endpoint without scheme":          {example: "backupstorage", mutate: []mutation{set("spec.storage.s3.endpoint", "minio:9000")}, wantErr: "endpoint must be an http:// or https:// URL with a host"},
		"storage selector policy without selector": {example: "backupstorage", mutate: []mutation{set("spec.usagePolicy.allowedNamespaces.from", "Selector")}, wantErr: "selector is required when from is Selector"},
		"storage both CA sources": {example: "backupstorage", mutate: []mutation{set("spec.storage.s3.caBundle", map[string]any{
			"secretKeyRef":    map[string]any{"name": "ca", "key": "ca.crt"},
			"configMapKeyRef": map[string]any{"name": "ca", "key": "ca.crt"},
		})}, wantErr: "set exactly one of secretKeyRef and configMapKeyRef"},
		"storage deletion policy Retain":             {example: "backupstorage", mutate: []mutation{set("spec.deletionPolicy", "Retain")}},
		"storage deletion policy Delete former name": {example: "backupstorage", mutate: []mutation{set("spec.deletionPolicy", "Delete")}},
		"storage deletion policy WipeOut":            {example: "backupstorage", mutate: []mutation{set("spec.deletionPolicy", "WipeOut")}},
		"storage unknown deletion policy":            {example: "backupstorage", mutate: []mutation{set("spec.deletionPolicy", "Shred")}, wantErr: `spec.deletionPolicy: Unsupported value: "Shred"`},
		"storage too many connections":               {example: "backupstorage", mutate: []mutation{set("spec.storage.s3.maxConnections", int64(1000))}, wantErr: "spec.storage.s3.maxConnections: Invalid value: 1000"},

		"retention example":         {example: "retentionpolicy"},
		"retention negative last":   {example: "retentionpolicy", mutate: []mutation{set("spec.successfulSnapshots.last", int64(-1))}, wantErr: "spec.successfulSnapshots.last: Invalid value: -1: spec.successfulSnapshots.last in body should be greater than or equal to 0"},
		"retention negative failed": {example: "retentionpolicy", mutate: []mutation{set("spec.failedSnapshots.last", int64(-3))}, wantErr: "spec.failedSnapshots.last: Invalid value: -3"},
		"retention period in words": {example: "retentionpolicy", mutate: []mutation{set("spec.maxRetentionPeriod", "30 days")}, wantErr: "maxRetentionPeriod must be years, months, days and hours in that order, such as 30d"},

		"configuration example":                {example: "backupconfiguration"},
		"configuration cron in words":          {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "every minute")}, wantErr: "schedule must be five cron fields"},
		"configuration cron six fields":        {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "0 0 * * * *")}, wantErr: "schedule must be five cron fields"},
		"configuration cron macro":             {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "@daily")}},
		"configuration cron ranges":            {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "*/15 8-18 * * MON-FRI")}},
		"configuration cron step over 59":      {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "*/61 * * * *")}, wantErr: "the minute field (the first) must be * or 0-59"},
		"configuration cron hour 25":           {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "0 25 * * *")}, wantErr: "the hour field (the second) must be * or 0-23"},
		"configuration cron minute 60":         {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "60 * * * *")}, wantErr: "the minute field (the first)"},
		"configuration cron day 32":            {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "* * 32 * *")}, wantErr: "the day of month field (the third) must be * or 1-31"},
		"configuration cron month 13":          {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "* * * 13 *")}, wantErr: "the month field (the fourth) must be * or 1-12 or JAN-DEC"},
		"configuration cron weekday 8":         {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "* * * * 8")}, wantErr: "the day of week field (the fifth) must be * or 0-6 or SUN-SAT"},
		"configuration cron weekday step 7":    {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "0 0 * * */7")}, wantErr: "the day of week field (the fifth)"},
		"configuration cron lists and steps":   {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "*/15 2-4 1,15 * 1-5")}},
		"configuration cron every":             {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "@every 1h30m")}},
		"configuration cron largest steps":     {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "*/59 */23 */31 */12 */6")}},
		"configuration cron names":             {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.schedule", "0 3 * jan,JUL Mon-Fri")}},
		"configuration empty storage ref":      {example: "backupconfiguration", mutate: []mutation{set("spec.backends.storageRef.name", "")}, wantErr: "spec.backends[0].storageRef.name: Invalid value: \"\""},
		"configuration unknown backend":        {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.repositories.backend", "gcs")}, wantErr: "every session repository must name a backend listed in spec.backends"},
		"configuration no sessions":            {example: "backupconfiguration", mutate: []mutation{set("spec.sessions", []any{})}, wantErr: "spec.sessions: Invalid value"},
		"configuration bad concurrency":        {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.scheduler.concurrencyPolicy", "Sometimes")}, wantErr: `Unsupported value: "Sometimes"`},
		"configuration timeout not a duration": {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.backupTimeout", "forever")}, wantErr: "backupTimeout must be a duration such as 30m or 6h"},
		"configuration retry delay in words":   {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.retryConfig.delay", "a minute")}, wantErr: "retryConfig.delay must be a duration such as 1m or 90s"},
		"configuration timeout of 1h30m":       {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.backupTimeout", "1h30m")}},
		"configuration too many retries":       {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.retryConfig.maxRetry", int64(11))}, wantErr: "spec.sessions[0].retryConfig.maxRetry: Invalid value: 11"},
		"configuration without target kind":    {example: "backupconfiguration", mutate: []mutation{unset("spec.target.kind")}, wantErr: "spec.target.kind: Required value"},
		"configuration without addon tasks":    {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.addon.tasks", []any{})}, wantErr: "spec.sessions[0].addon.tasks: Invalid value"},
		"configuration session name with caps": {example: "backupconfiguration", mutate: []mutation{set("spec.sessions.name", "Hourly")}, wantErr: "a session name must be lower-case letters, digits and dashes"},

		"session example":                   {example: "backupsession"},
		"session without configuration":     {example: "backupsession", mutate: []mutation{unset("spec.backupConfiguration")}, wantErr: "spec.backupConfiguration: Required value"},
		"session name too long for a label": {example: "backupsession", mutate: []mutation{set("metadata.name", strings.Repeat("b", 64))}, wantErr: "name must be at most 63 characters"},
		"session name of 63":                {example: "backupsession", mutate: []mutation{set("metadata.name", strings.Repeat("b", 63))}},

		"restore example":            {example: "restoresession"},
		"restore without repository": {example: "restoresession", mutate: []mutation{unset("spec.dataSource.repository")}, wantErr: "spec.dataSource.repository: Required value"},
		"restore bad timeout":        {example: "restoresession", mutate: []mutation{set("spec.restoreTimeout", "1 hour")}, wantErr: "restoreTimeout must be a duration such as 30m or 2h"},

		"repository example":            {example: "repository"},
		"repository WipeOut":            {example: "repository", mutate: []mutation{set("spec.deletionPolicy", "WipeOut")}},
		"repository Delete former name": {example: "repository", mutate: []mutation{set("spec.deletionPolicy", "Delete")}},
		"repository absolute path":      {example: "repository", mutate: []mutation{set("spec.path", "/metrics")}, wantErr: "path must be a relative path of letters, digits"},
		"repository without secret":     {example: "repository", mutate: []mutation{unset("spec.encryptionSecret")}, wantErr: "spec.encryptionSecret: Required value"},

		"snapshot example":            {example: "snapshot"},
		"snapshot Retain":             {example: "snapshot", mutate: []mutation{set("spec.deletionPolicy", "Retain")}},
		"snapshot Delete former name": {example: "snapshot", mutate: []mutation{set("spec.deletionPolicy", "Delete")}},
		"snapshot unknown type":       {example: "snapshot", mutate: []mutation{set("spec.type", "Differential")}, wantErr: `spec.type: Unsupported value: "Differential"`},

		"addon example":               {example: "addon"},
		"addon without tasks":         {example: "addon", mutate: []mutation{unset("spec.backupTasks"), unset("spec.restoreTasks")}, wantErr: "an addon needs at least one backup or restore task"},
		"addon required with default": {example: "addon", mutate: []mutation{set("spec.backupTasks.parameters", []any{map[string]any{"name": "x", "required": true, "default": "y"}})}, wantErr: "a required parameter cannot have a default"},
		"addon relative driver path":  {example: "addon", mutate: []mutation{set("spec.backupTasks.driver", "driver")}, wantErr: "driver must be an absolute path inside the Function's image"},
		"addon task name with caps":   {example: "addon", mutate: []mutation{set("spec.backupTasks.name", "Logical_Backup")}, wantErr: "a task name must be lower-case letters, digits and dashes"},
		"addon parameter name dashed": {example: "addon", mutate: []mutation{set("spec.backupTasks.parameters", []any{map[string]any{"name": "auth-secret"}})}, wantErr: "a parameter name must be letters, digits and underscores"},

		"function example":       {example: "function"},
		"function without image": {example: "function", mutate: []mutation{unset("spec.image")}, wantErr: "spec.image: Required value"},
	}
	ns := newNamespace(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			obj := example(t, tc.example, ns)
			obj.SetName(obj.GetName() + "-" + strings.ReplaceAll(strings.ToLower(name), " ", "-"))
			for _, m := range tc.mutate {
				m(t, obj.Object)
			}
			err := k8s.Create(context.Background(), obj)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("valid object rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("invalid object accepted; want error containing %q", tc.wantErr)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

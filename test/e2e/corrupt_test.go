package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/test/demo"
)

// corruptedPack: one data pack of a repository is overwritten in the
// bucket, through the S3 API, with bytes of the same size. An integrity
// check that reads all data, asked for with the check-requested
// annotation, sets IntegrityChecked False with a Warning Event; a restore
// of the Snapshot that needs the pack fails with a reason, and so does its
// verification, which before the corruption counted the dump's points and
// series as the backup recorded them.
func corruptedPack(t *testing.T, e *demo.Env) {
	e = e.With(t)
	apply(t, e, oneShot, map[string]string{"Name": "corrupt", "Secret": "restic-password"})
	bks := e.WaitBackupSession(backupconfiguration.FirstSessionName("corrupt", "manual"), corev1alpha1.BackupSessionSucceeded)
	countsVerified(t, e, bks.Status.Snapshots[0].Name)
	key := corruptOnePack(t, e, "corrupt")
	t.Logf("corrupted pack %s", key)

	started := time.Now()
	if _, err := e.Kubectl(demo.Context(t, time.Minute), "patch", "repository", "-n", e.Params.Namespace, "corrupt-repo", "--type=merge", "-p",
		`{"metadata":{"annotations":{"`+storagev1alpha1.AnnotationCheckRequested+`":"after-corruption"}},"spec":{"integrityCheck":{"schedule":"8760h","readDataSubset":"100%"}}}`); err != nil {
		t.Fatal(err)
	}
	var repo storagev1alpha1.Repository
	// The check Job writes its verdict into status.integrityCheck; the
	// operator derives the condition from it when it next reconciles (once
	// it sees the Job end), so wait for a condition naming this run.
	waitObject(t, e, e.Params.Namespace, "corrupt-repo", &repo, func(r *storagev1alpha1.Repository) (bool, string) {
		ic := r.Status.IntegrityCheck
		c := meta.FindStatusCondition(r.Status.Conditions, storagev1alpha1.ConditionIntegrityChecked)
		return ic != nil && ic.Request == "after-corruption" && c != nil && strings.Contains(c.Message, ic.Job),
			fmt.Sprintf("integrityCheck %+v, condition %+v", ic, c)
	})
	c := meta.FindStatusCondition(repo.Status.Conditions, storagev1alpha1.ConditionIntegrityChecked)
	if c == nil || c.Status != "False" || c.Reason != storagev1alpha1.ReasonIntegrityCheckFailed {
		t.Errorf("IntegrityChecked = %+v, want False/%s", c, storagev1alpha1.ReasonIntegrityCheckFailed)
	} else {
		t.Logf("as the user sees it: %s: %s (time to the final state: %s)", c.Reason, c.Message, time.Since(started).Round(time.Second))
	}
	// The operator records the Event once it sees the check Job end,
	// after the Job wrote the verdict.
	err := demo.Poll(demo.Context(t, demo.Timeout), "a Warning Event on Repository corrupt-repo", func(ctx context.Context) (bool, string, error) {
		var events corev1.EventList
		if err := e.Kube.List(ctx, &events, client.InNamespace(e.Params.Namespace)); err != nil {
			return false, "", err
		}
		for _, ev := range events.Items {
			if ev.InvolvedObject.Name == "corrupt-repo" && ev.Type == corev1.EventTypeWarning && ev.Reason == storagev1alpha1.ReasonIntegrityCheckFailed {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("%d Events in the namespace, none a Warning %s on corrupt-repo", len(events.Items), storagev1alpha1.ReasonIntegrityCheckFailed), nil
	})
	if err != nil {
		t.Error(err)
	}

	e.Apply(demo.RestoreSession, func(p *demo.Params) {
		p.Name, p.Repository, p.Snapshot = "from-corrupt", "corrupt-repo", bks.Status.Snapshots[0].Name
	})
	rs := e.WaitRestoreSession("from-corrupt", corev1alpha1.RestoreFailed)
	if snap := verifySnapshot(t, e, bks.Status.Snapshots[0].Name, "after-corruption"); snap.Status.VerificationStatus != storagev1alpha1.VerificationFailed ||
		!strings.Contains(snap.Status.Verification.Message, ": read back failed: restic dump") {
		t.Errorf("verification of the Snapshot whose pack is corrupted: %s: %s", snap.Status.VerificationStatus, snap.Status.Verification.Message)
	}
	if c := meta.FindStatusCondition(rs.Status.Conditions, corev1alpha1.ConditionRestoreSucceeded); c == nil || c.Message == "" {
		t.Errorf("RestoreSucceeded condition = %+v, want a reason and message", c)
	} else {
		t.Logf("the restore, as the user sees it: %s: %s", c.Reason, c.Message)
	}
	logTimeToFinal(t, rs.CreationTimestamp.Time, rs.Status.Conditions)
}

// corruptOnePack overwrites the largest data pack of the restic
// repository in directory dir with as many other bytes, and returns its key.
func corruptOnePack(t *testing.T, e *demo.Env, dir string) string {
	t.Helper()
	ctx := demo.Context(t, time.Minute)
	s3c, _, err := e.MinIO(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prefix := path.Join(e.Params.Prefix, e.Params.Namespace, dir, "data") + "/"
	list, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(e.Params.Bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var key string
	var size int64
	for _, o := range list.Contents {
		if aws.ToInt64(o.Size) > size {
			key, size = aws.ToString(o.Key), aws.ToInt64(o.Size)
		}
	}
	if key == "" {
		t.Fatalf("no pack under s3://%s/%s", e.Params.Bucket, prefix)
	}
	obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(e.Params.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 4; i < len(data)/2; i++ {
		data[i] ^= 0xff
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(e.Params.Bucket), Key: aws.String(key),
		Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	return key
}

package repository

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

func TestNextCheck(t *testing.T) {
	created := time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)
	last := time.Date(2026, 3, 4, 2, 0, 0, 0, time.UTC)
	now := time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		// schedule is spec.integrityCheck.schedule; "" leaves integrityCheck unset.
		schedule string
		// lastCheck is status.integrityCheck.lastCheckTime; zero: never checked.
		lastCheck time.Time
		// request and answered are the annotation and the request the last
		// check answered.
		request, answered string
		// want is the next check; zero: none scheduled.
		want time.Time
		// err is a fragment of the error, if one is expected.
		err string
	}{
		"nothing scheduled":          {},
		"interval from creation":     {schedule: "24h", want: created.Add(24 * time.Hour)},
		"interval from the last":     {schedule: "168h", lastCheck: last, want: last.Add(168 * time.Hour)},
		"cron after the last":        {schedule: "0 3 * * 0", lastCheck: last, want: time.Date(2026, 3, 8, 3, 0, 0, 0, time.UTC)},
		"request not answered":       {request: "r1", answered: "r0", want: now},
		"request answered":           {schedule: "24h", lastCheck: last, request: "r1", answered: "r1", want: last.Add(24 * time.Hour)},
		"request without a schedule": {request: "r1", want: now},
		"interval too short":         {schedule: "10s", err: "at least 1m"},
		"neither interval nor cron":  {schedule: "weekly", err: "neither an interval"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}}
			if tc.schedule != "" {
				repo.Spec.IntegrityCheck = &storagev1alpha1.IntegrityCheck{Schedule: tc.schedule}
			}
			if tc.request != "" {
				repo.Annotations = map[string]string{storagev1alpha1.AnnotationCheckRequested: tc.request}
			}
			if !tc.lastCheck.IsZero() || tc.answered != "" {
				repo.Status.IntegrityCheck = &storagev1alpha1.IntegrityCheckStatus{Request: tc.answered}
				if !tc.lastCheck.IsZero() {
					repo.Status.IntegrityCheck.LastCheckTime = &metav1.Time{Time: tc.lastCheck}
				}
			}
			got, err := nextCheck(repo, now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("next check %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestVerifyRequest(t *testing.T) {
	verified := &storagev1alpha1.SnapshotVerification{Request: "r1"}
	tests := map[string]struct {
		// annotation is the keepsake.dev/verify annotation; "" for none.
		annotation string
		// verification is the Snapshot's latest verification.
		verification *storagev1alpha1.SnapshotVerification
		// every and count are the configuration's verifyEvery and the
		// Snapshot's place among its successful backups.
		every, count int32
		// want is the request to verify for; "" for none.
		want string
	}{
		"nothing asks":                     {count: 3},
		"annotation asks":                  {annotation: "r1", count: 1, want: "r1"},
		"annotation answered":              {annotation: "r1", verification: verified, count: 1},
		"annotation asks again":            {annotation: "r2", verification: verified, count: 1, want: "r2"},
		"every 3rd, the 3rd":               {every: 3, count: 3, want: RequestVerifyEvery},
		"every 3rd, the 6th":               {every: 3, count: 6, want: RequestVerifyEvery},
		"every 3rd, the 4th":               {every: 3, count: 4},
		"every 3rd, the 3rd, done already": {every: 3, count: 3, verification: verified},
		"every backup":                     {every: 1, count: 1, want: RequestVerifyEvery},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			snap := &storagev1alpha1.Snapshot{Status: storagev1alpha1.SnapshotStatus{Verification: tc.verification}}
			if tc.annotation != "" {
				snap.Annotations = map[string]string{storagev1alpha1.AnnotationVerify: tc.annotation}
			}
			if got := verifyRequest(snap, tc.every, tc.count); got != tc.want {
				t.Fatalf("verifyRequest = %q, want %q", got, tc.want)
			}
		})
	}
}

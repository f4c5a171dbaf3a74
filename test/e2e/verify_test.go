package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/test/demo"
)

// verifySnapshot asks for a verification of Snapshot name, with kubectl
// as a user would (annotation keepsake.dev/verify), and waits for the
// verdict that answers the request.
func verifySnapshot(t *testing.T, e *demo.Env, name, request string) *storagev1alpha1.Snapshot {
	t.Helper()
	if _, err := e.Kubectl(demo.Context(t, time.Minute), "annotate", "--overwrite", "snapshot", "-n", e.Params.Namespace, name,
		storagev1alpha1.AnnotationVerify+"="+request); err != nil {
		t.Fatal(err)
	}
	var snap storagev1alpha1.Snapshot
	waitObject(t, e, e.Params.Namespace, name, &snap, func(s *storagev1alpha1.Snapshot) (bool, string) {
		v := s.Status.Verification
		return v != nil && v.Request == request, fmt.Sprintf("verification %+v", v)
	})
	t.Logf("verification of Snapshot %s, as the user sees it: %s: %s", name, snap.Status.VerificationStatus, snap.Status.Verification.Message)
	return &snap
}

// countsVerified: the backup of Snapshot name recorded its dump's points
// and series, and verification, run in the HyperbyteDB driver's image,
// counted the same in the stored dump.
func countsVerified(t *testing.T, e *demo.Env, name string) {
	t.Helper()
	snap := verifySnapshot(t, e, name, "counts")
	if len(snap.Status.Components) != 1 {
		t.Fatalf("Snapshot %s has components %v, want one", name, snap.Status.Components)
	}
	for component, c := range snap.Status.Components {
		want := fmt.Sprintf("%s (%s, %d points and %d series as recorded)", component, c.Size, c.Counts["points"], c.Counts["series"])
		if c.Counts["points"] == 0 || c.Counts["series"] == 0 || snap.Status.VerificationStatus != storagev1alpha1.Verified ||
			!strings.Contains(snap.Status.Verification.Message, want) {
			t.Fatalf("Snapshot %s: counts %v, %s: %q; want Verified saying %q", name, c.Counts, snap.Status.VerificationStatus,
				snap.Status.Verification.Message, want)
		}
	}
}

package repository_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestPathSchema checks that the API server refuses every spelling of a
// path but the canonical one, with a message saying why, and any change
// of a Repository's location fields.
func TestPathSchema(t *testing.T) {
	env := testenv.Default
	ns := env.Namespace(t, nil)
	tests := map[string]struct {
		// path is spec.path of the new Repository.
		path string
		// wantMessage is part of the refusal; empty means accepted.
		wantMessage string
	}{
		"dot":              {path: ".", wantMessage: "must not contain . or .."},
		"dot dot":          {path: "..", wantMessage: "must not contain . or .."},
		"leading dot":      {path: "./db", wantMessage: "must not contain . or .."},
		"inner dot dot":    {path: "a/../b", wantMessage: "must not contain . or .."},
		"trailing dot":     {path: "db/.", wantMessage: "must not contain . or .."},
		"double slash":     {path: "a//b", wantMessage: "no leading or trailing /, no //"},
		"trailing slash":   {path: "db/", wantMessage: "no leading or trailing /, no //"},
		"plain":            {path: "db/logical"},
		"dot in a name":    {path: ".hidden/db.v2"},
		"dots in the name": {path: "db/...x"},
	}
	for name, tc := range tests {
		repo := newRepository(ns, "path-"+strings.ReplaceAll(name, " ", "-"), "local")
		repo.Spec.Path = tc.path
		err := env.Client.Create(context.Background(), repo)
		switch {
		case tc.wantMessage == "" && err != nil:
			t.Errorf("%s: path %q refused: %v", name, tc.path, err)
		case tc.wantMessage != "" && (err == nil || !strings.Contains(err.Error(), tc.wantMessage)):
			t.Errorf("%s: path %q: error %v, want one saying %q", name, tc.path, err, tc.wantMessage)
		}
	}

	repo := newRepository(ns, "immutable", "local")
	env.Create(t, repo)
	changes := map[string]func(*storagev1alpha1.RepositorySpec){
		"path is immutable":             func(s *storagev1alpha1.RepositorySpec) { s.Path = "elsewhere" },
		"storageRef is immutable":       func(s *storagev1alpha1.RepositorySpec) { s.StorageRef.Name = "other" },
		"encryptionSecret is immutable": func(s *storagev1alpha1.RepositorySpec) { s.EncryptionSecret.Name = "other" },
	}
	for want, change := range changes {
		// Read afresh and retry conflicts: the reconciler writes the status
		// meanwhile, and a stale resourceVersion is refused before the rule
		// is judged.
		var err error
		testenv.Eventually(t, func(ctx context.Context) (bool, string) {
			if err = env.Client.Get(ctx, client.ObjectKeyFromObject(repo), repo); err != nil {
				return false, err.Error()
			}
			changed := repo.DeepCopy()
			change(&changed.Spec)
			err = env.Client.Update(ctx, changed)
			return !apierrors.IsConflict(err), fmt.Sprint(err)
		})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("update: error %v, want one saying %q", err, want)
		}
	}
}

// TestLocationInUse checks that of two Repositories on one location, one
// of them through a second BackupStorage attached to the same bucket and
// prefix, the second is NotReady with LocationInUse, and that one nested
// inside an older one, however deep, is NotReady with LocationOverlaps;
// the older stays Ready.
func TestLocationInUse(t *testing.T) {
	env := testenv.Default
	f := newMinIOFixture(t)
	var owner storagev1alpha1.BackupStorage
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "minio"}, &owner); err != nil {
		t.Fatal(err)
	}
	shared := owner.DeepCopy()
	shared.ObjectMeta = metav1.ObjectMeta{Namespace: f.ns, Name: "minio-shared"}
	shared.Spec.Attach = storagev1alpha1.AttachShared
	shared.Spec.Storage.S3.Endpoint += "/" // another spelling of one endpoint
	env.Create(t, shared)
	env.WaitCondition(t, shared, func() []metav1.Condition { return shared.Status.Conditions },
		storagev1alpha1.ConditionReady, metav1.ConditionTrue, storagev1alpha1.ReasonPrefixAttached)

	first, _ := f.repository(t, "a-first", "db", storagev1alpha1.RepositoryDelete)
	second := newRepository(f.ns, "b-second", "minio-shared")
	second.Spec.Path = "db"
	nested := newRepository(f.ns, "c-nested", "minio")
	nested.Spec.Path = "db/a/b/c/d/e"
	env.Create(t, second, nested)
	c := waitReady(t, second, metav1.ConditionFalse, storagev1alpha1.ReasonLocationInUse)
	if !strings.Contains(c.Message, "Repository "+f.ns+"/a-first") {
		t.Errorf("message %q, want it to name the Repository using the location", c.Message)
	}
	waitReady(t, nested, metav1.ConditionFalse, storagev1alpha1.ReasonLocationOverlaps)
	waitReady(t, first, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
}

// TestWipeOutLeavesSharedLocation checks that a Repository with
// deletionPolicy WipeOut deletes nothing when another Repository object
// uses its location or one nested in it, and nothing through a storage
// attached with attach: Shared.
func TestWipeOutLeavesSharedLocation(t *testing.T) {
	t.Run("same location", func(t *testing.T) {
		f := newMinIOFixture(t)
		_, kept := f.repository(t, "a-first", "db", storagev1alpha1.RepositoryDelete)
		second := newRepository(f.ns, "b-second", "minio")
		second.Spec.Path, second.Spec.DeletionPolicy = "db", storagev1alpha1.RepositoryWipeOut
		testenv.Default.Create(t, second)
		waitReady(t, second, metav1.ConditionFalse, storagev1alpha1.ReasonLocationInUse)
		waitFinalizer(t, second, true)
		deleteAndWaitGone(t, second)
		note := waitEvent(t, second, corev1.EventTypeWarning, storagev1alpha1.ReasonDataLeft)
		if !strings.Contains(note, "a-first") {
			t.Errorf("event note %q, want it to name Repository a-first", note)
		}
		checkObjects(t, f.store, kept)
	})
	t.Run("nested object", func(t *testing.T) {
		f := newMinIOFixture(t)
		inner, kept := f.repository(t, "a-inner", "db/x/y/z/w", storagev1alpha1.RepositoryDelete)
		outer := newRepository(f.ns, "b-outer", "minio")
		outer.Spec.Path, outer.Spec.DeletionPolicy = "db", storagev1alpha1.RepositoryWipeOut
		testenv.Default.Create(t, outer)
		waitReady(t, outer, metav1.ConditionFalse, storagev1alpha1.ReasonLocationOverlaps)
		waitFinalizer(t, outer, true)
		deleteAndWaitGone(t, outer)
		waitEvent(t, outer, corev1.EventTypeWarning, storagev1alpha1.ReasonDataLeft)
		checkObjects(t, f.store, kept)
		waitReady(t, inner, metav1.ConditionTrue, storagev1alpha1.ReasonRepositoryReady)
	})
	t.Run("inside a stored repository", func(t *testing.T) {
		f := newMinIOFixture(t)
		kept := f.storedRepository(t, "outer", "db")
		inner, _ := f.repository(t, "inner", "db/logical", storagev1alpha1.RepositoryWipeOut)
		waitFinalizer(t, inner, true)
		deleteAndWaitGone(t, inner)
		waitEvent(t, inner, corev1.EventTypeWarning, storagev1alpha1.ReasonDataLeft)
		checkObjects(t, f.store, kept)
	})
}

package jobs

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

// TargetConsent checks that namespace target lets objects of namespace from
// back up (annotation corev1alpha1.AnnotationAllowBackupFrom) or restore
// into (AnnotationAllowRestoreFrom) its applications. A target in from
// itself needs no consent. Refusal is a *Problem with reason
// NamespaceNotAllowed: without it anyone able to create a RestoreSession in
// one namespace could overwrite another namespace's database with the
// operator's privileges.
func TargetConsent(ctx context.Context, live client.Reader, from, target, annotation string) error {
	if target == "" || target == from {
		return nil
	}
	var ns corev1.Namespace
	if err := live.Get(ctx, client.ObjectKey{Name: target}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			return NewProblem(corev1alpha1.ReasonNamespaceNotAllowed, "target namespace %s not found", target)
		}
		return fmt.Errorf("get namespace %s: %w", target, err)
	}
	if !AllowsFrom(ns.Annotations[annotation], from) {
		return NewProblem(corev1alpha1.ReasonNamespaceNotAllowed,
			"namespace %s does not allow targets to be used from namespace %s: annotate it %s=%s",
			target, from, annotation, from)
	}
	return nil
}

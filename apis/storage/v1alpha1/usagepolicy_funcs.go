package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// AllowsNamespace reports whether objects in namespace ns, whose labels are
// nsLabels, may use an object in ownNamespace governed by this policy. A nil
// policy, like from: Same, allows only ownNamespace.
func (p *UsagePolicy) AllowsNamespace(ownNamespace, ns string, nsLabels map[string]string) (bool, error) {
	if ns == ownNamespace {
		return true, nil
	}
	if p == nil {
		return false, nil
	}
	switch p.AllowedNamespaces.From {
	case NamespacesFromAll:
		return true, nil
	case NamespacesFromSelector:
		return selectorMatches(p.AllowedNamespaces.Selector, nsLabels)
	default:
		return false, nil
	}
}

func selectorMatches(sel *metav1.LabelSelector, nsLabels map[string]string) (bool, error) {
	if sel == nil {
		return false, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, fmt.Errorf("usage policy selector: %w", err)
	}
	return s.Matches(labels.Set(nsLabels)), nil
}

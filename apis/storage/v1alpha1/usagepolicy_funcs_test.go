package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAllowsNamespace(t *testing.T) {
	teamA := map[string]string{"team": "a"}
	cases := map[string]struct {
		policy  *UsagePolicy      // the policy under test
		ns      string            // namespace asking to use the object
		labels  map[string]string // labels of that namespace
		want    bool              // whether it is allowed
		wantErr bool              // whether the selector itself is broken
	}{
		"nil policy, own namespace":   {ns: "own", want: true},
		"nil policy, other namespace": {ns: "other", want: false},
		"same, other namespace":       {policy: from(NamespacesFromSame, nil), ns: "other", want: false},
		"all, other namespace":        {policy: from(NamespacesFromAll, nil), ns: "other", want: true},
		"selector matches":            {policy: from(NamespacesFromSelector, &metav1.LabelSelector{MatchLabels: teamA}), ns: "other", labels: teamA, want: true},
		"selector does not match":     {policy: from(NamespacesFromSelector, &metav1.LabelSelector{MatchLabels: teamA}), ns: "other", labels: map[string]string{"team": "b"}, want: false},
		"selector missing":            {policy: from(NamespacesFromSelector, nil), ns: "other", labels: teamA, want: false},
		"selector broken": {policy: from(NamespacesFromSelector, &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "team", Operator: "Near"},
		}}), ns: "other", wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := tc.policy.AllowsNamespace("own", tc.ns, tc.labels)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("AllowsNamespace = %v, want %v", got, tc.want)
			}
		})
	}
}

func from(f NamespacesFrom, sel *metav1.LabelSelector) *UsagePolicy {
	return &UsagePolicy{AllowedNamespaces: AllowedNamespaces{From: f, Selector: sel}}
}

package testenv

import (
	"context"
	"fmt"
	"os/exec"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/keepsake-dev/keepsake/test/servers"
)

// OperatorUser is the user the manager runs as in tests.
const OperatorUser = "keepsake-operator"

// operatorConfig returns a client configuration for a user holding exactly
// the ClusterRole that controller-gen generates from the operator's RBAC
// markers, so tests fail when a reconciler needs a permission the markers
// do not grant.
func operatorConfig(ctx context.Context, env *envtest.Environment, admin client.Client) (*rest.Config, error) {
	role, err := generatedRole()
	if err != nil {
		return nil, err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: OperatorUser}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := admin.Create(ctx, obj); err != nil {
			return nil, fmt.Errorf("create %T %s: %w", obj, obj.GetName(), err)
		}
	}
	user, err := env.AddUser(envtest.User{Name: OperatorUser}, nil)
	if err != nil {
		return nil, fmt.Errorf("add user %s: %w", OperatorUser, err)
	}
	return user.Config(), nil
}

// generatedRole runs controller-gen over the operator's packages.
func generatedRole() (*rbacv1.ClusterRole, error) {
	bin, err := servers.FindBin("controller-gen")
	if err != nil {
		return nil, err
	}
	root, err := servers.FindRepoRoot()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "rbac:roleName="+OperatorUser, "paths=./operator/...", "output:rbac:stdout")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("controller-gen rbac: %w", err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(out, &role); err != nil {
		return nil, fmt.Errorf("parse generated ClusterRole: %w", err)
	}
	return &role, nil
}

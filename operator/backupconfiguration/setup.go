// Package backupconfiguration reconciles BackupConfigurations: it checks the
// target, storages, addon and schedules, then creates the Repositories, one
// CronJob per session that runs `keepsake trigger`, and one immediate first
// BackupSession per session.
package backupconfiguration

import (
	"context"
	"maps"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// Field indexes the reconciler looks objects up by.
const (
	// IndexBackupSessionConfiguration indexes BackupSessions by
	// spec.backupConfiguration.
	IndexBackupSessionConfiguration = "spec.backupConfiguration"
	// indexDependencies indexes BackupConfigurations by what they depend
	// on, as "<Kind>/<namespace>/<name>" (no namespace for Addons).
	indexDependencies = "keepsake.dev/dependencies"
)

// +kubebuilder:rbac:groups=core.keepsake.dev,resources=backupconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=core.keepsake.dev,resources=backupconfigurations/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=core.keepsake.dev,resources=backupconfigurations/finalizers,verbs=update
// +kubebuilder:rbac:groups=core.keepsake.dev,resources=backupsessions,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=repositories,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=backupstorages;retentionpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=addons.keepsake.dev,resources=addons;functions,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// Targets the operator may check by default; the chart's
// targetReadRules value grants more kinds.
// +kubebuilder:rbac:groups=apps,resources=statefulsets;deployments;daemonsets,verbs=get
// +kubebuilder:rbac:groups="",resources=services;persistentvolumeclaims,verbs=get
// +kubebuilder:rbac:groups=hyperbytedb.hyperbyte.cloud,resources=hyperbytedbclusters,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Setup registers the BackupConfiguration reconciler with mgr. A
// configuration is reconciled again when a storage, retention policy,
// addon or Secret it uses changes, and when its Repositories, CronJobs or
// BackupSessions do. Secrets are watched by their metadata only: the cache
// never holds a Secret's data, which checkSecrets reads live. Targets are of
// any kind and are not watched: a missing target is checked again with
// backoff.
func Setup(mgr ctrl.Manager, opts Options) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &corev1alpha1.BackupSession{}, IndexBackupSessionConfiguration,
		func(o client.Object) []string {
			return []string{o.(*corev1alpha1.BackupSession).Spec.BackupConfiguration}
		}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &corev1alpha1.BackupConfiguration{}, indexDependencies, dependencies); err != nil {
		return err
	}
	r := &Reconciler{
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		RESTMapper: mgr.GetRESTMapper(),
		Events:     mgr.GetEventRecorder("keepsake-backupconfiguration"),
		Options:    opts,
	}
	byDependency := handler.EnqueueRequestsFromMapFunc(dependents(mgr.GetClient()))
	return ctrl.NewControllerManagedBy(mgr).
		Named("backupconfiguration").
		For(&corev1alpha1.BackupConfiguration{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&storagev1alpha1.Repository{}, handler.EnqueueRequestsFromMapFunc(configurationsOfRepository(mgr.GetClient())),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, readyChanged{}))).
		Owns(&batchv1.CronJob{}).
		Watches(&corev1alpha1.BackupSession{}, handler.EnqueueRequestsFromMapFunc(configurationOf)).
		Watches(&storagev1alpha1.BackupStorage{}, byDependency).
		Watches(&storagev1alpha1.RetentionPolicy{}, byDependency).
		Watches(&addonsv1alpha1.Addon{}, byDependency).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.configurationsOfSecret), builder.OnlyMetadata).
		Complete(r)
}

// dependencies returns the index keys of what a configuration uses.
func dependencies(o client.Object) []string {
	bc := o.(*corev1alpha1.BackupConfiguration)
	var keys []string
	for _, b := range bc.Spec.Backends {
		keys = append(keys, "BackupStorage/"+namespaceOr(b.StorageRef.Namespace, bc.Namespace)+"/"+b.StorageRef.Name)
		if rp := b.RetentionPolicy; rp != nil {
			keys = append(keys, "RetentionPolicy/"+namespaceOr(rp.Namespace, bc.Namespace)+"/"+rp.Name)
		}
	}
	for _, s := range bc.Spec.Sessions {
		keys = append(keys, "Addon//"+s.Addon.Name)
		for _, ri := range s.Repositories {
			keys = append(keys, "Repository/"+bc.Namespace+"/"+ri.Name,
				"Secret/"+namespaceOr(ri.EncryptionSecret.Namespace, bc.Namespace)+"/"+ri.EncryptionSecret.Name)
		}
	}
	return keys
}

// configurationsOfSecret maps a Secret to the configurations that need it:
// those naming it as an encryption Secret (in any namespace, by the index)
// and those of its namespace with a secret parameter naming it (which an
// Addon's default can set, so they are asked).
func (r *Reconciler) configurationsOfSecret(ctx context.Context, o client.Object) []reconcile.Request {
	key := client.ObjectKeyFromObject(o)
	var naming, local corev1alpha1.BackupConfigurationList
	if err := r.Client.List(ctx, &naming, client.MatchingFields{indexDependencies: "Secret/" + key.Namespace + "/" + key.Name}); err != nil {
		return nil
	}
	if err := r.Client.List(ctx, &local, client.InNamespace(key.Namespace)); err != nil {
		return nil
	}
	reqs := map[reconcile.Request]bool{}
	for _, bc := range naming.Items {
		reqs[reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bc)}] = true
	}
	for _, bc := range local.Items {
		needs, err := r.secretNeeds(ctx, &bc)
		if err == nil && slices.ContainsFunc(needs, func(n secretNeed) bool { return n.key == key }) {
			reqs[reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bc)}] = true
		}
	}
	return slices.Collect(maps.Keys(reqs))
}

// dependents maps a storage, retention policy or addon to the
// configurations that use it.
func dependents(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var kind string
		switch o.(type) {
		case *storagev1alpha1.BackupStorage:
			kind = "BackupStorage"
		case *storagev1alpha1.RetentionPolicy:
			kind = "RetentionPolicy"
		case *addonsv1alpha1.Addon:
			kind = "Addon"
		case *storagev1alpha1.Repository:
			kind = "Repository"
		}
		var list corev1alpha1.BackupConfigurationList
		key := kind + "/" + o.GetNamespace() + "/" + o.GetName()
		if err := c.List(ctx, &list, client.MatchingFields{indexDependencies: key}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, bc := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bc)})
		}
		return reqs
	}
}

// configurationsOfRepository maps a Repository to the configuration whose
// label it carries (Repositories are not owned, so that they outlive it,
// and a moved one has a derived name) and to those naming it.
func configurationsOfRepository(c client.Reader) handler.MapFunc {
	naming := dependents(c)
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		reqs := naming(ctx, o)
		if name := o.GetLabels()[corev1alpha1.LabelBackupConfiguration]; name != "" {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}})
		}
		return reqs
	}
}

// readyChanged passes updates that change an object's Ready condition
// (status, reason or observed generation), so that a configuration follows
// its Repositories' readiness within seconds while ignoring their other
// status updates (snapshot counts, sizes).
type readyChanged struct {
	predicate.Funcs
}

// Update implements predicate.Predicate.
func (readyChanged) Update(e event.UpdateEvent) bool {
	oldRepo, ok1 := e.ObjectOld.(*storagev1alpha1.Repository)
	newRepo, ok2 := e.ObjectNew.(*storagev1alpha1.Repository)
	if !ok1 || !ok2 {
		return false
	}
	before := meta.FindStatusCondition(oldRepo.Status.Conditions, storagev1alpha1.ConditionReady)
	after := meta.FindStatusCondition(newRepo.Status.Conditions, storagev1alpha1.ConditionReady)
	if before == nil || after == nil {
		return before != after
	}
	return before.Status != after.Status || before.Reason != after.Reason ||
		before.ObservedGeneration != after.ObservedGeneration
}

// configurationOf maps a BackupSession to its configuration.
func configurationOf(_ context.Context, o client.Object) []reconcile.Request {
	b := o.(*corev1alpha1.BackupSession)
	return []reconcile.Request{{NamespacedName: types.NamespacedName{
		Namespace: b.Namespace, Name: b.Spec.BackupConfiguration,
	}}}
}

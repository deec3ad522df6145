package controller

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/runtime/predicates"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/internal/workpool"
	"github.com/serin-dev/serin/pkg/naming"
	"github.com/serin-dev/serin/pkg/versions"
	"github.com/serin-dev/serin/pkg/workload"
)

// Field indexes on Canaries, so a change to a target or a config finds its
// Canaries through the cache instead of a list of all Canaries.
const (
	// targetIndex holds "<Kind>/<name>" of spec.targetRef.
	targetIndex = ".spec.targetRef"
	// configIndex holds the keys of status.trackedConfigs
	// ("configmap/<name>", "secret/<name>").
	configIndex = ".status.trackedConfigs"
)

// WorkLimits bound a pool of background work (workpool.Limits).
type WorkLimits = workpool.Limits

// CanaryReconcilerOptions tunes the controller.
type CanaryReconcilerOptions struct {
	RateLimiter workqueue.TypedRateLimiter[reconcile.Request]
	// Checks bounds the goroutines that run the Canaries' checks, in all
	// and per namespace (workpool.Limits; zero takes DefaultCheckLimits).
	Checks workpool.Limits
	// Notifications bounds the delivery of event webhooks and alerts
	// (zero takes DefaultNotificationLimits).
	Notifications workpool.Limits
}

// DefaultCheckLimits let 64 Canaries' checks run at once, 16 of one
// namespace. A run mostly waits on the network, so the goroutines are cheap;
// the per-namespace share is what keeps one team's hanging webhooks from
// taking them all.
var DefaultCheckLimits = workpool.Limits{Workers: 64, PerTenant: 16, QueuePerTenant: 10000}

// DefaultNotificationLimits deliver 8 notifications at once, one per
// namespace so that each namespace's arrive in order, with at most 100
// waiting per namespace; more are dropped and counted.
var DefaultNotificationLimits = workpool.Limits{Workers: 8, PerTenant: 1, QueuePerTenant: 100}

// SetupWithManager registers the indexes and watches of the Canary
// reconciler.
func (r *CanaryReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts CanaryReconcilerOptions) error {
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &serinv1.Canary{}, targetIndex, func(o client.Object) []string {
		c := o.(*serinv1.Canary)
		return []string{targetKey(c.Spec.TargetRef.Kind, c.Spec.TargetRef.Name)}
	}); err != nil {
		return err
	}
	if err := indexer.IndexField(ctx, &serinv1.Canary{}, configIndex, func(o client.Object) []string {
		c := o.(*serinv1.Canary)
		keys := make([]string, 0, len(c.Status.TrackedConfigs))
		for k := range c.Status.TrackedConfigs {
			keys = append(keys, k)
		}
		return keys
	}); err != nil {
		return err
	}

	if r.checks == nil {
		r.checks = newCheckRuns(workpool.New(ctx, orDefault(opts.Checks, DefaultCheckLimits)))
	}
	if r.notifications == nil {
		r.notifications = workpool.New(ctx, orDefault(opts.Notifications, DefaultNotificationLimits))
	}
	if r.announcements == nil {
		r.announcements = newAnnouncements()
	}
	if r.versions == nil {
		r.versions = versions.New(mgr.GetScheme())
	}
	if r.writes == nil {
		r.writes = versions.New(mgr.GetScheme())
	}
	notOwn := builder.WithPredicates(notOwnWrite(r.writes))
	// Workload events also leave out status updates that cannot move a
	// release.
	workloadEvents := builder.WithPredicates(notOwnWrite(r.writes), workloadChanged)
	return ctrl.NewControllerManagedBy(mgr).
		For(&serinv1.Canary{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicates.ReconcileRequestedPredicate{}, operationRequested),
		)).
		// Primaries, and the Services Serin generates.
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(controllingCanary), workloadEvents).
		Watches(&appsv1.DaemonSet{}, handler.EnqueueRequestsFromMapFunc(controllingCanary), workloadEvents).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(controllingCanary), notOwn).
		// Targets.
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.canariesOfTarget("Deployment")), workloadEvents).
		Watches(&appsv1.DaemonSet{}, handler.EnqueueRequestsFromMapFunc(r.canariesOfTarget("DaemonSet")), workloadEvents).
		// Tracked configs: metadata is enough to see that they changed, and
		// keeps their data out of the cache.
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.canariesOfConfig("configmap")), builder.OnlyMetadata).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.canariesOfConfig("secret")), builder.OnlyMetadata).
		// The plain work queue: controller-runtime's priority queue ranks
		// the requeue of a Canary waiting for its primary below the
		// stream of workload events from other Canaries, which can delay
		// it for minutes on a busy controller.
		// Finished check runs.
		WatchesRawSource(r.checks.source()).
		// Delivered announcements.
		WatchesRawSource(r.announcements.source()).
		WithOptions(controller.Options{RateLimiter: opts.RateLimiter, UsePriorityQueue: new(false)}).
		Complete(r)
}

func orDefault(l, def workpool.Limits) workpool.Limits {
	if l == (workpool.Limits{}) {
		return def
	}
	return l
}

func targetKey(kind, name string) string {
	if kind == "" {
		kind = "Deployment"
	}
	return kind + "/" + name
}

// controllingCanary maps an object Serin generated to the Canary that
// controls it. It does what Owns() does without the owner's REST mapping,
// which Owns() looks up on every event, a cost that showed in the
// controller's allocations (figures: e2e/bench/results.md). A Canary is
// always namespaced.
func controllingCanary(_ context.Context, o client.Object) []reconcile.Request {
	owner := canaryController(o)
	if owner == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: owner.Name}}}
}

// canaryController is the controller reference of an object a Canary
// controls, nil for any other object.
func canaryController(o client.Object) *metav1.OwnerReference {
	owner := metav1.GetControllerOfNoCopy(o)
	if owner == nil || owner.Kind != serinv1.CanaryKind {
		return nil
	}
	if gv, err := schema.ParseGroupVersion(owner.APIVersion); err != nil || gv.Group != serinv1.GroupVersion.Group {
		return nil
	}
	return owner
}

// canariesOfTarget maps a workload to the Canaries that target it. The
// primaries and config copies Serin generates are never a target: their
// events skip the index lookup, half of all workload events.
func (r *CanaryReconciler) canariesOfTarget(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		if canaryController(o) != nil {
			return nil
		}
		return r.lookup(ctx, o.GetNamespace(), targetIndex, targetKey(kind, o.GetName()))
	}
}

func (r *CanaryReconciler) canariesOfConfig(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		// The -primary copies are Serin's own; their changes start nothing,
		// but for a flag rollout's primary, which is its primary workload:
		// its Canary waits to see it created and written.
		if owner := canaryController(o); owner != nil {
			if kind != "configmap" || !strings.HasSuffix(o.GetName(), naming.PrimarySuffix) {
				return nil
			}
			target := strings.TrimSuffix(o.GetName(), naming.PrimarySuffix)
			return slices.DeleteFunc(r.lookup(ctx, o.GetNamespace(), targetIndex, targetKey("ConfigMap", target)), func(req reconcile.Request) bool {
				return req.Name != owner.Name
			})
		}
		reqs := r.lookup(ctx, o.GetNamespace(), configIndex, kind+"/"+o.GetName())
		if kind == "configmap" {
			// A flag rollout's target, before its first observation put it
			// in status.trackedConfigs.
			for _, req := range r.lookup(ctx, o.GetNamespace(), targetIndex, targetKey("ConfigMap", o.GetName())) {
				if !slices.Contains(reqs, req) {
					reqs = append(reqs, req)
				}
			}
		}
		return reqs
	}
}

func (r *CanaryReconciler) lookup(ctx context.Context, namespace, index, key string) []reconcile.Request {
	var list serinv1.CanaryList
	// Only the names are read: the cached objects need no copies.
	if err := r.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{index: key}, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing Canaries by index", "index", index, "key", key)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, c := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&c)})
	}
	return reqs
}

// operationRequested passes updates that ask for a new operation (kubectl
// serin promote, abort, ...), which change no generation.
var operationRequested = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		if e.ObjectOld == nil || e.ObjectNew == nil {
			return false
		}
		id := e.ObjectNew.GetAnnotations()[serinv1.OperationIDAnnotation]
		return id != "" && id != e.ObjectOld.GetAnnotations()[serinv1.OperationIDAnnotation]
	},
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// workloadChanged passes the updates of a target or primary that can matter
// to a release: its spec (generation), labels, annotations, owners or
// deletion, or the status fields its readiness is made from.
var workloadChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld, e.ObjectNew
		if o == nil || n == nil {
			return true
		}
		return o.GetGeneration() != n.GetGeneration() ||
			!maps.Equal(o.GetLabels(), n.GetLabels()) ||
			!maps.Equal(o.GetAnnotations(), n.GetAnnotations()) ||
			!equality.Semantic.DeepEqual(o.GetOwnerReferences(), n.GetOwnerReferences()) ||
			!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
			workload.StateChanged(o, n)
	},
}

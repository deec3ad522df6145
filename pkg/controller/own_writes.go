package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/serin-dev/serin/pkg/versions"
)

// notOwnWrite, on the versions of this controller's writes, passes every
// event but the creation or update of a version the controller already
// knows: the one its own last write caused, whose reconcile has already
// decided what comes next, or one it read around the cache, and acted on.
// The changes that matter after a write (the Deployment controller rolling
// it out) arrive as events of their own. At scale these events were a large
// share of all reconciles (e2e/bench/results.md). A deletion also drops
// what is remembered of the object. After a restart nothing is remembered,
// so the informers' initial creations all pass.
func notOwnWrite(writes *versions.Tracker) predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !writes.Current(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return !writes.Current(e.ObjectNew) },
		DeleteFunc: func(e event.DeleteEvent) bool {
			writes.Forget(e.Object)
			return true
		},
	}
}

// ownWritesClient is the client that workloads and Services are written
// through; it records what each write returned.
type ownWritesClient struct {
	client.Client
	writes *versions.Tracker
}

func (c ownWritesClient) recordObject(obj client.Object, err error) error {
	if err == nil {
		c.writes.Record(obj)
	}
	return err
}

func (c ownWritesClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	return c.recordObject(obj, c.Client.Create(ctx, obj, opts...))
}

func (c ownWritesClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	return c.recordObject(obj, c.Client.Update(ctx, obj, opts...))
}

func (c ownWritesClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	return c.recordObject(obj, c.Client.Patch(ctx, obj, patch, opts...))
}

// Apply records from the response, which the client decodes into the apply
// configuration: the unstructured ones (pkg/apply sends workloads and
// Services as unstructured objects) are what is written through this
// client. Other kinds of apply configuration are written but not recorded,
// so their events pass.
func (c ownWritesClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	if err := c.Client.Apply(ctx, obj, opts...); err != nil {
		return err
	}
	if applied, ok := obj.(unstructuredApplied); ok {
		gvk := applied.GroupVersionKind()
		c.writes.RecordRef(versions.Ref{Kind: gvk.GroupKind(), Namespace: applied.GetNamespace(), Name: applied.GetName()}, applied.GetResourceVersion())
	}
	return nil
}

// unstructuredApplied is what client.ApplyConfigurationFromUnstructured
// returns: it embeds the Unstructured the response is decoded into.
type unstructuredApplied interface {
	GroupVersionKind() schema.GroupVersionKind
	GetNamespace() string
	GetName() string
	GetResourceVersion() string
}

package controller

import (
	"context"
	"encoding/json"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// ownWrites remembers the resourceVersion of each workload and Service as
// this controller last wrote it, so that the watch event of its own write
// does not start another reconcile: the reconcile that wrote has already
// decided what comes next, and the changes that matter after a write (the
// Deployment controller rolling it out) arrive as events of their own. At
// 1,000 Canaries these events were about a third of all reconciles (make
// bench).
type ownWrites struct {
	scheme *runtime.Scheme
	m      sync.Map // objectRef → resourceVersion
}

type objectRef struct {
	kind            schema.GroupKind
	namespace, name string
}

// record keeps the version a write returned.
func (w *ownWrites) record(ref objectRef, resourceVersion string) {
	if resourceVersion != "" {
		w.m.Store(ref, resourceVersion)
	}
}

func (w *ownWrites) refOf(obj client.Object) (objectRef, bool) {
	gvk, err := apiutil.GVKForObject(obj, w.scheme)
	if err != nil {
		return objectRef{}, false
	}
	return objectRef{kind: gvk.GroupKind(), namespace: obj.GetNamespace(), name: obj.GetName()}, true
}

// isOwn is true when obj is the version of this controller's last write.
func (w *ownWrites) isOwn(obj client.Object) bool {
	ref, ok := w.refOf(obj)
	if !ok {
		return false
	}
	rv, ok := w.m.Load(ref)
	return ok && rv.(string) == obj.GetResourceVersion()
}

func (w *ownWrites) forget(obj client.Object) {
	if ref, ok := w.refOf(obj); ok {
		w.m.Delete(ref)
	}
}

// notOwnWrite passes every event but the creation or update that this
// controller's own last write caused; a deletion also drops what is
// remembered of the object. After a restart nothing is remembered, so the
// informers' initial creations all pass.
func (w *ownWrites) notOwnWrite() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !w.isOwn(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return !w.isOwn(e.ObjectNew) },
		DeleteFunc: func(e event.DeleteEvent) bool {
			w.forget(e.Object)
			return true
		},
	}
}

// ownWritesClient is the client that workloads and Services are written
// through; it records what each write returned.
type ownWritesClient struct {
	client.Client
	writes *ownWrites
}

func (c ownWritesClient) recordObject(obj client.Object, err error) error {
	if err == nil {
		if ref, ok := c.writes.refOf(obj); ok {
			c.writes.record(ref, obj.GetResourceVersion())
		}
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
// configuration; its kind and metadata are read back from its JSON.
func (c ownWritesClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	if err := c.Client.Apply(ctx, obj, opts...); err != nil {
		return err
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil // the write succeeded; only its version is unknown
	}
	var applied struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Namespace, Name, ResourceVersion string
		} `json:"metadata"`
	}
	if json.Unmarshal(data, &applied) == nil {
		gv, _ := schema.ParseGroupVersion(applied.APIVersion)
		c.writes.record(objectRef{kind: schema.GroupKind{Group: gv.Group, Kind: applied.Kind}, namespace: applied.Metadata.Namespace, name: applied.Metadata.Name}, applied.Metadata.ResourceVersion)
	}
	return nil
}

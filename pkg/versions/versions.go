// Package versions remembers which version of an object this process last
// saw from the server itself: the response to its own write, or a read
// around the informer cache. A cached object at that version is what the
// server held then, so the cache can be trusted for it, and its watch event
// brings nothing this process does not know.
package versions

import (
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Tracker holds one resourceVersion per object. It is safe for concurrent
// use.
type Tracker struct {
	scheme *runtime.Scheme
	m      sync.Map // Ref → resourceVersion
}

// New returns an empty Tracker; scheme names the kinds of typed objects.
func New(scheme *runtime.Scheme) *Tracker {
	return &Tracker{scheme: scheme}
}

// Ref names an object across kinds.
type Ref struct {
	Kind            schema.GroupKind
	Namespace, Name string
}

func (t *Tracker) refOf(obj client.Object) (Ref, bool) {
	gvk, err := apiutil.GVKForObject(obj, t.scheme)
	if err != nil {
		return Ref{}, false
	}
	return Ref{Kind: gvk.GroupKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}, true
}

// Record keeps obj's resourceVersion.
func (t *Tracker) Record(obj client.Object) {
	if ref, ok := t.refOf(obj); ok {
		t.RecordRef(ref, obj.GetResourceVersion())
	}
}

// RecordRef keeps the resourceVersion of the object ref names.
func (t *Tracker) RecordRef(ref Ref, resourceVersion string) {
	if resourceVersion != "" {
		t.m.Store(ref, resourceVersion)
	}
}

// Current is true when obj is at the version last recorded for it.
func (t *Tracker) Current(obj client.Object) bool {
	ref, ok := t.refOf(obj)
	if !ok {
		return false
	}
	rv, ok := t.m.Load(ref)
	return ok && rv.(string) == obj.GetResourceVersion()
}

// Forget drops obj's version: after a failed write what the server holds is
// unknown, and a deleted object needs none. Only obj's kind, namespace and
// name are read.
func (t *Tracker) Forget(obj client.Object) {
	if ref, ok := t.refOf(obj); ok {
		t.m.Delete(ref)
	}
}

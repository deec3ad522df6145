package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// objectVersions remembers, per object, the resourceVersion this controller
// last wrote or read around the cache: a cached object at that version is
// what the server held then. The reconciler keeps two:
//   - of Canaries, so that a reconcile reads a Canary around the cache only
//     when the cache may not hold the controller's last write (the first
//     reconcile of each Canary in a process always does);
//   - of the workloads and Services it writes, so that the watch event of
//     its own write starts no reconcile (notOwnWrite).
type objectVersions struct {
	scheme *runtime.Scheme
	m      sync.Map // objectRef → resourceVersion
}

func newObjectVersions(scheme *runtime.Scheme) *objectVersions {
	return &objectVersions{scheme: scheme}
}

type objectRef struct {
	kind            schema.GroupKind
	namespace, name string
}

func (v *objectVersions) refOf(obj client.Object) (objectRef, bool) {
	gvk, err := apiutil.GVKForObject(obj, v.scheme)
	if err != nil {
		return objectRef{}, false
	}
	return objectRef{kind: gvk.GroupKind(), namespace: obj.GetNamespace(), name: obj.GetName()}, true
}

// record keeps obj's resourceVersion.
func (v *objectVersions) record(obj client.Object) {
	if ref, ok := v.refOf(obj); ok {
		v.recordRef(ref, obj.GetResourceVersion())
	}
}

func (v *objectVersions) recordRef(ref objectRef, resourceVersion string) {
	if resourceVersion != "" {
		v.m.Store(ref, resourceVersion)
	}
}

// current is true when obj is at the version last recorded for it.
func (v *objectVersions) current(obj client.Object) bool {
	ref, ok := v.refOf(obj)
	if !ok {
		return false
	}
	rv, ok := v.m.Load(ref)
	return ok && rv.(string) == obj.GetResourceVersion()
}

// forget drops obj's version: after a failed write what the server holds is
// unknown, and a deleted object needs none.
func (v *objectVersions) forget(obj client.Object) {
	if ref, ok := v.refOf(obj); ok {
		v.m.Delete(ref)
	}
}

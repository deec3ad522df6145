package controller

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// canaryVersions remembers, per Canary, the resourceVersion this controller
// last wrote or read around the cache. A cached Canary at that version is
// current, so the reconcile needs no GET; any other version (the cache has
// not caught up, or someone else wrote since) is read around the cache.
// The first reconcile of each Canary in a process always reads around it.
type canaryVersions struct{ m sync.Map } // types.NamespacedName → string

func (v *canaryVersions) current(c *serinv1.Canary) bool {
	rv, ok := v.m.Load(types.NamespacedName{Namespace: c.Namespace, Name: c.Name})
	return ok && rv.(string) == c.ResourceVersion
}

func (v *canaryVersions) seen(c *serinv1.Canary) {
	v.m.Store(types.NamespacedName{Namespace: c.Namespace, Name: c.Name}, c.ResourceVersion)
}

func (v *canaryVersions) forget(key types.NamespacedName) { v.m.Delete(key) }

// versionRecorder is the client the status patcher writes through: it
// records the resourceVersion that each Canary patch returns.
type versionRecorder struct {
	client.Client
	versions *canaryVersions
}

func (c versionRecorder) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	err := c.Client.Patch(ctx, obj, p, opts...)
	c.versions.record(obj, err)
	return err
}

func (c versionRecorder) Status() client.SubResourceWriter {
	return statusRecorder{SubResourceWriter: c.Client.Status(), versions: c.versions}
}

type statusRecorder struct {
	client.SubResourceWriter
	versions *canaryVersions
}

func (s statusRecorder) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	err := s.SubResourceWriter.Patch(ctx, obj, p, opts...)
	s.versions.record(obj, err)
	return err
}

// record keeps the version a successful Canary patch returned; after a
// failed one, what the server holds is unknown.
func (v *canaryVersions) record(obj client.Object, err error) {
	c, ok := obj.(*serinv1.Canary)
	switch {
	case !ok:
	case err != nil:
		v.forget(types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()})
	default:
		v.seen(c)
	}
}

package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// canaryPatcher writes what one reconcile changed in a Canary: its
// finalizers with one merge patch, its whole status, conditions included,
// with one patch of the status subresource. Flux's patch helper writes the
// conditions and the rest of the status in two requests, with an
// optimistic lock on the conditions, so that several controllers can share
// an object's conditions; only Serin writes a Canary's status, and one
// request per change halved the status writes of a release (make bench).
//
// Each successful patch records the resourceVersion it returned, so the
// next reconcile knows whether the cache has caught up (canaryVersions).
type canaryPatcher struct {
	client   client.Client
	versions *canaryVersions
	before   *serinv1.Canary
}

func newCanaryPatcher(c client.Client, versions *canaryVersions, obj *serinv1.Canary) *canaryPatcher {
	return &canaryPatcher{client: c, versions: versions, before: obj.DeepCopy()}
}

// Patch writes the changes of obj since the patcher was made, or since its
// last Patch.
func (p *canaryPatcher) Patch(ctx context.Context, obj *serinv1.Canary) error {
	if !equality.Semantic.DeepEqual(p.before.Finalizers, obj.Finalizers) {
		// Patched on a copy: the response carries the stored status,
		// which must not replace the status still to be written.
		meta := p.before.DeepCopy()
		meta.Finalizers = obj.Finalizers
		if err := p.record(meta, p.client.Patch(ctx, meta, client.MergeFrom(p.before), client.FieldOwner(FieldManager))); err != nil {
			return err
		}
		p.before.ObjectMeta = meta.ObjectMeta
		obj.ResourceVersion = meta.ResourceVersion
	}
	if !equality.Semantic.DeepEqual(p.before.Status, obj.Status) {
		patch := client.MergeFrom(p.before)
		opts := &client.SubResourcePatchOptions{PatchOptions: client.PatchOptions{FieldManager: FieldManager}}
		if err := p.record(obj, p.client.Status().Patch(ctx, obj, patch, opts)); err != nil {
			return err
		}
	}
	p.before = obj.DeepCopy()
	return nil
}

// record keeps the version a successful patch returned; after a failed one,
// what the server holds is unknown.
func (p *canaryPatcher) record(obj *serinv1.Canary, err error) error {
	if err != nil {
		p.versions.forget(client.ObjectKeyFromObject(obj))
		return err
	}
	p.versions.seen(obj)
	return nil
}

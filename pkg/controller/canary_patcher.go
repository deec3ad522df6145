package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/versions"
)

// canaryPatcher writes what one reconcile changed in a Canary: its
// finalizers with one merge patch, and its whole status, conditions
// included, with one JSON patch of the status subresource.
//
// Flux's patch helper writes the conditions and the rest of the status in
// two requests, the conditions with an optimistic lock, so that several
// controllers can share an object's conditions, and computes each patch by
// converting the object to unstructured maps. Only Serin writes a Canary's
// status, so it is replaced as a whole: the helper's two patches were a
// large share of a Canary's requests and its conversions of the
// controller's CPU (figures: e2e/bench/results.md).
//
// The status patch is a compare-and-swap: it carries the resourceVersion
// the reconcile decided from, so the API server refuses it if the Canary
// changed since. If what changed is not the status (an annotation, the
// spec), the status the decision started from is still the stored one and
// the patch is sent again on the new version; if the status changed,
// another writer (a second controller, a paused leader's successor) moved
// the release, and the write is dropped with a conflict. So two controllers
// active at once never both take a step.
//
// Each successful patch records the resourceVersion it returned, so the
// next reconcile knows whether the cache has caught up (versions.Tracker).
type canaryPatcher struct {
	client client.Client
	// reader reads around the cache, to tell what changed on a conflict.
	reader     client.Reader
	versions   *versions.Tracker
	before     *serinv1.Canary
	statusJSON []byte
	// beforeStatusWrite, when set, may change the status still to be
	// written, once it is known that it will be.
	beforeStatusWrite func(*serinv1.Canary)
}

func newCanaryPatcher(c client.Client, reader client.Reader, tracker *versions.Tracker, obj *serinv1.Canary) (*canaryPatcher, error) {
	status, err := json.Marshal(obj.Status)
	if err != nil {
		return nil, err
	}
	before := &serinv1.Canary{ObjectMeta: *obj.ObjectMeta.DeepCopy()}
	return &canaryPatcher{client: c, reader: reader, versions: tracker, before: before, statusJSON: status}, nil
}

// Patch writes the changes of obj since the patcher was made, or since its
// last Patch.
func (p *canaryPatcher) Patch(ctx context.Context, obj *serinv1.Canary) error {
	if !slices.Equal(p.before.Finalizers, obj.Finalizers) {
		// Patched on a copy: the response carries the stored status,
		// which must not replace the status still to be written.
		meta := &serinv1.Canary{ObjectMeta: *p.before.ObjectMeta.DeepCopy()}
		meta.Finalizers = obj.Finalizers
		// With the version read: a finalizer list written meanwhile by
		// someone else is not overwritten.
		lock := client.MergeFromWithOptions(p.before, client.MergeFromWithOptimisticLock{})
		if err := p.record(meta, p.client.Patch(ctx, meta, lock, client.FieldOwner(FieldManager))); err != nil {
			return err
		}
		obj.ResourceVersion = meta.ResourceVersion
		p.before.ObjectMeta = meta.ObjectMeta
	}
	status, err := json.Marshal(obj.Status)
	if err != nil {
		return err
	}
	if !bytes.Equal(status, p.statusJSON) {
		if p.beforeStatusWrite != nil {
			p.beforeStatusWrite(obj)
			if status, err = json.Marshal(obj.Status); err != nil {
				return err
			}
		}
		err := p.patchStatus(ctx, obj, status)
		if apierrors.IsConflict(err) {
			var unchanged bool
			if unchanged, err = p.statusUnchanged(ctx, obj); unchanged {
				err = p.patchStatus(ctx, obj, status)
			}
		}
		if err := p.record(obj, err); err != nil {
			return err
		}
		p.statusJSON = status
	}
	return nil
}

// patchStatus replaces the stored status with status if the Canary is still
// at obj's resourceVersion.
func (p *canaryPatcher) patchStatus(ctx context.Context, obj *serinv1.Canary, status []byte) error {
	version, err := json.Marshal(obj.ResourceVersion)
	if err != nil {
		return err
	}
	// Setting the resourceVersion the decision was made from makes the
	// update conditional: the API server answers 409 Conflict if the
	// Canary has another one by now. "add" replaces /status when it exists
	// and creates it when a new Canary has none yet.
	patch, err := json.Marshal([]jsonPatchOp{
		{Op: "replace", Path: "/metadata/resourceVersion", Value: version},
		{Op: "add", Path: "/status", Value: status},
	})
	if err != nil {
		return err
	}
	// The response is asked for as metadata only: the stored status is
	// the one just sent, and decoding the whole Canary again cost the
	// controller CPU on every status write (figures: e2e/bench/results.md).
	stored := &metav1.PartialObjectMetadata{TypeMeta: canaryTypeMeta, ObjectMeta: metav1.ObjectMeta{Namespace: obj.Namespace, Name: obj.Name}}
	opts := &client.SubResourcePatchOptions{PatchOptions: client.PatchOptions{FieldManager: FieldManager}}
	if err := p.client.Status().Patch(ctx, stored, client.RawPatch(types.JSONPatchType, patch), opts); err != nil {
		return err
	}
	obj.ResourceVersion = stored.ResourceVersion
	return nil
}

// statusUnchanged reads the stored Canary after a conflict and reports
// whether its status is still the one this patcher started from; if so,
// obj takes the stored resourceVersion, so that the patch can be sent
// again. Otherwise it returns a conflict error that says why.
func (p *canaryPatcher) statusUnchanged(ctx context.Context, obj *serinv1.Canary) (bool, error) {
	var live serinv1.Canary
	if err := p.reader.Get(ctx, client.ObjectKeyFromObject(obj), &live); err != nil {
		return false, err
	}
	stored, err := json.Marshal(live.Status)
	if err != nil {
		return false, err
	}
	if !bytes.Equal(stored, p.statusJSON) {
		return false, apierrors.NewConflict(canaryResource, obj.Name, errStatusMoved)
	}
	obj.ResourceVersion = live.ResourceVersion
	return true, nil
}

var (
	canaryResource = serinv1.GroupVersion.WithResource("canaries").GroupResource()
	errStatusMoved = errors.New("its status was changed by another writer since it was read; the decision is dropped")
)

var canaryTypeMeta = metav1.TypeMeta{APIVersion: serinv1.GroupVersion.String(), Kind: serinv1.CanaryKind}

type jsonPatchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// record keeps the version a successful patch returned; after a failed one,
// what the server holds is unknown.
func (p *canaryPatcher) record(obj *serinv1.Canary, err error) error {
	if err != nil {
		p.versions.Forget(obj)
		return err
	}
	p.versions.Record(obj)
	return nil
}

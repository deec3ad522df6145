package workload

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/naming"
)

// applyOwned server-side applies desired, an object the Canary owns. live is
// its current state, nil if it does not exist. An existing object must be
// controlled by the Canary, or handed over to it (apply.AdoptAnnotation, as
// when migrating from Flagger), so that Serin never takes over an object
// that merely has the name it wants; it is only written if update is set and the
// hash of what would be applied (leaving out the unhashed field paths)
// differs from the one recorded at the last apply.
func (w *Workloads) applyOwned(ctx context.Context, canary *v1beta1.Canary, desired, live client.Object, update bool, unhashed ...[]string) error {
	gvk, err := apiutil.GVKForObject(desired, w.client.Scheme())
	if err != nil {
		return fmt.Errorf("applying %s: %w", desired.GetName(), err)
	}
	write := apply.Write[client.Object]{
		Ref: apply.Ref{
			Kind: gvk.Kind, Namespace: desired.GetNamespace(), Name: desired.GetName(),
			Owner: canary,
			What:  describe(gvk.Kind, desired.GetNamespace(), desired.GetName()),
		},
		CreateOnly: !update,
		Desired:    func() (*unstructured.Unstructured, error) { return apply.Body(desired, gvk) },
	}
	if live == nil || update {
		write.Hash = appliedHash(desired, unhashed...)
	}
	_, err = apply.Apply(ctx, w.applier(), write, live, live != nil)
	return err
}

func (w *Workloads) applier() *apply.Applier {
	return &apply.Applier{Reader: w.reader, Client: w.client, FieldManager: w.opts.FieldManager}
}

// patch writes a JSON merge patch of the fields Serin changes to obj, so
// that its other fields stay with the tools that own them. A nil patch means
// there is nothing to change. The patch is built directly instead of diffing
// two copies of obj, which cost a noticeable share of the controller's
// allocations (figures: e2e/bench/results.md).
func (w *Workloads) patch(ctx context.Context, obj client.Object, patch []byte) error {
	if patch == nil {
		return nil
	}
	// Serin's field manager owns what it patches (the replica count
	// among others), whatever the binary is called, so that another
	// manager's ownership of it is someone else's write.
	return w.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(w.opts.FieldManager))
}

// deleteOwned deletes obj if the Canary controls it; nil is nothing to do.
// The UID precondition keeps a delete from hitting an object recreated
// meanwhile under the same name.
func (w *Workloads) deleteOwned(ctx context.Context, canary *v1beta1.Canary, obj client.Object) error {
	if obj == nil || !apply.Controlled(obj, canary.UID) {
		return nil
	}
	return w.applier().DeleteRead(ctx, canary, obj, describe(w.kindOf(obj), obj.GetNamespace(), obj.GetName()))
}

// deleteConfigCopies deletes every config copy the Canary controls,
// including copies of configs the target no longer uses.
func (w *Workloads) deleteConfigCopies(ctx context.Context, canary *v1beta1.Canary) error {
	ns := canary.Namespace
	var cms corev1.ConfigMapList
	if err := w.reader.List(ctx, &cms, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("listing ConfigMaps in %s: %w", ns, err)
	}
	var secrets corev1.SecretList
	if err := w.reader.List(ctx, &secrets, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("listing Secrets in %s: %w", ns, err)
	}
	var copies []client.Object
	for i := range cms.Items {
		copies = append(copies, &cms.Items[i])
	}
	for i := range secrets.Items {
		copies = append(copies, &secrets.Items[i])
	}
	for _, obj := range copies {
		if !strings.HasSuffix(obj.GetName(), naming.PrimarySuffix) {
			continue
		}
		if err := w.deleteOwned(ctx, canary, obj); err != nil {
			return err
		}
	}
	return nil
}

// kindOf names obj's kind for messages.
func (w *Workloads) kindOf(obj runtime.Object) string { return apply.KindOf(obj, w.client.Scheme()) }

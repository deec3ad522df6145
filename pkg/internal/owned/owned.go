// Package owned deletes the objects a Canary created, and only those: an
// object of the same name that someone else made is never touched.
package owned

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Delete reads obj (its namespace and name set) and deletes it if owner
// controls it. The UID precondition keeps the delete from hitting an
// object recreated meanwhile. A missing object, or a missing CRD (nothing
// of the kind can exist), is nothing to do.
func Delete(ctx context.Context, reader client.Reader, c client.Client, owner metav1.Object, obj client.Object) error {
	err := reader.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s %s: %w", kindOf(c, obj), obj.GetName(), err)
	}
	if !metav1.IsControlledBy(obj, owner) {
		return nil
	}
	uid := obj.GetUID()
	if err := c.Delete(ctx, obj, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s %s: %w", kindOf(c, obj), obj.GetName(), err)
	}
	return nil
}

// kindOf names obj's kind for messages.
func kindOf(c client.Client, obj client.Object) string {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return fmt.Sprintf("%T", obj)
	}
	return gvk.Kind
}

package router

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// deleteOwned deletes obj (its namespace and name set) if the Canary
// controls it, so that a routing object of the same name that someone else
// made is never deleted with the Canary. The UID precondition keeps the
// delete from hitting an object recreated meanwhile. A missing object, or a
// missing CRD (nothing of the kind can exist), is nothing to do.
func deleteOwned(ctx context.Context, reader client.Reader, c client.Client, canary *serinv1.Canary, obj client.Object, kind string) error {
	err := reader.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s %s: %w", kind, obj.GetName(), err)
	}
	if !metav1.IsControlledBy(obj, canary) {
		return nil
	}
	uid := obj.GetUID()
	if err := c.Delete(ctx, obj, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s %s: %w", kind, obj.GetName(), err)
	}
	return nil
}

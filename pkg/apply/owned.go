package apply

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// AdoptAnnotation set to "true" on an object that no controller owns hands
// it over: the Canary that generates an object of that name takes it, and
// its apply adds the Canary's controller reference. Serin sets it on the
// apex Service it hands back when a Canary is deleted, so that a new Canary
// can take it again.
const AdoptAnnotation = "serin.dev/adopt"

// ErrNotOwned is returned when an object of the name a Canary generates
// exists and was not created by it: Serin never takes over an object by its
// name alone.
var ErrNotOwned = errors.New("not controlled by the Canary")

// Controlled reports whether obj's controller reference is ownerUID's.
func Controlled(obj metav1.Object, ownerUID types.UID) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && ownerUID != "" && ref.UID == ownerUID
}

// MayWrite refuses, with an error wrapping ErrNotOwned, to write live (an
// object of kind that exists) unless the owner with ownerUID controls it or
// it is handed over: no controller and AdoptAnnotation set to "true".
func MayWrite(live client.Object, ownerUID types.UID, kind string) error {
	if Controlled(live, ownerUID) {
		return nil
	}
	ref := metav1.GetControllerOfNoCopy(live)
	if ref == nil && live.GetAnnotations()[AdoptAnnotation] == "true" {
		return nil
	}
	if ref != nil {
		// The annotation alone cannot hand over an object that another
		// controller owns: the API allows a single controller.
		return fmt.Errorf("%w: %s %s/%s exists and was not created by this Canary (it is controlled by %s %s); delete it, or remove that controller reference and annotate it %s=true to hand it over",
			ErrNotOwned, kind, live.GetNamespace(), live.GetName(), ref.Kind, ref.Name, AdoptAnnotation)
	}
	return fmt.Errorf("%w: %s %s/%s exists and was not created by this Canary; delete it, or annotate it %s=true to hand it over",
		ErrNotOwned, kind, live.GetNamespace(), live.GetName(), AdoptAnnotation)
}

// HandedOver reports whether live is written only because it is handed
// over: MayWrite accepts it, but ownerUID does not control it yet. The
// write that takes it carries live's resourceVersion, so that a hand-over
// withdrawn after live was read is not taken.
func HandedOver(live client.Object, ownerUID types.UID) bool {
	return !Controlled(live, ownerUID) && MayWrite(live, ownerUID, "") == nil
}

// ControllerRef makes the Canary the controller of an object Serin writes,
// so that it is garbage-collected with the Canary.
func ControllerRef(c *serinv1.Canary) metav1.OwnerReference {
	return *metav1.NewControllerRef(c, serinv1.GroupVersion.WithKind(serinv1.CanaryKind))
}

// ControllerRefApply is ControllerRef as an apply configuration.
func ControllerRefApply(c *serinv1.Canary) *metav1ac.OwnerReferenceApplyConfiguration {
	ref := ControllerRef(c)
	return metav1ac.OwnerReference().
		WithAPIVersion(ref.APIVersion).
		WithKind(ref.Kind).
		WithName(ref.Name).
		WithUID(ref.UID).
		WithController(*ref.Controller).
		WithBlockOwnerDeletion(*ref.BlockOwnerDeletion)
}

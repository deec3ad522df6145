package workload

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// target is the part of the workload handling that depends on the kind of
// the target; deployment.go and daemonset.go implement it. Objects passed in
// are of the implementation's kind.
type target interface {
	kind() string
	newObject() client.Object
	podTemplate(obj client.Object) *corev1.PodTemplateSpec
	selector(obj client.Object) *metav1.LabelSelector
	// replicas is the wanted pod count, nil for kinds without one.
	replicas(obj client.Object) *int32
	// primary assembles the primary from the target and the parts that
	// every kind shares.
	primary(target client.Object, p primaryParts) client.Object
	state(obj client.Object, readyThreshold int) State
	// scaledToZero returns the JSON merge patch that makes obj run no
	// pods, or nil if obj already runs none.
	scaledToZero(obj client.Object) []byte
	// scaledTo returns the JSON merge patch that makes obj run pods again,
	// replicas of them for kinds with a count, or nil if there is nothing
	// to change.
	scaledTo(obj client.Object, replicas int32) []byte
}

// targetOf returns the handler of the Canary's target kind.
func targetOf(canary *v1beta1.Canary) (target, error) {
	ref := canary.Spec.TargetRef
	if ref.APIVersion != "" && ref.APIVersion != "apps/v1" {
		return nil, fmt.Errorf("%w: targetRef.apiVersion %q is not supported, use apps/v1", ErrInvalid, ref.APIVersion)
	}
	switch ref.Kind {
	case "", "Deployment":
		return deploymentTarget{}, nil
	case "DaemonSet":
		return daemonSetTarget{}, nil
	}
	return nil, fmt.Errorf("%w: targetRef.kind %q is not supported, use Deployment or DaemonSet", ErrInvalid, ref.Kind)
}

// replicasOf is t.replicas of a workload that may not exist.
func replicasOf(t target, obj client.Object) *int32 {
	if obj == nil {
		return nil
	}
	return t.replicas(obj)
}

package workload

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// deploymentTarget handles Deployment targets, which scale to zero by
// their replica count.
type deploymentTarget struct{}

func (deploymentTarget) kind() string             { return "Deployment" }
func (deploymentTarget) newObject() client.Object { return &appsv1.Deployment{} }

func (deploymentTarget) podTemplate(obj client.Object) *corev1.PodTemplateSpec {
	return &obj.(*appsv1.Deployment).Spec.Template
}

func (deploymentTarget) selector(obj client.Object) *metav1.LabelSelector {
	return obj.(*appsv1.Deployment).Spec.Selector
}

func (deploymentTarget) replicas(obj client.Object) *int32 {
	return obj.(*appsv1.Deployment).Spec.Replicas
}

// primary keeps the target's rollout settings (strategy, minReadySeconds,
// progress deadline, history), so that promotions roll out the way the user
// configured, but never copies a pause.
func (deploymentTarget) primary(tgt client.Object, p primaryParts) client.Object {
	spec := tgt.(*appsv1.Deployment).Spec.DeepCopy()
	spec.Replicas = p.replicas
	spec.Selector = p.selector
	spec.Template = p.template
	spec.Paused = false
	return &appsv1.Deployment{ObjectMeta: p.meta, Spec: *spec}
}

func (deploymentTarget) state(obj client.Object, readyThreshold int) State {
	return deploymentState(obj.(*appsv1.Deployment), readyThreshold)
}

func (deploymentTarget) scaledToZero(obj client.Object) []byte {
	return deploymentScaledTo(obj.(*appsv1.Deployment), 0)
}

func (deploymentTarget) scaledTo(obj client.Object, replicas int32) []byte {
	return deploymentScaledTo(obj.(*appsv1.Deployment), replicas)
}

// deploymentScaledTo returns the merge patch that gives d replicas
// replicas, or nil if it has them already.
func deploymentScaledTo(d *appsv1.Deployment, replicas int32) []byte {
	if ptr.Deref(d.Spec.Replicas, 1) == replicas {
		return nil
	}
	return fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
}

// deploymentState is ready once the Deployment controller has rolled out
// the current spec to every replica, no old replica is left, and at least
// readyThreshold percent of the wanted replicas are available. At the
// default threshold of 100 that means every updated replica is available.
func deploymentState(d *appsv1.Deployment, readyThreshold int) State {
	want := ptr.Deref(d.Spec.Replicas, 1)
	st := d.Status
	s := State{Exists: true, Pods: want, ReadyPods: min(st.AvailableReplicas, want)}
	need := readyNeeded(want, readyThreshold)
	switch {
	case want == 0:
		s.Message = "scaled to zero"
	case st.ObservedGeneration < d.Generation:
		s.Message = fmt.Sprintf("waiting for the Deployment controller to observe generation %d", d.Generation)
	case st.UpdatedReplicas < want:
		s.Message = fmt.Sprintf("%d of %d replicas updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		s.Message = fmt.Sprintf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < need:
		s.Message = fmt.Sprintf("%d of %d updated replicas available%s", st.AvailableReplicas, st.UpdatedReplicas, thresholdNote(need, readyThreshold))
	default:
		s.Ready = true
	}
	return s
}

package workload

import (
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// daemonSetTarget handles DaemonSet targets. A DaemonSet has no replica
// count; it is scaled to zero with a nodeSelector no node matches
// (ScaleToZeroNodeSelector), which keeps the DaemonSet, its history and its
// pod template otherwise untouched.
type daemonSetTarget struct{}

func (daemonSetTarget) kind() string             { return "DaemonSet" }
func (daemonSetTarget) newObject() client.Object { return &appsv1.DaemonSet{} }

func (daemonSetTarget) podTemplate(obj client.Object) *corev1.PodTemplateSpec {
	return &obj.(*appsv1.DaemonSet).Spec.Template
}

func (daemonSetTarget) selector(obj client.Object) *metav1.LabelSelector {
	return obj.(*appsv1.DaemonSet).Spec.Selector
}

func (daemonSetTarget) replicas(client.Object) *int32 { return nil }

// primary keeps the target's rollout settings (update strategy,
// minReadySeconds, history).
func (daemonSetTarget) primary(tgt client.Object, p primaryParts) client.Object {
	spec := tgt.(*appsv1.DaemonSet).Spec.DeepCopy()
	spec.Selector = p.selector
	spec.Template = p.template
	return &appsv1.DaemonSet{ObjectMeta: p.meta, Spec: *spec}
}

func (daemonSetTarget) state(obj client.Object, readyThreshold int) State {
	return daemonSetState(obj.(*appsv1.DaemonSet), readyThreshold)
}

func (daemonSetTarget) scaledToZero(obj client.Object) []byte {
	if daemonSetScaledToZero(obj.(*appsv1.DaemonSet)) {
		return nil
	}
	return scaleToZeroSelectorPatch(ptr.To("true"))
}

// scaledTo lifts the scale-to-zero nodeSelector; a DaemonSet runs on every
// node it selects, whatever the replica count.
func (daemonSetTarget) scaledTo(obj client.Object, _ int32) []byte {
	ds := obj.(*appsv1.DaemonSet)
	if _, ok := ds.Spec.Template.Spec.NodeSelector[ScaleToZeroNodeSelector]; !ok {
		return nil
	}
	return scaleToZeroSelectorPatch(nil)
}

// scaleToZeroSelectorPatch is the merge patch that sets the scale-to-zero
// nodeSelector to value, or removes it when value is nil; the pod
// template's other selectors are left alone.
func scaleToZeroSelectorPatch(value *string) []byte {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"nodeSelector": map[string]*string{ScaleToZeroNodeSelector: value},
	}}}})
	if err != nil {
		panic(fmt.Sprintf("workload: encoding the scale-to-zero patch: %v", err)) // maps of strings always encode
	}
	return patch
}

func daemonSetScaledToZero(ds *appsv1.DaemonSet) bool {
	return ds.Spec.Template.Spec.NodeSelector[ScaleToZeroNodeSelector] == "true"
}

// daemonSetState is ready once the DaemonSet controller has updated the
// pod on every node it should run on and at least readyThreshold percent
// of those pods are ready.
func daemonSetState(ds *appsv1.DaemonSet, readyThreshold int) State {
	st := ds.Status
	want := st.DesiredNumberScheduled
	s := State{Exists: true, Pods: want, ReadyPods: min(st.NumberReady, want)}
	need := readyNeeded(want, readyThreshold)
	switch {
	case st.ObservedGeneration < ds.Generation:
		s.Message = fmt.Sprintf("waiting for the DaemonSet controller to observe generation %d", ds.Generation)
	case want == 0 && daemonSetScaledToZero(ds):
		s.Message = "scaled to zero"
	case want == 0:
		s.Message = "no node to run on"
	case st.UpdatedNumberScheduled < want:
		s.Message = fmt.Sprintf("%d of %d pods updated", st.UpdatedNumberScheduled, want)
	case st.NumberReady < need:
		s.Message = fmt.Sprintf("%d of %d pods ready%s", st.NumberReady, want, thresholdNote(need, readyThreshold))
	default:
		s.Ready = true
	}
	return s
}

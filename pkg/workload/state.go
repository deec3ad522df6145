package workload

import (
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// State is the observed state of one workload. It has the fields of
// analysis.Workload, so that the reconciler converts one into the other.
type State struct {
	Exists bool
	// Ready is true once the workload has rolled out its current spec with
	// enough ready pods; a workload scaled to zero is never ready.
	Ready bool
	// Revision is the serin.dev/revision of its pod template: the revision
	// a primary runs (empty for the target).
	Revision string
	// Message says why the workload is not ready, with the pod counts.
	Message string
	// Pods is how many pods the workload wants and ReadyPods how many of
	// those are available; the engine caps the canary's traffic share by
	// their ratio.
	Pods, ReadyPods int32
	// ScaledUp is true when the target's spec asks for pods: replicas
	// above zero, or a DaemonSet without the scale-to-zero node selector.
	// Observe sets it for the target only.
	ScaledUp bool
	// ScaledBy names the field managers other than Serin that own a
	// Deployment's replica count, as its managedFields record them,
	// separated by ", "; Observe reads them only for a target scaled up
	// while no release runs.
	ScaledBy string
}

func stateOf(t target, obj client.Object, name string, threshold *int) State {
	if obj == nil {
		return State{Message: describe(t.kind(), "", name) + " not found"}
	}
	st := t.state(obj, ptr.Deref(threshold, defaultReadyThreshold))
	st.Revision = t.podTemplate(obj).Annotations[RevisionAnnotation]
	return st
}

// StateChanged is false when an update of a Deployment or DaemonSet cannot
// change its State, but for the pod counts in State.Message: a condition's
// timestamps, the count of terminating pods, an updated replica more while
// others are still missing. The message is only read when a deadline
// passes, and the deadline's requeue reads the workload afresh. Each
// skipped update is a reconcile saved (figures: e2e/bench/results.md).
func StateChanged(old, updated client.Object) bool {
	switch o := old.(type) {
	case *appsv1.Deployment:
		n, ok := updated.(*appsv1.Deployment)
		return !ok || deploymentStateFields(o) != deploymentStateFields(n)
	case *appsv1.DaemonSet:
		n, ok := updated.(*appsv1.DaemonSet)
		return !ok || daemonSetStateFields(o) != daemonSetStateFields(n)
	default:
		return true
	}
}

// deploymentStateFields are what deploymentState decides from, besides the
// spec: whether the status has caught up with the spec, whether every
// wanted replica is updated, whether old replicas remain, and how many
// wanted replicas are available.
func deploymentStateFields(d *appsv1.Deployment) [4]int64 {
	want, st := ptr.Deref(d.Spec.Replicas, 1), d.Status
	return [4]int64{flag(st.ObservedGeneration >= d.Generation), flag(st.UpdatedReplicas >= want), flag(st.Replicas > st.UpdatedReplicas), int64(min(st.AvailableReplicas, want))}
}

// daemonSetStateFields are what daemonSetState decides from, besides the
// spec: whether the status has caught up with the spec, how many pods are
// wanted, whether all of them are updated, and how many are ready.
func daemonSetStateFields(ds *appsv1.DaemonSet) [4]int64 {
	st := ds.Status
	want := st.DesiredNumberScheduled
	return [4]int64{flag(st.ObservedGeneration >= ds.Generation), int64(want), flag(st.UpdatedNumberScheduled >= want), int64(min(st.NumberReady, want))}
}

func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

package workload

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// primaryParts are the parts of a primary that every target kind builds the
// same way.
type primaryParts struct {
	meta     metav1.ObjectMeta
	selector *metav1.LabelSelector
	template corev1.PodTemplateSpec
	// replicas is only used by kinds with a replica count.
	replicas *int32
}

// primaryPodTemplate turns the target's pod template into the primary's:
// its pods carry the primary's selector value, spread and (anti-)affine
// against the primary's pods, use the copies of the tracked configs, never
// carry the scale-to-zero nodeSelector, and name the revision they run.
func primaryPodTemplate(tmpl corev1.PodTemplateSpec, key, value string, tracked map[configRef]bool, rev string) corev1.PodTemplateSpec {
	out := *withoutScaleToZero(&tmpl)
	out.Labels = primaryLabels(out.Labels, key, value)
	rewritePodSelectors(&out.Spec, key, value)
	rewriteConfigRefs(&out.Spec, tracked)
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[RevisionAnnotation] = rev
	return out
}

// withoutScaleToZero returns a copy of tmpl without the nodeSelector that
// scales a DaemonSet to zero, so that the copy is what the user wrote.
func withoutScaleToZero(tmpl *corev1.PodTemplateSpec) *corev1.PodTemplateSpec {
	out := tmpl.DeepCopy()
	delete(out.Spec.NodeSelector, ScaleToZeroNodeSelector)
	if len(out.Spec.NodeSelector) == 0 {
		out.Spec.NodeSelector = nil
	}
	return out
}

// primaryReplicas is the primary's replica count given the target's and the
// running primary's (nil if it does not exist yet). An autoscaler owns the
// count of a running primary. Otherwise the target's count is what the user
// asked for, unless Serin has scaled the target to zero; then the primary
// keeps its count, and a new primary gets one replica.
func primaryReplicas(target, live *int32, autoscaled bool) *int32 {
	switch {
	case autoscaled && live != nil:
		return live
	case ptr.Deref(target, 0) > 0:
		return target
	case ptr.Deref(live, 0) > 0:
		return live
	}
	return ptr.To[int32](1)
}

// canaryReplicaCount is how many pods the target runs when it is scaled up
// for an analysis or on revert. With an autoscaler, that owns the count of a
// running target, and a stopped one starts at the autoscaler's minimum
// (which the autoscaler needs: it does not act on a workload at zero).
// Otherwise the target runs as many pods as the primary, so both are
// compared at the same scale; without a primary to match, a running target
// keeps its count.
func canaryReplicaCount(target, primary, autoscalerMin *int32, autoscaled bool) int32 {
	running := ptr.Deref(target, 1)
	switch {
	case autoscaled && running > 0:
		return running
	case autoscaled:
		return max(ptr.Deref(autoscalerMin, 1), 1)
	case ptr.Deref(primary, 0) > 0:
		return *primary
	}
	return max(running, 1)
}

// readyNeeded is how many of want pods must be ready: readyThreshold
// percent, rounded up.
func readyNeeded(want int32, readyThreshold int) int32 {
	return int32((int64(want)*int64(readyThreshold) + 99) / 100)
}

// thresholdNote explains a threshold below 100 percent in a State message.
func thresholdNote(need int32, readyThreshold int) string {
	if readyThreshold >= 100 {
		return ""
	}
	return fmt.Sprintf(", %d needed (readyThreshold %d%%)", need, readyThreshold)
}

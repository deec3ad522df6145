package workload

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/naming"
)

// primaryAutoscaler copies the target's autoscaler for the primary: it
// scales the primary, within spec.autoscalerRef.primaryScalerReplicas where
// set, and is controlled by the Canary. The target's own autoscaler keeps
// scaling the target; it stops acting while the target is at zero replicas,
// so it does not undo ScaleTargetToZero.
func primaryAutoscaler(src *autoscalingv2.HorizontalPodAutoscaler, canary *v1beta1.Canary, kind string, opts Options) *autoscalingv2.HorizontalPodAutoscaler {
	spec := *src.Spec.DeepCopy()
	spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{
		APIVersion: "apps/v1",
		Kind:       kind,
		Name:       naming.PrimaryName(canary.Spec.TargetRef.Name),
	}
	if r := canary.Spec.AutoscalerRef.PrimaryScalerReplicas; r != nil {
		if r.MinReplicas != nil {
			spec.MinReplicas = ptr.To(*r.MinReplicas)
		}
		if r.MaxReplicas != nil {
			spec.MaxReplicas = *r.MaxReplicas
		}
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{
			Name:            naming.PrimaryName(src.Name),
			Namespace:       src.Namespace,
			Labels:          filterPrefixes(src.Labels, opts.IncludeLabelPrefixes, nil),
			Annotations:     filterPrefixes(src.Annotations, opts.IncludeAnnotationPrefixes, controllerAnnotation),
			OwnerReferences: []metav1.OwnerReference{ownerRef(canary)},
		},
		Spec: spec,
	}
}

package workload

import (
	"context"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/naming"
)

// Revert undoes what Serin did to the workloads, for revertOnDeletion: the
// target runs as many pods as the primary again, and the primary, its
// autoscaler and the config copies are deleted. Garbage collection would
// delete them too, but only once the Canary is gone; deleting them here
// makes the revert complete by the time the finalizer is removed. Objects
// the Canary does not control are left alone.
func (w *Workloads) Revert(ctx context.Context, canary *v1beta1.Canary) error {
	t, err := targetOf(canary)
	if err != nil {
		return err
	}
	ns, name := canary.Namespace, canary.Spec.TargetRef.Name
	primary, err := w.getWorkload(ctx, t, ns, naming.PrimaryName(name))
	if err != nil {
		return err
	}
	tgt, err := w.getWorkload(ctx, t, ns, name)
	if err != nil {
		return err
	}
	if tgt != nil {
		// The target takes over from the primary, at the primary's scale.
		n := ptr.Deref(replicasOf(t, primary), 0)
		if n == 0 {
			if n, err = w.canaryReplicas(ctx, canary, t, tgt, primary); err != nil {
				return err
			}
		}
		if err := w.scaleTo(ctx, t, tgt, n); err != nil {
			return err
		}
	}
	if ref := canary.Spec.AutoscalerRef; ref != nil {
		hpa, err := w.getOptional(ctx, &autoscalingv2.HorizontalPodAutoscaler{}, ns, naming.PrimaryName(ref.Name))
		if err != nil {
			return err
		}
		if err := w.deleteOwned(ctx, canary, hpa); err != nil {
			return err
		}
	}
	if err := w.deleteOwned(ctx, canary, primary); err != nil {
		return err
	}
	return w.deleteConfigCopies(ctx, canary)
}

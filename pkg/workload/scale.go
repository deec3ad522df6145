package workload

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/naming"
)

// ScaleTargetToZero stops the target's pods, once the primary serves in
// their place.
func (w *Workloads) ScaleTargetToZero(ctx context.Context, canary *v1beta1.Canary) error {
	t, tgt, err := w.requireTarget(ctx, canary)
	if err != nil {
		return err
	}
	ns, name := canary.Namespace, canary.Spec.TargetRef.Name
	if err := w.patch(ctx, tgt, t.scaledToZero(tgt)); err != nil {
		return fmt.Errorf("scaling %s to zero: %w", describe(t.kind(), ns, name), err)
	}
	return nil
}

// ScaleCanaryUp runs the target's pods again so that its new revision can
// be analysed: as many as the primary runs, or the minimum of the target's
// autoscaler when it has one, and at least one.
func (w *Workloads) ScaleCanaryUp(ctx context.Context, canary *v1beta1.Canary) error {
	t, tgt, err := w.requireTarget(ctx, canary)
	if err != nil {
		return err
	}
	ns, name := canary.Namespace, canary.Spec.TargetRef.Name
	primary, err := w.getWorkload(ctx, t, ns, naming.PrimaryName(name))
	if err != nil {
		return err
	}
	n, err := w.canaryReplicas(ctx, canary, t, tgt, primary)
	if err != nil {
		return err
	}
	return w.scaleTo(ctx, t, tgt, n)
}

// canaryReplicas reads what canaryReplicaCount needs.
func (w *Workloads) canaryReplicas(ctx context.Context, canary *v1beta1.Canary, t target, tgt, primary client.Object) (int32, error) {
	var autoscalerMin *int32
	if canary.Spec.AutoscalerRef != nil {
		hpa, err := w.targetAutoscaler(ctx, canary)
		if err != nil {
			return 0, err
		}
		autoscalerMin = hpa.Spec.MinReplicas
	}
	return canaryReplicaCount(t.replicas(tgt), replicasOf(t, primary), autoscalerMin, canary.Spec.AutoscalerRef != nil), nil
}

// scaleTo patches the target to run replicas pods (see target.scaledTo).
func (w *Workloads) scaleTo(ctx context.Context, t target, tgt client.Object, replicas int32) error {
	if err := w.patch(ctx, tgt, t.scaledTo(tgt, replicas)); err != nil {
		return fmt.Errorf("scaling up %s: %w", describe(t.kind(), tgt.GetNamespace(), tgt.GetName()), err)
	}
	return nil
}

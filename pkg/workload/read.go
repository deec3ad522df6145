package workload

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// targetAutoscaler reads the HorizontalPodAutoscaler of spec.autoscalerRef.
func (w *Workloads) targetAutoscaler(ctx context.Context, canary *v1beta1.Canary) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	ref := canary.Spec.AutoscalerRef
	if (ref.APIVersion != "" && ref.APIVersion != "autoscaling/v2") || (ref.Kind != "" && ref.Kind != "HorizontalPodAutoscaler") {
		return nil, fmt.Errorf("%w: autoscalerRef %s %s is not supported, use autoscaling/v2 HorizontalPodAutoscaler", ErrInvalid, ref.APIVersion, ref.Kind)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := w.reader.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: ref.Name}, hpa); err != nil {
		return nil, fmt.Errorf("reading autoscaler %s: %w", describe("HorizontalPodAutoscaler", canary.Namespace, ref.Name), err)
	}
	return hpa, nil
}

// getWorkload reads a workload of t's kind; a missing one is nil.
func (w *Workloads) getWorkload(ctx context.Context, t target, ns, name string) (client.Object, error) {
	return w.getOptional(ctx, t.newObject(), ns, name)
}

// requireTarget reads the Canary's target, which must exist, and returns
// it with the handler of its kind.
func (w *Workloads) requireTarget(ctx context.Context, canary *v1beta1.Canary) (target, client.Object, error) {
	t, err := targetOf(canary)
	if err != nil {
		return nil, nil, err
	}
	tgt, err := w.requireWorkload(ctx, t, canary.Namespace, canary.Spec.TargetRef.Name)
	return t, tgt, err
}

// requireWorkload reads a workload of t's kind that must exist.
func (w *Workloads) requireWorkload(ctx context.Context, t target, ns, name string) (client.Object, error) {
	obj := t.newObject()
	if err := w.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		return nil, fmt.Errorf("reading target %s: %w", describe(t.kind(), ns, name), err)
	}
	return obj, nil
}

// getOptional reads ns/name into obj, returning nil (not a typed nil) if it
// does not exist.
func (w *Workloads) getOptional(ctx context.Context, obj client.Object, ns, name string) (client.Object, error) {
	err := w.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", describe(w.kindOf(obj), ns, name), err)
	}
	return obj, nil
}

// describe names an object in messages: "Deployment default/podinfo".
func describe(kind, ns, name string) string {
	if ns == "" {
		return kind + " " + name
	}
	return kind + " " + ns + "/" + name
}

package router

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	"github.com/serin-dev/serin/pkg/service"
)

// KubernetesRouter routes with plain Services: the apex Service selects the
// primary pods, or the canary pods while a blue/green promotion sends all
// traffic to the canary. It cannot split traffic.
type KubernetesRouter struct {
	// Services applies the apex Service; its Reader may be the informer
	// cache, since Routes verifies the result around it.
	Services *service.Applier
	// Reader reads the apex Service back for Routes, around any cache: it
	// must see the write just made.
	Reader client.Reader
}

// SetRoutes points the apex Service at the primary (weight 0) or the canary
// (weight 100).
func (k *KubernetesRouter) SetRoutes(ctx context.Context, r Route, t analysis.Traffic) error {
	if t.CanaryWeight != 0 && t.CanaryWeight != 100 || t.Mirror || t.MatchToCanary {
		return fmt.Errorf("the kubernetes provider can only send all traffic to the primary or to the canary, not %+v", t)
	}
	apex := service.Desired(r.Canary, service.RoleApex, r.Selector, ApexSelectsCanary(t), r.Ports)
	_, err := k.Services.Apply(ctx, apex)
	return err
}

// Routes reads which pods the apex Service selects.
func (k *KubernetesRouter) Routes(ctx context.Context, r Route) (analysis.Traffic, error) {
	var apex corev1.Service
	name := service.NamesOf(r.Canary).Apex
	if err := k.Reader.Get(ctx, client.ObjectKey{Namespace: r.Canary.Namespace, Name: name}, &apex); err != nil {
		return analysis.Traffic{}, fmt.Errorf("reading Service %s: %w", name, err)
	}
	if apex.Spec.Selector[r.Selector.Key] == r.Selector.Value {
		return analysis.Traffic{CanaryWeight: 100}, nil
	}
	return analysis.Traffic{}, nil
}

// Revert is done by the engine, which hands the apex Service back to the
// target when it releases the Services.
func (k *KubernetesRouter) Revert(context.Context, Route) error { return nil }

// ApexSelectsCanary is true when the kubernetes router points the apex
// Service at the canary pods.
func ApexSelectsCanary(t analysis.Traffic) bool { return t.CanaryWeight == 100 }

package router

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	"github.com/serin-dev/serin/pkg/naming"
	"github.com/serin-dev/serin/pkg/service"
)

// KubernetesRouter routes with plain Services: the apex Service selects the
// primary pods, or the canary pods while a blue/green promotion sends all
// traffic to the canary. It cannot split traffic.
type KubernetesRouter struct {
	// Services applies the apex Service; its Reader may be the informer
	// cache.
	Services *service.Applier
	// Reader reads the apex Service around any cache, when the cache may
	// not hold the last write.
	Reader client.Reader
}

// SetRoutes points the apex Service at the primary (weight 0) or the canary
// (weight 100), and reports where the stored Service points.
func (k *KubernetesRouter) SetRoutes(ctx context.Context, r Route, t analysis.Traffic) (analysis.Traffic, error) {
	if t.CanaryWeight != 0 && t.CanaryWeight != 100 || t.Mirror || t.MatchToCanary {
		return analysis.Traffic{}, fmt.Errorf("the kubernetes provider can only send all traffic to the primary or to the canary, not %+v", t)
	}
	apex := service.Desired(r.Canary, service.RoleApex, r.Selector, ApexSelectsCanary(t), r.Ports)
	stored, err := k.Services.ApplyVerified(ctx, apex, k.Reader)
	if err != nil {
		return analysis.Traffic{}, err
	}
	return apexTraffic(stored, r.Selector), nil
}

// Routes reads which pods the apex Service selects.
func (k *KubernetesRouter) Routes(ctx context.Context, r Route) (analysis.Traffic, error) {
	var apex corev1.Service
	name := naming.ServicesOf(r.Canary).Apex
	if err := k.Reader.Get(ctx, client.ObjectKey{Namespace: r.Canary.Namespace, Name: name}, &apex); err != nil {
		return analysis.Traffic{}, fmt.Errorf("reading Service %s: %w", name, err)
	}
	return apexTraffic(&apex, r.Selector), nil
}

func apexTraffic(apex *corev1.Service, sel naming.Selector) analysis.Traffic {
	if apex.Spec.Selector[sel.Key] == sel.Value {
		return analysis.Traffic{CanaryWeight: 100}
	}
	return analysis.Traffic{}
}

// Revert is done by the engine, which hands the apex Service back to the
// target when it releases the Services.
func (k *KubernetesRouter) Revert(context.Context, Route) error { return nil }

// ApexSelectsCanary is true when the kubernetes router points the apex
// Service at the canary pods.
func ApexSelectsCanary(t analysis.Traffic) bool { return t.CanaryWeight == 100 }

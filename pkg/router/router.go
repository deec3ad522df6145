// Package router moves traffic between a Canary's primary and canary. Each
// provider is one file implementing Router; routing.go holds what they share.
package router

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/naming"
)

// Route is what a router needs to know about a Canary.
type Route struct {
	Canary   *serinv1.Canary
	Selector naming.Selector
	// Ports are the target's container ports (for service.portDiscovery).
	Ports []corev1.ContainerPort
}

// Router applies the traffic split that the analysis decided.
type Router interface {
	// SetRoutes creates or updates the routing objects so that they route
	// as t says. It is idempotent, applies server-side with Serin's field
	// manager and writes nothing when the objects already match. It
	// returns the split the routing objects carry afterwards, as the API
	// server holds them, so the engine can verify that what it set is what
	// is there. An object of a generated name that exists and that the
	// Canary does not control is never taken over: SetRoutes fails with
	// an error wrapping apply.ErrNotOwned (service.ErrNotOwned) and writes
	// nothing to it, unless it is handed over with serin.dev/adopt=true.
	// Objects the Canary references (spec.ingressRef, gateways) are only
	// read.
	SetRoutes(ctx context.Context, r Route, t analysis.Traffic) (analysis.Traffic, error)
	// Routes reads the split from the routing objects.
	Routes(ctx context.Context, r Route) (analysis.Traffic, error)
	// Revert hands routing back to the state before Serin (revertOnDeletion):
	// generated routing objects are removed and user objects are restored.
	Revert(ctx context.Context, r Route) error
}

// UnsupportedStrategyError says that a provider cannot carry a strategy.
type UnsupportedStrategyError struct {
	Provider serinv1.Provider
	Strategy analysis.Strategy
}

func (e *UnsupportedStrategyError) Error() string {
	return fmt.Sprintf("provider %s supports blue/green releases only (analysis.iterations without match), not %s; use a mesh or ingress provider for stepWeight, stepWeights or match", e.Provider, e.Strategy)
}

// Supports checks whether provider p can carry strategy s.
func Supports(p serinv1.Provider, s analysis.Strategy) error {
	if p == serinv1.ProviderKubernetes && s != analysis.StrategyBlueGreen {
		return &UnsupportedStrategyError{Provider: p, Strategy: s}
	}
	return nil
}

// readBack returns the split after a write (err is the write's result), read
// back around any cache: for routers whose writes do not report the stored
// split.
func readBack(ctx context.Context, rt Router, r Route, err error) (analysis.Traffic, error) {
	if err != nil {
		return analysis.Traffic{}, err
	}
	t, err := rt.Routes(ctx, r)
	if err != nil {
		return analysis.Traffic{}, fmt.Errorf("reading the routes back: %w", err)
	}
	return t, nil
}

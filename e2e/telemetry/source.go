// Package telemetry stands in for a data plane in tests: there is no Envoy
// here, so it reads the routing that Serin wrote and the behaviour each
// version declares, and exports the series Istio's sidecars would, split by
// the current weights, for a real Prometheus to scrape.
package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/router"
	"github.com/serin-dev/serin/pkg/service"

	"github.com/serin-dev/serin/e2e/prometheus"
)

// Annotations on a workload's pod template that declare how a version
// behaves. They travel with the template, so a new revision of the target
// can be slow or failing while the primary stays healthy.
const (
	// ErrorRatioAnnotation is the share of requests answered with 500,
	// for example "0.1".
	ErrorRatioAnnotation = "telemetry.serin.dev/error-ratio"
	// LatencyAnnotation is how long every request takes, for example "80ms".
	LatencyAnnotation = "telemetry.serin.dev/latency"
)

const defaultLatency = 20 * time.Millisecond

// Source exports Istio-shaped series for the primary and the canary of a
// Canary, at RPS requests per second split by the routed weights.
type Source struct {
	Reader   client.Reader
	Exporter *prometheus.Exporter
	RPS      float64
}

// Sync reads the weights through the Canary's router and the declared
// behaviour of both workloads, and updates the exported traffic.
func (s *Source) Sync(ctx context.Context, rt router.Router, c *serinv1.Canary) error {
	route := router.Route{Canary: c, Selector: service.Selector{Key: "app", Value: c.Spec.TargetRef.Name}}
	t, err := rt.Routes(ctx, route)
	if err != nil {
		return fmt.Errorf("reading the routes of %s/%s: %w", c.Namespace, c.Name, err)
	}
	primaryWeight, canaryWeight := router.Split(t)
	target := c.Spec.TargetRef.Name
	for _, w := range []struct {
		workload string
		weight   int32
	}{{target + "-primary", primaryWeight}, {target, canaryWeight}} {
		success, latency, err := s.behaviour(ctx, c.Namespace, w.workload)
		if err != nil {
			return err
		}
		s.Exporter.SetIstioWorkload(c.Namespace, w.workload, s.RPS*float64(w.weight)/100, success, latency)
	}
	return nil
}

// behaviour reads the success ratio and latency a Deployment's pods declare.
func (s *Source) behaviour(ctx context.Context, namespace, name string) (float64, time.Duration, error) {
	var d appsv1.Deployment
	if err := s.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &d); err != nil {
		return 0, 0, fmt.Errorf("reading Deployment %s/%s: %w", namespace, name, err)
	}
	annotations := d.Spec.Template.Annotations
	success, latency := 1.0, defaultLatency
	if v, ok := annotations[ErrorRatioAnnotation]; ok {
		ratio, err := strconv.ParseFloat(v, 64)
		if err != nil || ratio < 0 || ratio > 1 {
			return 0, 0, fmt.Errorf("Deployment %s/%s: %s must be a number in [0, 1], got %q", namespace, name, ErrorRatioAnnotation, v)
		}
		success = 1 - ratio
	}
	if v, ok := annotations[LatencyAnnotation]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, 0, fmt.Errorf("Deployment %s/%s: %s must be a duration, got %q", namespace, name, LatencyAnnotation, v)
		}
		latency = d
	}
	return success, latency, nil
}

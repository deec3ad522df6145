// Package telemetry stands in for a data plane in tests: there is no Envoy
// or NGINX here, so it reads the routing that Serin wrote and the behaviour
// each version declares, and exports the series each provider's data plane
// would, split by the current weights, for a real Prometheus to scrape.
package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/router"

	"github.com/serin-dev/serin/pkg/naming"
	"github.com/serin-dev/serin/pkg/testharness/prometheus"
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

const (
	defaultLatency = 20 * time.Millisecond
	// defaultTestPercent is the default of Source.TestPercent.
	defaultTestPercent = 10
)

// Source exports the series of a Canary's primary and canary, at RPS
// requests per second split as its router routes them.
type Source struct {
	// Client reads the routing objects, the workloads and their pods.
	Client   client.Client
	Exporter *prometheus.Exporter
	RPS      float64
	// TestPercent is the share of requests (default 10) that reach the
	// canary apart from the weights: in an A/B release those that match
	// analysis.match, and in a blue/green release on the kubernetes
	// provider, where the apex Service stays on the primary until
	// promotion, the load tests sent to the <name>-canary Service.
	TestPercent int32

	mu sync.Mutex
	// flagVariants are the variants given series, by namespace/flag.
	flagVariants map[string]map[string]bool
}

// version is the primary or the canary of a Canary.
type version struct {
	workload string // the Deployment
	service  string // its Service
	weight   int32  // percent of the requests
}

// Sync reads the routing of c and the declared behaviour of both of its
// workloads, and updates the exported traffic; for a flag rollout, it
// evaluates the flags flagd serves (syncFlags).
func (s *Source) Sync(ctx context.Context, c *serinv1.Canary) error {
	if c.Spec.IsFlagRollout() {
		return s.syncFlags(ctx, c)
	}
	provider := s.provider(c)
	t, err := s.Routes(ctx, c)
	if err != nil {
		return err
	}
	target := c.Spec.TargetRef.Name
	testPercent := s.TestPercent
	if testPercent == 0 {
		testPercent = defaultTestPercent
	}
	primaryWeight, canaryWeight := router.Split(t)
	switch {
	case t.MatchToCanary:
		primaryWeight, canaryWeight = 100-testPercent, testPercent
	case provider == serinv1.ProviderKubernetes && canaryWeight == 0:
		canaryWeight = testPercent
	}
	names := naming.ServicesOf(c)
	for _, v := range []version{
		{workload: target + "-primary", service: names.Primary, weight: primaryWeight},
		{workload: target, service: names.Canary, weight: canaryWeight},
	} {
		d, err := s.deployment(ctx, c.Namespace, v.workload)
		if err != nil {
			return err
		}
		success, latency, err := behaviour(d)
		if err != nil {
			return err
		}
		if err := s.export(ctx, provider, c, d, v, s.RPS*float64(v.weight)/100, success, latency); err != nil {
			return err
		}
	}
	return nil
}

// Routes reads the routing of c from its router's objects.
func (s *Source) Routes(ctx context.Context, c *serinv1.Canary) (analysis.Traffic, error) {
	rt, err := s.router(s.provider(c))
	if err != nil {
		return analysis.Traffic{}, err
	}
	t, err := rt.Routes(ctx, router.Route{Canary: c, Selector: naming.Selector{Key: "app", Value: c.Spec.TargetRef.Name}})
	if err != nil {
		return analysis.Traffic{}, fmt.Errorf("reading the routes of %s/%s: %w", c.Namespace, c.Name, err)
	}
	return t, nil
}

// provider is the Canary's provider; without one, the controller's
// default (kubernetes, as the stack runs it).
func (s *Source) provider(c *serinv1.Canary) serinv1.Provider {
	if c.Spec.Provider != "" {
		return c.Spec.Provider
	}
	return serinv1.ProviderKubernetes
}

// router reads the routing objects of provider, as the controller's router
// of that provider would; it never writes (Sync only reads routes), so it
// has no Services applier.
func (s *Source) router(p serinv1.Provider) (router.Router, error) {
	rt, err := router.New(p, router.Options{Reader: s.Client, Client: s.Client, FieldManager: "serin-telemetry"})
	if err != nil {
		return nil, fmt.Errorf("no telemetry for provider %q: %w", p, err)
	}
	return rt, nil
}

// export declares the traffic of one version as provider p's data plane
// reports it.
func (s *Source) export(ctx context.Context, p serinv1.Provider, c *serinv1.Canary, d *appsv1.Deployment, v version, rps, success float64, latency time.Duration) error {
	switch p {
	case serinv1.ProviderIstio:
		s.Exporter.SetIstioWorkload(c.Namespace, v.workload, rps, success, latency)
	case serinv1.ProviderContour:
		// Contour names Envoy clusters <namespace>/<service>/<port>, with
		// underscores in the stats.
		s.Exporter.SetContourCluster(fmt.Sprintf("%s_%s_%d", c.Namespace, v.service, c.Spec.Service.Port), rps, success, latency)
	case serinv1.ProviderNGINX:
		// ingress-nginx labels requests sent to the canary backend with
		// its upstream, <namespace>-<service>-<port>, under the main Ingress.
		if c.Spec.IngressRef == nil {
			return fmt.Errorf("Canary %s/%s has provider nginx but no ingressRef", c.Namespace, c.Name)
		}
		upstream := ""
		if v.workload == c.Spec.TargetRef.Name {
			upstream = fmt.Sprintf("%s-%s-%d", c.Namespace, v.service, c.Spec.Service.Port)
		}
		s.Exporter.SetNGINXIngress(c.Namespace, c.Spec.IngressRef.Name, upstream, rps, success, latency)
	default:
		// Without per-workload series from the data plane, the application's
		// own pods report what they serve.
		pods, err := s.pods(ctx, d)
		if err != nil {
			return err
		}
		s.Exporter.SyncAppPods(c.Namespace, v.workload, pods, rps, success, latency)
	}
	return nil
}

func (s *Source) deployment(ctx context.Context, namespace, name string) (*appsv1.Deployment, error) {
	var d appsv1.Deployment
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &d); err != nil {
		return nil, fmt.Errorf("reading Deployment %s/%s: %w", namespace, name, err)
	}
	return &d, nil
}

// pods are the names of a Deployment's running pods.
func (s *Source) pods(ctx context.Context, d *appsv1.Deployment) ([]string, error) {
	if d.Spec.Selector == nil {
		return nil, nil
	}
	var list corev1.PodList
	if err := s.Client.List(ctx, &list, client.InNamespace(d.Namespace), client.MatchingLabels(d.Spec.Selector.MatchLabels)); err != nil {
		return nil, fmt.Errorf("listing the pods of Deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	var names []string
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	return names, nil
}

// behaviour reads the success ratio and latency a Deployment's pods declare.
func behaviour(d *appsv1.Deployment) (float64, time.Duration, error) {
	annotations := d.Spec.Template.Annotations
	success, latency := 1.0, defaultLatency
	if v, ok := annotations[ErrorRatioAnnotation]; ok {
		ratio, err := strconv.ParseFloat(v, 64)
		if err != nil || ratio < 0 || ratio > 1 {
			return 0, 0, fmt.Errorf("Deployment %s/%s: %s must be a number in [0, 1], got %q", d.Namespace, d.Name, ErrorRatioAnnotation, v)
		}
		success = 1 - ratio
	}
	if v, ok := annotations[LatencyAnnotation]; ok {
		l, err := time.ParseDuration(v)
		if err != nil || l < 0 {
			return 0, 0, fmt.Errorf("Deployment %s/%s: %s must be a duration, got %q", d.Namespace, d.Name, LatencyAnnotation, v)
		}
		latency = l
	}
	return success, latency, nil
}

// Run syncs every Canary each period until ctx ends. A Canary that cannot
// be synced yet (its routing objects are not written) is reported to
// onError and tried again next period.
func (s *Source) Run(ctx context.Context, period time.Duration, onError func(error)) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		var list serinv1.CanaryList
		if err := s.Client.List(ctx, &list); err != nil && ctx.Err() == nil {
			onError(fmt.Errorf("listing Canaries: %w", err))
		}
		for i := range list.Items {
			if err := s.Sync(ctx, &list.Items[i]); err != nil && ctx.Err() == nil {
				onError(err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

package router

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	contourv1 "github.com/projectcontour/contour/apis/projectcontour/v1"
	istionetworking "istio.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/naming"
)

// ContourIngressClassAnnotation on a Canary overrides the router's
// IngressClass for its HTTPProxy.
const ContourIngressClassAnnotation = "projectcontour.io/ingress.class"

// ContourRouter routes with a Contour HTTPProxy named after the apex
// Service: a root proxy for service.hosts[0], or a proxy to be included by
// another one when the Canary has no hosts.
//
// The routes are, in order: the A/B routes (while MatchToCanary), one per
// service.match × analysis.match pair, then the default routes, one per
// service.match rule (or one for "/"), splitting traffic between the
// primary and canary Services.
type ContourRouter struct {
	Reader       client.Reader
	Client       client.Client
	FieldManager string
	// IngressClass sets spec.ingressClassName when non-empty; the Canary's
	// projectcontour.io/ingress.class annotation overrides it.
	IngressClass string
}

// SetRoutes applies the HTTPProxy for t.
func (k *ContourRouter) SetRoutes(ctx context.Context, r Route, t analysis.Traffic) (analysis.Traffic, error) {
	return readBack(ctx, k, r, k.setRoutes(ctx, r, t))
}

func (k *ContourRouter) setRoutes(ctx context.Context, r Route, t analysis.Traffic) error {
	name := naming.ServicesOf(r.Canary).Apex
	spec, err := k.spec(r.Canary, t)
	if err != nil {
		return fmt.Errorf("HTTPProxy %s: %w", name, err)
	}
	labels, annotations := r.Canary.Spec.Service.ManagedMetadata(r.Canary.Spec.Service.Apex)
	hash, err := apply.Hash(struct {
		Spec                contourv1.HTTPProxySpec
		Owner               string
		Labels, Annotations map[string]string
	}{spec, string(r.Canary.UID), labels, annotations})
	if err != nil {
		return err
	}
	a := k.applier()
	ref := apply.Ref{Kind: "HTTPProxy", Namespace: r.Canary.Namespace, Name: name, Owner: r.Canary}
	var live contourv1.HTTPProxy
	exists, err := a.Read(ctx, ref, &live)
	if err != nil {
		return err
	}
	_, err = apply.Apply(ctx, a, apply.Write[*contourv1.HTTPProxy]{
		Ref:         ref,
		Hash:        hash,
		ManagedPath: []string{"f:spec", "f:routes"},
		Desired: func() (*unstructured.Unstructured, error) {
			return apply.Body(&contourv1.HTTPProxy{
				TypeMeta: metav1.TypeMeta{APIVersion: contourv1.GroupVersion.String(), Kind: "HTTPProxy"},
				ObjectMeta: metav1.ObjectMeta{
					Namespace:       r.Canary.Namespace,
					Name:            name,
					Labels:          labels,
					Annotations:     annotations,
					OwnerReferences: []metav1.OwnerReference{apply.ControllerRef(r.Canary)},
				},
				Spec: spec,
			}, schema.GroupVersionKind{})
		},
	}, &live, exists)
	return err
}

func (k *ContourRouter) applier() *apply.Applier {
	return &apply.Applier{Reader: k.Reader, Client: k.Client, FieldManager: k.FieldManager}
}

// Routes reads the split back from the last (default) route; routes before
// the default ones are A/B routes.
func (k *ContourRouter) Routes(ctx context.Context, r Route) (analysis.Traffic, error) {
	names := naming.ServicesOf(r.Canary)
	var live contourv1.HTTPProxy
	if err := k.Reader.Get(ctx, client.ObjectKey{Namespace: r.Canary.Namespace, Name: names.Apex}, &live); err != nil {
		return analysis.Traffic{}, fmt.Errorf("reading HTTPProxy %s: %w", names.Apex, err)
	}
	routes := live.Spec.Routes
	if len(routes) == 0 {
		return analysis.Traffic{}, fmt.Errorf("HTTPProxy %s has no routes", names.Apex)
	}
	var t analysis.Traffic
	var primary, canary int64
	for _, s := range routes[len(routes)-1].Services {
		switch s.Name {
		case names.Primary:
			primary += s.Weight
		case names.Canary:
			canary += s.Weight
		}
	}
	if primary+canary > 0 {
		t.CanaryWeight = int(canary * 100 / (primary + canary))
	}
	defaults := max(len(r.Canary.Spec.Service.Match), 1)
	t.MatchToCanary = len(routes) > defaults
	return t, nil
}

// Revert deletes the HTTPProxy, if the Canary controls it.
func (k *ContourRouter) Revert(ctx context.Context, r Route) error {
	proxy := &contourv1.HTTPProxy{ObjectMeta: metav1.ObjectMeta{Namespace: r.Canary.Namespace, Name: naming.ServicesOf(r.Canary).Apex}}
	return k.applier().Delete(ctx, r.Canary, proxy)
}

// spec builds the HTTPProxy spec.
func (k *ContourRouter) spec(c *serinv1.Canary, t analysis.Traffic) (contourv1.HTTPProxySpec, error) {
	if t.Mirror {
		return contourv1.HTTPProxySpec{}, fmt.Errorf("the contour router does not mirror traffic")
	}
	s := c.Spec.Service
	names := naming.ServicesOf(c)
	var spec contourv1.HTTPProxySpec
	if len(s.Hosts) > 0 {
		spec.VirtualHost = &contourv1.VirtualHost{Fqdn: s.Hosts[0]}
	}
	spec.IngressClassName = k.IngressClass
	if class := c.Annotations[ContourIngressClassAnnotation]; class != "" {
		spec.IngressClassName = class
	}

	baseMatches, err := ParseMatches(s.Match)
	if err != nil {
		return spec, fmt.Errorf("service.match: %w", err)
	}
	if len(baseMatches) == 0 {
		baseMatches = []*istionetworking.HTTPMatchRequest{{}}
	}
	base := make([][]contourv1.MatchCondition, 0, len(baseMatches))
	for i, m := range baseMatches {
		conds, err := contourConditions(m)
		if err != nil {
			return spec, fmt.Errorf("service.match[%d]: %w", i, err)
		}
		if !contourHasPath(conds) {
			conds = append([]contourv1.MatchCondition{{Prefix: "/"}}, conds...)
		}
		base = append(base, conds)
	}

	var policy contourv1.Route
	if s.Timeout != "" {
		policy.TimeoutPolicy = &contourv1.TimeoutPolicy{Response: s.Timeout}
	}
	if s.Retries != nil {
		retry := &istionetworking.HTTPRetry{}
		if err := istioUnmarshal("service.retries", s.Retries, retry); err != nil {
			return spec, err
		}
		policy.RetryPolicy = &contourv1.RetryPolicy{NumRetries: int64(retry.GetAttempts())}
		if d := retry.GetPerTryTimeout(); d != nil {
			policy.RetryPolicy.PerTryTimeout = d.AsDuration().String()
		}
		for on := range strings.SplitSeq(retry.GetRetryOn(), ",") {
			on = strings.TrimSpace(on)
			if on == "" {
				continue
			}
			if !slices.Contains(contourRetryOn, on) {
				return spec, fmt.Errorf("service.retries.retryOn: Contour cannot retry on %q (it can on %s)", on, strings.Join(contourRetryOn, ", "))
			}
			policy.RetryPolicy.RetryOn = append(policy.RetryPolicy.RetryOn, contourv1.RetryOn(on))
		}
	}
	if rw := s.Rewrite; rw != nil {
		// As Flagger's contour router: the matched prefix is replaced,
		// and the authority becomes the Host header sent upstream.
		if rw.URI != "" {
			policy.PathRewritePolicy = &contourv1.PathRewritePolicy{ReplacePrefix: []contourv1.ReplacePrefix{{Replacement: rw.URI}}}
		}
		if rw.Authority != "" {
			policy.RequestHeadersPolicy = &contourv1.HeadersPolicy{Set: []contourv1.HeaderValue{{Name: "Host", Value: rw.Authority}}}
		}
	}
	route := func(conds []contourv1.MatchCondition, primary, canary int64) contourv1.Route {
		r := *policy.DeepCopy()
		r.Conditions = conds
		r.Services = []contourv1.Service{
			{Name: names.Primary, Port: int(s.Port), Weight: primary},
			{Name: names.Canary, Port: int(s.Port), Weight: canary},
		}
		return r
	}

	if t.MatchToCanary {
		abMatches, err := ParseMatches(c.Spec.Analysis.Match)
		if err != nil {
			return spec, fmt.Errorf("analysis.match: %w", err)
		}
		for i, m := range abMatches {
			ab, err := contourConditions(m)
			if err != nil {
				return spec, fmt.Errorf("analysis.match[%d]: %w", i, err)
			}
			for _, b := range base {
				conds := slices.Clone(ab)
				if !contourHasPath(ab) {
					conds = append(slices.Clone(b), ab...)
				} else {
					for _, bc := range b {
						if bc.Header != nil || bc.QueryParameter != nil {
							conds = append(conds, bc)
						}
					}
				}
				spec.Routes = append(spec.Routes, route(conds, 0, 100))
			}
		}
	}
	primary, canary := Split(t)
	for _, b := range base {
		spec.Routes = append(spec.Routes, route(b, int64(primary), int64(canary)))
	}
	return spec, nil
}

// contourRetryOn are the retry conditions Contour's RetryOn accepts.
var contourRetryOn = []string{
	"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited", "retriable-4xx",
	"refused-stream", "retriable-status-codes", "retriable-headers", "http3-post-connect-failure",
	"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
}

// contourConditions converts an Istio match into Contour conditions. Header
// and query parameter prefixes become anchored regular expressions; Contour
// (Envoy) regular expressions match the whole value, as Istio's do.
func contourConditions(m *istionetworking.HTTPMatchRequest) ([]contourv1.MatchCondition, error) {
	var out []contourv1.MatchCondition
	if kind, v, ok := StringMatchOf(m.GetUri()); ok {
		switch kind {
		case MatchExact:
			out = append(out, contourv1.MatchCondition{Exact: v})
		case MatchPrefix:
			out = append(out, contourv1.MatchCondition{Prefix: v})
		case MatchRegex:
			out = append(out, contourv1.MatchCondition{Regex: v})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetHeaders())) {
		kind, v, ok := StringMatchOf(m.GetHeaders()[name])
		if !ok {
			return nil, fmt.Errorf("header %s: empty match", name)
		}
		h := &contourv1.HeaderMatchCondition{Name: name}
		switch kind {
		case MatchExact:
			h.Exact = v
		case MatchPrefix:
			h.Regex = prefixRegex(v)
		case MatchRegex:
			h.Regex = v
		}
		out = append(out, contourv1.MatchCondition{Header: h})
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetQueryParams())) {
		kind, v, ok := StringMatchOf(m.GetQueryParams()[name])
		if !ok {
			return nil, fmt.Errorf("query parameter %s: empty match", name)
		}
		q := &contourv1.QueryParameterMatchCondition{Name: name}
		switch kind {
		case MatchExact:
			q.Exact = v
		case MatchPrefix:
			q.Prefix = v
		case MatchRegex:
			q.Regex = v
		}
		out = append(out, contourv1.MatchCondition{QueryParameter: q})
	}
	if m.GetMethod() != nil {
		return nil, fmt.Errorf("the contour router cannot match the method")
	}
	return out, nil
}

// contourHasPath reports whether conds test the path.
func contourHasPath(conds []contourv1.MatchCondition) bool {
	return slices.ContainsFunc(conds, func(c contourv1.MatchCondition) bool {
		return c.Prefix != "" || c.Exact != "" || c.Regex != ""
	})
}

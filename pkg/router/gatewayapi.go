package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	istionetworking "istio.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/internal/owned"
	"github.com/serin-dev/serin/pkg/service"
)

// gatewayAPIDefaultMaxAge is the session affinity cookie's Max-Age when
// analysis.sessionAffinity.maxAge is unset.
const gatewayAPIDefaultMaxAge = 86400

// GatewayAPIRouter routes with a Gateway API HTTPRoute named after the apex
// Service, attached to service.gatewayRefs.
//
// The rules are, in order: one A/B rule per analysis.match rule (while
// MatchToCanary), the session affinity rule (while the canary has a weight
// strictly between 0 and 100) and the default rule splitting traffic between
// the primary and canary Services. Rule-level filters and timeouts that
// others added to the default rule are carried over, since the rules list is
// atomic and Serin's apply would otherwise remove them.
type GatewayAPIRouter struct {
	Reader       client.Reader
	Client       client.Client
	FieldManager string
}

// SetRoutes applies the HTTPRoute for t.
func (g *GatewayAPIRouter) SetRoutes(ctx context.Context, r Route, t analysis.Traffic) (analysis.Traffic, error) {
	return readBack(ctx, g, r, g.setRoutes(ctx, r, t))
}

func (g *GatewayAPIRouter) setRoutes(ctx context.Context, r Route, t analysis.Traffic) error {
	name := service.NamesOf(r.Canary).Apex
	var live gatewayv1.HTTPRoute
	err := g.Reader.Get(ctx, client.ObjectKey{Namespace: r.Canary.Namespace, Name: name}, &live)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading HTTPRoute %s: %w", name, err)
	}
	var liveDefault *gatewayv1.HTTPRouteRule
	if exists && len(live.Spec.Rules) > 0 {
		liveDefault = &live.Spec.Rules[len(live.Spec.Rules)-1]
	}
	spec, err := gatewayAPISpec(r.Canary, t, liveDefault)
	if err != nil {
		return fmt.Errorf("HTTPRoute %s: %w", name, err)
	}
	hash, err := gatewayAPIHash(spec, r.Canary)
	if err != nil {
		return err
	}
	if exists && live.Annotations[appliedHashAnnotation] == hash && managerOwnsField(live.ManagedFields, g.FieldManager, "f:spec", "f:rules") {
		return nil
	}
	specAC := &gatewayv1ac.HTTPRouteSpecApplyConfiguration{}
	if err := gatewayAPIConvert(spec, specAC); err != nil {
		return fmt.Errorf("HTTPRoute %s: %w", name, err)
	}
	ac := gatewayv1ac.HTTPRoute(name, r.Canary.Namespace).
		WithAnnotations(map[string]string{appliedHashAnnotation: hash}).
		WithOwnerReferences(service.OwnerReference(r.Canary)).
		WithSpec(specAC)
	if err := g.Client.Apply(ctx, ac, client.FieldOwner(g.FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying HTTPRoute %s: %w", name, err)
	}
	return nil
}

// Routes reads the split back from the default rule (the last one).
func (g *GatewayAPIRouter) Routes(ctx context.Context, r Route) (analysis.Traffic, error) {
	names := service.NamesOf(r.Canary)
	var live gatewayv1.HTTPRoute
	if err := g.Reader.Get(ctx, client.ObjectKey{Namespace: r.Canary.Namespace, Name: names.Apex}, &live); err != nil {
		return analysis.Traffic{}, fmt.Errorf("reading HTTPRoute %s: %w", names.Apex, err)
	}
	rules := live.Spec.Rules
	if len(rules) == 0 {
		return analysis.Traffic{}, fmt.Errorf("HTTPRoute %s has no rules", names.Apex)
	}
	def := rules[len(rules)-1]
	var t analysis.Traffic
	var primary, canary int32
	for _, b := range def.BackendRefs {
		w := int32(1)
		if b.Weight != nil {
			w = *b.Weight
		}
		switch string(b.Name) {
		case names.Primary:
			primary += w
		case names.Canary:
			canary += w
		}
	}
	if primary+canary > 0 {
		t.CanaryWeight = int(canary * 100 / (primary + canary))
	}
	for _, f := range def.Filters {
		if isCanaryMirror(f, names.Canary) {
			t.Mirror = true
			if f.RequestMirror.Percent != nil {
				t.MirrorWeight = int(*f.RequestMirror.Percent)
			}
		}
	}
	for _, rule := range rules[:len(rules)-1] {
		if !isSessionAffinityRule(rule) {
			t.MatchToCanary = true
		}
	}
	return t, nil
}

// Revert deletes the HTTPRoute, if the Canary controls it.
func (g *GatewayAPIRouter) Revert(ctx context.Context, r Route) error {
	route := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: r.Canary.Namespace, Name: service.NamesOf(r.Canary).Apex}}
	return owned.Delete(ctx, g.Reader, g.Client, r.Canary, route)
}

// gatewayAPISpec builds the HTTPRoute spec; liveDefault is the live default
// rule, whose foreign filters and timeouts are kept.
func gatewayAPISpec(c *serinv1.Canary, t analysis.Traffic, liveDefault *gatewayv1.HTTPRouteRule) (gatewayv1.HTTPRouteSpec, error) {
	s := c.Spec.Service
	names := service.NamesOf(c)
	var spec gatewayv1.HTTPRouteSpec
	spec.ParentRefs = slices.Clone(s.GatewayRefs)
	for _, h := range s.Hosts {
		spec.Hostnames = append(spec.Hostnames, gatewayv1.Hostname(h))
	}

	baseMatches, err := ParseMatches(s.Match)
	if err != nil {
		return spec, fmt.Errorf("service.match: %w", err)
	}
	if len(baseMatches) == 0 {
		baseMatches = []*istionetworking.HTTPMatchRequest{{}}
	}
	base := make([]gatewayv1.HTTPRouteMatch, 0, len(baseMatches))
	for i, m := range baseMatches {
		gm, err := gatewayAPIMatch(m)
		if err != nil {
			return spec, fmt.Errorf("service.match[%d]: %w", i, err)
		}
		if gm.Path == nil {
			gm.Path = &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new("/")}
		}
		base = append(base, gm)
	}

	var timeouts *gatewayv1.HTTPRouteTimeouts
	if s.Timeout != "" {
		d, err := gatewayAPIDuration(s.Timeout)
		if err != nil {
			return spec, fmt.Errorf("service.timeout: %w", err)
		}
		timeouts = &gatewayv1.HTTPRouteTimeouts{Request: &d}
	}
	backend := func(name string, weight *int32) gatewayv1.HTTPBackendRef {
		return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: new(s.Port)},
			Weight:                 weight,
		}}
	}
	primaryWeight, canaryWeight := Split(t)

	if t.MatchToCanary {
		abMatches, err := ParseMatches(c.Spec.Analysis.Match)
		if err != nil {
			return spec, fmt.Errorf("analysis.match: %w", err)
		}
		for i, m := range abMatches {
			am, err := gatewayAPIMatch(m)
			if err != nil {
				return spec, fmt.Errorf("analysis.match[%d]: %w", i, err)
			}
			rule := gatewayv1.HTTPRouteRule{
				BackendRefs: []gatewayv1.HTTPBackendRef{backend(names.Primary, new(int32(0))), backend(names.Canary, new(int32(100)))},
				Timeouts:    timeouts.DeepCopy(),
			}
			for _, b := range base {
				rule.Matches = append(rule.Matches, mergeGatewayAPIMatch(b, am))
			}
			spec.Rules = append(spec.Rules, rule)
		}
	}

	canaryRef := backend(names.Canary, new(canaryWeight))
	if sa := c.Spec.Analysis.SessionAffinity; sa != nil && canaryWeight > 0 && canaryWeight < 100 {
		cookie := sa.CookieName + "=" + c.Status.LastAppliedSpec
		maxAge := sa.MaxAge
		if maxAge == 0 {
			maxAge = gatewayAPIDefaultMaxAge
		}
		header := gatewayv1.HTTPHeaderMatch{
			Type:  new(gatewayv1.HeaderMatchRegularExpression),
			Name:  "Cookie",
			Value: "^(.*?;)?(" + regexp.QuoteMeta(cookie) + ")(;.*)?$",
		}
		rule := gatewayv1.HTTPRouteRule{
			BackendRefs: []gatewayv1.HTTPBackendRef{backend(names.Canary, nil)},
			Timeouts:    timeouts.DeepCopy(),
		}
		for _, b := range base {
			m := *b.DeepCopy()
			m.Headers = append(m.Headers, header)
			rule.Matches = append(rule.Matches, m)
		}
		spec.Rules = append(spec.Rules, rule)
		canaryRef.Filters = []gatewayv1.HTTPRouteFilter{{
			Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier,
			ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{
				Name:  "Set-Cookie",
				Value: fmt.Sprintf("%s; Max-Age=%d", cookie, maxAge),
			}}},
		}}
	}

	def := gatewayv1.HTTPRouteRule{
		Matches:     base,
		BackendRefs: []gatewayv1.HTTPBackendRef{backend(names.Primary, new(primaryWeight)), canaryRef},
		Timeouts:    timeouts,
	}
	if liveDefault != nil {
		for _, f := range liveDefault.Filters {
			if !isCanaryMirror(f, names.Canary) {
				def.Filters = append(def.Filters, f)
			}
		}
		if lt := liveDefault.Timeouts; lt != nil {
			merged := lt.DeepCopy()
			if timeouts != nil {
				merged.Request = timeouts.Request
			}
			def.Timeouts = merged
		}
	}
	if t.Mirror {
		mirror := &gatewayv1.HTTPRequestMirrorFilter{BackendRef: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(names.Canary), Port: new(s.Port)}}
		if t.MirrorWeight > 0 {
			mirror.Percent = new(int32(min(t.MirrorWeight, 100)))
		}
		def.Filters = append(def.Filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: mirror})
	}
	spec.Rules = append(spec.Rules, def)
	return spec, nil
}

// gatewayAPIMatch converts an Istio match. Header and query parameter
// prefixes become anchored regular expressions.
func gatewayAPIMatch(m *istionetworking.HTTPMatchRequest) (gatewayv1.HTTPRouteMatch, error) {
	var out gatewayv1.HTTPRouteMatch
	if kind, v, ok := StringMatchOf(m.GetUri()); ok {
		types := map[MatchKind]gatewayv1.PathMatchType{MatchExact: gatewayv1.PathMatchExact, MatchPrefix: gatewayv1.PathMatchPathPrefix, MatchRegex: gatewayv1.PathMatchRegularExpression}
		out.Path = &gatewayv1.HTTPPathMatch{Type: new(types[kind]), Value: new(v)}
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetHeaders())) {
		kind, v, ok := StringMatchOf(m.GetHeaders()[name])
		if !ok {
			return out, fmt.Errorf("header %s: empty match", name)
		}
		typ, v := gatewayAPIStringMatch(kind, v)
		out.Headers = append(out.Headers, gatewayv1.HTTPHeaderMatch{Type: new(gatewayv1.HeaderMatchType(typ)), Name: gatewayv1.HTTPHeaderName(name), Value: v})
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetQueryParams())) {
		kind, v, ok := StringMatchOf(m.GetQueryParams()[name])
		if !ok {
			return out, fmt.Errorf("query parameter %s: empty match", name)
		}
		typ, v := gatewayAPIStringMatch(kind, v)
		out.QueryParams = append(out.QueryParams, gatewayv1.HTTPQueryParamMatch{Type: new(gatewayv1.QueryParamMatchType(typ)), Name: gatewayv1.HTTPHeaderName(name), Value: v})
	}
	if kind, v, ok := StringMatchOf(m.GetMethod()); ok {
		if kind != MatchExact {
			return out, fmt.Errorf("method: only exact matches are supported, not %s", kind)
		}
		out.Method = new(gatewayv1.HTTPMethod(strings.ToUpper(v)))
	}
	return out, nil
}

// gatewayAPIStringMatch returns the Gateway API match type ("Exact" or
// "RegularExpression") and value of a header or query parameter match.
func gatewayAPIStringMatch(kind MatchKind, v string) (string, string) {
	switch kind {
	case MatchPrefix:
		return "RegularExpression", "^" + regexp.QuoteMeta(v) + ".*"
	case MatchRegex:
		return "RegularExpression", v
	}
	return "Exact", v
}

// mergeGatewayAPIMatch adds the conditions of ab to base; a path in ab
// replaces the base path.
func mergeGatewayAPIMatch(base, ab gatewayv1.HTTPRouteMatch) gatewayv1.HTTPRouteMatch {
	out := *base.DeepCopy()
	if ab.Path != nil {
		out.Path = ab.Path.DeepCopy()
	}
	if ab.Method != nil {
		out.Method = new(*ab.Method)
	}
	out.Headers = append(out.Headers, ab.Headers...)
	out.QueryParams = append(out.QueryParams, ab.QueryParams...)
	return out
}

// isCanaryMirror reports whether f is the mirror filter Serin adds.
func isCanaryMirror(f gatewayv1.HTTPRouteFilter, canary string) bool {
	return f.Type == gatewayv1.HTTPRouteFilterRequestMirror && f.RequestMirror != nil && string(f.RequestMirror.BackendRef.Name) == canary
}

// isSessionAffinityRule reports whether rule is the session affinity rule:
// all its matches test the Cookie header with a regular expression.
func isSessionAffinityRule(rule gatewayv1.HTTPRouteRule) bool {
	if len(rule.Matches) == 0 {
		return false
	}
	for _, m := range rule.Matches {
		if !slices.ContainsFunc(m.Headers, func(h gatewayv1.HTTPHeaderMatch) bool {
			return strings.EqualFold(string(h.Name), "Cookie") && h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression
		}) {
			return false
		}
	}
	return true
}

// gatewayAPIDuration converts a Go duration to the Gateway API format,
// which allows no fractions: 1.5s becomes 1s500ms.
func gatewayAPIDuration(s string) (gatewayv1.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return "", err
	}
	if d <= 0 || d%time.Millisecond != 0 {
		return "", fmt.Errorf("%s is not a positive whole number of milliseconds", s)
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	return gatewayv1.Duration(b.String()), nil
}

// gatewayAPIHash hashes what Serin applies, so an unchanged route is
// detected without comparing defaulted fields.
func gatewayAPIHash(spec gatewayv1.HTTPRouteSpec, c *serinv1.Canary) (string, error) {
	raw, err := json.Marshal(struct {
		Spec  gatewayv1.HTTPRouteSpec
		Owner string
	}{spec, string(c.UID)})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16]), nil
}

// gatewayAPIConvert copies in into out through their JSON form, e.g. a typed
// object into its apply configuration.
func gatewayAPIConvert(in, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// managerOwnsField reports whether manager still owns the field at path in its
// apply entry; a field written by someone else since has moved to them.
func managerOwnsField(entries []metav1.ManagedFieldsEntry, manager string, path ...string) bool {
	for _, e := range entries {
		if e.Manager != manager || e.Operation != metav1.ManagedFieldsOperationApply || e.Subresource != "" || e.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if json.Unmarshal(e.FieldsV1.Raw, &fields) != nil {
			return false
		}
		for _, p := range path {
			next, ok := fields[p].(map[string]any)
			if !ok {
				return false
			}
			fields = next
		}
		return true
	}
	return false
}

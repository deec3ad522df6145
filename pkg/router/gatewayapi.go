package router

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	istionetworking "istio.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/naming"
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
	name := naming.ServicesOf(r.Canary).Apex
	a := g.applier()
	ref := apply.Ref{Kind: "HTTPRoute", Namespace: r.Canary.Namespace, Name: name, Owner: r.Canary}
	// Refused before anything of it is carried over.
	var live gatewayv1.HTTPRoute
	exists, err := a.Read(ctx, ref, &live)
	if err != nil {
		return err
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
	_, err = apply.Apply(ctx, a, apply.Write[*gatewayv1.HTTPRoute]{
		Ref:         ref,
		Hash:        hash,
		ManagedPath: []string{"f:spec", "f:rules"},
		Desired: func() (*unstructured.Unstructured, error) {
			specAC := &gatewayv1ac.HTTPRouteSpecApplyConfiguration{}
			if err := gatewayAPIConvert(spec, specAC); err != nil {
				return nil, err
			}
			return apply.JSONBody(gatewayv1ac.HTTPRoute(name, r.Canary.Namespace).
				WithOwnerReferences(apply.ControllerRefApply(r.Canary)).
				WithSpec(specAC))
		},
	}, &live, exists)
	return err
}

func (g *GatewayAPIRouter) applier() *apply.Applier {
	return &apply.Applier{Reader: g.Reader, Client: g.Client, FieldManager: g.FieldManager}
}

// Routes reads the split back from the default rule (the last one).
func (g *GatewayAPIRouter) Routes(ctx context.Context, r Route) (analysis.Traffic, error) {
	names := naming.ServicesOf(r.Canary)
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
	route := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: r.Canary.Namespace, Name: naming.ServicesOf(r.Canary).Apex}}
	return g.applier().Delete(ctx, r.Canary, route)
}

// gatewayAPISpec builds the HTTPRoute spec; liveDefault is the live default
// rule, whose foreign filters and timeouts are kept.
func gatewayAPISpec(c *serinv1.Canary, t analysis.Traffic, liveDefault *gatewayv1.HTTPRouteRule) (gatewayv1.HTTPRouteSpec, error) {
	s := c.Spec.Service
	var spec gatewayv1.HTTPRouteSpec
	spec.ParentRefs = slices.Clone(s.GatewayRefs)
	for _, h := range s.Hosts {
		spec.Hostnames = append(spec.Hostnames, gatewayv1.Hostname(h))
	}
	base, err := gatewayAPIBaseMatches(s)
	if err != nil {
		return spec, err
	}
	var timeouts *gatewayv1.HTTPRouteTimeouts
	if s.Timeout != "" {
		d, err := gatewayAPIDuration(s.Timeout)
		if err != nil {
			return spec, fmt.Errorf("service.timeout: %w", err)
		}
		timeouts = &gatewayv1.HTTPRouteTimeouts{Request: &d}
	}
	b := gatewayAPIBackends{names: naming.ServicesOf(c), port: s.Port}
	primaryWeight, canaryWeight := Split(t)

	if t.MatchToCanary {
		rules, err := gatewayAPIABRules(c.Spec.Analysis.Match, base, timeouts, b)
		if err != nil {
			return spec, err
		}
		spec.Rules = append(spec.Rules, rules...)
	}
	canaryRef := b.ref(b.names.Canary, new(canaryWeight))
	if sa := c.Spec.Analysis.SessionAffinity; sa != nil && canaryWeight > 0 && canaryWeight < 100 {
		rule, setCookie := gatewayAPIAffinityRule(sa, c.Status.LastAppliedSpec, base, timeouts, b)
		spec.Rules = append(spec.Rules, rule)
		canaryRef.Filters = []gatewayv1.HTTPRouteFilter{setCookie}
	}
	def := gatewayv1.HTTPRouteRule{
		Matches:     base,
		BackendRefs: []gatewayv1.HTTPBackendRef{b.ref(b.names.Primary, new(primaryWeight)), canaryRef},
		Timeouts:    timeouts,
	}
	gatewayAPIKeepForeign(&def, liveDefault, timeouts, b.names.Canary)
	if t.Mirror {
		def.Filters = append(def.Filters, b.mirror(t.MirrorWeight))
	}
	spec.Rules = append(spec.Rules, def)
	return spec, nil
}

// gatewayAPIBaseMatches converts service.match, or matches every path
// without it; a match without a path matches every path.
func gatewayAPIBaseMatches(s serinv1.CanaryService) ([]gatewayv1.HTTPRouteMatch, error) {
	baseMatches, err := ParseMatches(s.Match)
	if err != nil {
		return nil, fmt.Errorf("service.match: %w", err)
	}
	if len(baseMatches) == 0 {
		baseMatches = []*istionetworking.HTTPMatchRequest{{}}
	}
	base := make([]gatewayv1.HTTPRouteMatch, 0, len(baseMatches))
	for i, m := range baseMatches {
		gm, err := gatewayAPIMatch(m)
		if err != nil {
			return nil, fmt.Errorf("service.match[%d]: %w", i, err)
		}
		if gm.Path == nil {
			gm.Path = &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new("/")}
		}
		base = append(base, gm)
	}
	return base, nil
}

// gatewayAPIBackends builds the references to a Canary's Services.
type gatewayAPIBackends struct {
	names naming.Services
	port  int32
}

// ref points at the Service name with weight (nil: the API default).
func (b gatewayAPIBackends) ref(name string, weight *int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: new(b.port)},
		Weight:                 weight,
	}}
}

// mirror is the filter that mirrors weight percent of the requests (0: all)
// to the canary.
func (b gatewayAPIBackends) mirror(weight int) gatewayv1.HTTPRouteFilter {
	mirror := &gatewayv1.HTTPRequestMirrorFilter{BackendRef: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(b.names.Canary), Port: new(b.port)}}
	if weight > 0 {
		mirror.Percent = new(int32(min(weight, 100)))
	}
	return gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: mirror}
}

// gatewayAPIABRules are the A/B rules, one per analysis.match rule, each
// sending the requests it matches within the base matches to the canary.
func gatewayAPIABRules(match []apiextensionsv1.JSON, base []gatewayv1.HTTPRouteMatch, timeouts *gatewayv1.HTTPRouteTimeouts, b gatewayAPIBackends) ([]gatewayv1.HTTPRouteRule, error) {
	abMatches, err := ParseMatches(match)
	if err != nil {
		return nil, fmt.Errorf("analysis.match: %w", err)
	}
	var rules []gatewayv1.HTTPRouteRule
	for i, m := range abMatches {
		am, err := gatewayAPIMatch(m)
		if err != nil {
			return nil, fmt.Errorf("analysis.match[%d]: %w", i, err)
		}
		rule := gatewayv1.HTTPRouteRule{
			BackendRefs: []gatewayv1.HTTPBackendRef{b.ref(b.names.Primary, new(int32(0))), b.ref(b.names.Canary, new(int32(100)))},
			Timeouts:    timeouts.DeepCopy(),
		}
		for _, bm := range base {
			rule.Matches = append(rule.Matches, mergeGatewayAPIMatch(bm, am))
		}
		rules = append(rules, rule)
	}
	return rules, nil
}

// gatewayAPIAffinityRule is the session affinity rule, which keeps sending
// the clients that got the release's cookie to the canary, and the filter
// that sets the cookie on the canary's responses.
func gatewayAPIAffinityRule(sa *serinv1.SessionAffinity, release string, base []gatewayv1.HTTPRouteMatch, timeouts *gatewayv1.HTTPRouteTimeouts, b gatewayAPIBackends) (gatewayv1.HTTPRouteRule, gatewayv1.HTTPRouteFilter) {
	cookie := sa.CookieName + "=" + release
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
		BackendRefs: []gatewayv1.HTTPBackendRef{b.ref(b.names.Canary, nil)},
		Timeouts:    timeouts.DeepCopy(),
	}
	for _, bm := range base {
		m := *bm.DeepCopy()
		m.Headers = append(m.Headers, header)
		rule.Matches = append(rule.Matches, m)
	}
	setCookie := gatewayv1.HTTPRouteFilter{
		Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{
			Name:  "Set-Cookie",
			Value: fmt.Sprintf("%s; Max-Age=%d", cookie, maxAge),
		}}},
	}
	return rule, setCookie
}

// gatewayAPIKeepForeign carries the filters and timeouts others added to
// the live default rule over to def: the rules list is atomic, so Serin's
// apply would otherwise remove them. Serin's own mirror and request timeout
// are not carried over but set anew.
func gatewayAPIKeepForeign(def, liveDefault *gatewayv1.HTTPRouteRule, timeouts *gatewayv1.HTTPRouteTimeouts, canary string) {
	if liveDefault == nil {
		return
	}
	for _, f := range liveDefault.Filters {
		if !isCanaryMirror(f, canary) {
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
		return "RegularExpression", "^" + prefixRegex(v)
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
	return apply.Hash(struct {
		Spec  gatewayv1.HTTPRouteSpec
		Owner string
	}{spec, string(c.UID)})
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

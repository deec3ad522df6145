package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
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

// GatewayAPIRouter routes with a Gateway API HTTPRoute named after the apex
// Service, attached to service.gatewayRefs, with service.apex's metadata.
//
// The rules are, in order: one A/B rule per analysis.match rule (while
// MatchToCanary), the session affinity rules of the canary and, with
// sessionAffinity.primaryCookieName, of the primary (while the canary has a
// weight strictly between 0 and 100) and the default rule splitting traffic
// between the primary and canary Services. Every rule carries the timeouts
// and the header, rewrite and CORS filters of service; the default rule
// carries service.mirror too. Rule-level filters and timeouts that others
// added to the default rule are carried over, since the rules list is
// atomic and Serin's apply would otherwise remove them.
type GatewayAPIRouter struct {
	Reader       client.Reader
	Client       client.Client
	FieldManager string
}

// gatewayAPIDefaultRuleAnnotation lists what Serin set on the default rule
// besides its matches and backends (gatewayAPIFilterKey of each filter and
// the timeouts), so that the next apply tells it from what others added,
// even once the Canary no longer asks for it.
const gatewayAPIDefaultRuleAnnotation = "serin.dev/default-rule"

// The keys of the timeouts in gatewayAPIDefaultRuleAnnotation.
const (
	gatewayAPIRequestTimeout        = "timeouts.request"
	gatewayAPIBackendRequestTimeout = "timeouts.backendRequest"
)

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
	var liveRoute *gatewayv1.HTTPRoute
	if exists {
		liveRoute = &live
	}
	desired, err := gatewayAPIDesired(r.Canary, t, liveRoute)
	if err != nil {
		return fmt.Errorf("HTTPRoute %s: %w", name, err)
	}
	hash, err := apply.Hash(struct {
		Route gatewayAPIRoute
		Owner string
	}{desired, string(r.Canary.UID)})
	if err != nil {
		return err
	}
	_, err = apply.Apply(ctx, a, apply.Write[*gatewayv1.HTTPRoute]{
		Ref:         ref,
		Hash:        hash,
		ManagedPath: []string{"f:spec", "f:rules"},
		// The hash misses someone removing or changing a label or
		// annotation Serin sets; those others set are theirs.
		UpToDate: func(live *gatewayv1.HTTPRoute) (bool, error) {
			return istioSubset(desired.Labels, live.Labels) && istioSubset(desired.Annotations, live.Annotations), nil
		},
		Desired: func() (*unstructured.Unstructured, error) {
			specAC := &gatewayv1ac.HTTPRouteSpecApplyConfiguration{}
			if err := gatewayAPIConvert(desired.Spec, specAC); err != nil {
				return nil, err
			}
			return apply.JSONBody(gatewayv1ac.HTTPRoute(name, r.Canary.Namespace).
				WithLabels(desired.Labels).
				WithAnnotations(desired.Annotations).
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

// gatewayAPIRoute is what Serin applies to the HTTPRoute.
type gatewayAPIRoute struct {
	Spec        gatewayv1.HTTPRouteSpec
	Labels      map[string]string
	Annotations map[string]string
}

// gatewayAPIDesired builds the HTTPRoute for t; live is the live route, if
// there is one, whose default rule's foreign filters and timeouts are kept.
func gatewayAPIDesired(c *serinv1.Canary, t analysis.Traffic, live *gatewayv1.HTTPRoute) (gatewayAPIRoute, error) {
	var liveDefault *gatewayv1.HTTPRouteRule
	var liveOwn []string
	if live != nil {
		if n := len(live.Spec.Rules); n > 0 {
			liveDefault = &live.Spec.Rules[n-1]
		}
		if v := live.Annotations[gatewayAPIDefaultRuleAnnotation]; v != "" {
			liveOwn = strings.Split(v, ",")
		}
	}
	spec, own, err := gatewayAPISpec(c, t, liveDefault, liveOwn)
	if err != nil {
		return gatewayAPIRoute{}, err
	}
	route := gatewayAPIRoute{Spec: spec}
	route.Labels, route.Annotations = c.Spec.Service.ManagedMetadata(c.Spec.Service.Apex)
	if len(own) > 0 {
		if route.Annotations == nil {
			route.Annotations = map[string]string{}
		}
		route.Annotations[gatewayAPIDefaultRuleAnnotation] = strings.Join(own, ",")
	}
	return route, nil
}

// gatewayAPISpec builds the HTTPRoute spec and the keys of what Serin sets
// on the default rule (see gatewayAPIDefaultRuleAnnotation). liveDefault is
// the live default rule, whose foreign filters and timeouts are kept, and
// liveOwn what Serin set on it before.
func gatewayAPISpec(c *serinv1.Canary, t analysis.Traffic, liveDefault *gatewayv1.HTTPRouteRule, liveOwn []string) (gatewayv1.HTTPRouteSpec, []string, error) {
	s := c.Spec.Service
	var spec gatewayv1.HTTPRouteSpec
	spec.ParentRefs = slices.Clone(s.GatewayRefs)
	for _, h := range s.Hosts {
		spec.Hostnames = append(spec.Hostnames, gatewayv1.Hostname(h))
	}
	base, err := gatewayAPIBaseMatches(s)
	if err != nil {
		return spec, nil, err
	}
	rb, err := gatewayAPIRuleBaseOf(s)
	if err != nil {
		return spec, nil, err
	}
	b := gatewayAPIBackends{names: naming.ServicesOf(c), port: s.Port}
	mirrors, err := gatewayAPIMirrors(s.Mirror, b.names.Canary)
	if err != nil {
		return spec, nil, err
	}
	primaryWeight, canaryWeight := Split(t)

	if t.MatchToCanary {
		rules, err := gatewayAPIABRules(c.Spec.Analysis.Match, base, rb, b)
		if err != nil {
			return spec, nil, err
		}
		spec.Rules = append(spec.Rules, rules...)
	}
	primaryRef := b.ref(b.names.Primary, new(primaryWeight))
	canaryRef := b.ref(b.names.Canary, new(canaryWeight))
	if sa := c.Spec.Analysis.SessionAffinity; sa != nil && canaryWeight > 0 && canaryWeight < 100 {
		// The cookies name the release, so they stop matching once the
		// next release (or none) is analysed.
		release := c.Status.LastAppliedSpec
		spec.Rules = append(spec.Rules, gatewayAPIAffinityRule(sa.CookieName, release, base, rb, b.ref(b.names.Canary, nil)))
		canaryRef.Filters = []gatewayv1.HTTPRouteFilter{gatewayAPISetCookie(setCookie(sa, sa.CookieName, release))}
		if sa.PrimaryCookieName != "" {
			spec.Rules = append(spec.Rules, gatewayAPIAffinityRule(sa.PrimaryCookieName, release, base, rb, b.ref(b.names.Primary, nil)))
			primaryRef.Filters = []gatewayv1.HTTPRouteFilter{gatewayAPISetCookie(setCookie(sa, sa.PrimaryCookieName, release))}
		}
	}
	def := rb.rule(base, primaryRef, canaryRef)
	def.Filters = append(def.Filters, mirrors...)
	own := gatewayAPIOwnKeys(def)
	gatewayAPIKeepForeign(&def, liveDefault, slices.Concat(own, liveOwn), b.names.Canary)
	if t.Mirror {
		def.Filters = append(def.Filters, b.mirror(t.MirrorWeight))
	}
	spec.Rules = append(spec.Rules, def)
	if rw := s.Rewrite; rw != nil && rw.URI != "" && rw.Type != string(gatewayv1.FullPathHTTPPathModifier) {
		if err := gatewayAPIPrefixRewriteFits(spec.Rules); err != nil {
			return spec, nil, err
		}
	}
	return spec, own, nil
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

// gatewayAPIRuleBase is what every generated rule carries besides its
// matches and backends: the timeouts and the filters of service.headers,
// rewrite and corsPolicy.
type gatewayAPIRuleBase struct {
	timeouts *gatewayv1.HTTPRouteTimeouts
	filters  []gatewayv1.HTTPRouteFilter
}

// rule is a rule with matches and backends and the base's timeouts and
// filters, which it does not share.
func (rb gatewayAPIRuleBase) rule(matches []gatewayv1.HTTPRouteMatch, backends ...gatewayv1.HTTPBackendRef) gatewayv1.HTTPRouteRule {
	rule := gatewayv1.HTTPRouteRule{Matches: matches, BackendRefs: backends, Timeouts: rb.timeouts.DeepCopy()}
	for _, f := range rb.filters {
		rule.Filters = append(rule.Filters, *f.DeepCopy())
	}
	return rule
}

// gatewayAPIRuleBaseOf converts service.timeout, backendTimeout, headers,
// rewrite and corsPolicy. The Gateway API allows one filter of each of
// these types per rule, and Serin makes at most one of each.
func gatewayAPIRuleBaseOf(s serinv1.CanaryService) (gatewayAPIRuleBase, error) {
	var rb gatewayAPIRuleBase
	var err error
	if rb.timeouts, err = gatewayAPITimeouts(s); err != nil {
		return rb, err
	}
	if s.Headers != nil {
		h := &istionetworking.Headers{}
		if err := istioUnmarshal("service.headers", s.Headers, h); err != nil {
			return rb, err
		}
		request, err := gatewayAPIHeaderFilter("service.headers.request", h.GetRequest())
		if err != nil {
			return rb, err
		}
		if request != nil {
			rb.filters = append(rb.filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: request})
		}
		response, err := gatewayAPIHeaderFilter("service.headers.response", h.GetResponse())
		if err != nil {
			return rb, err
		}
		if response != nil {
			rb.filters = append(rb.filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: response})
		}
	}
	if rewrite := gatewayAPIRewrite(s.Rewrite); rewrite != nil {
		rb.filters = append(rb.filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: rewrite})
	}
	if s.CorsPolicy != nil {
		cors, err := gatewayAPICORS(s.CorsPolicy)
		if err != nil {
			return rb, err
		}
		rb.filters = append(rb.filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterCORS, CORS: cors})
	}
	return rb, nil
}

// gatewayAPITimeouts converts service.timeout and backendTimeout. The
// Gateway API refuses a backend request timeout longer than the request
// timeout, which covers it.
func gatewayAPITimeouts(s serinv1.CanaryService) (*gatewayv1.HTTPRouteTimeouts, error) {
	if s.Timeout == "" && s.BackendTimeout == "" {
		return nil, nil
	}
	timeouts := &gatewayv1.HTTPRouteTimeouts{}
	if s.Timeout != "" {
		d, err := gatewayAPIDuration(s.Timeout)
		if err != nil {
			return nil, fmt.Errorf("service.timeout: %w", err)
		}
		timeouts.Request = &d
	}
	if s.BackendTimeout != "" {
		d, err := gatewayAPIDuration(s.BackendTimeout)
		if err != nil {
			return nil, fmt.Errorf("service.backendTimeout: %w", err)
		}
		timeouts.BackendRequest = &d
	}
	if timeouts.Request != nil && timeouts.BackendRequest != nil {
		// Both parsed already.
		request, _ := time.ParseDuration(s.Timeout)
		backend, _ := time.ParseDuration(s.BackendTimeout)
		if backend > request {
			return nil, fmt.Errorf("service.backendTimeout %s exceeds service.timeout %s, which covers it", s.BackendTimeout, s.Timeout)
		}
	}
	return timeouts, nil
}

// gatewayAPIHeaderFilter converts Istio header operations, nil for none.
// The Gateway API allows one operation per header name (in any case),
// where Istio would set, add and remove in turn.
func gatewayAPIHeaderFilter(field string, ops *istionetworking.Headers_HeaderOperations) (*gatewayv1.HTTPHeaderFilter, error) {
	if len(ops.GetSet())+len(ops.GetAdd())+len(ops.GetRemove()) == 0 {
		return nil, nil
	}
	headers := func(m map[string]string) []gatewayv1.HTTPHeader {
		var out []gatewayv1.HTTPHeader
		for _, name := range slices.Sorted(maps.Keys(m)) {
			out = append(out, gatewayv1.HTTPHeader{Name: gatewayv1.HTTPHeaderName(name), Value: m[name]})
		}
		return out
	}
	f := &gatewayv1.HTTPHeaderFilter{Set: headers(ops.GetSet()), Add: headers(ops.GetAdd()), Remove: slices.Clone(ops.GetRemove())}
	names := slices.Clone(f.Remove)
	for _, h := range slices.Concat(f.Set, f.Add) {
		names = append(names, string(h.Name))
	}
	seen := map[string]bool{}
	for _, name := range names {
		if seen[strings.ToLower(name)] {
			return nil, fmt.Errorf("%s: header %s has more than one operation, which the Gateway API does not allow", field, name)
		}
		seen[strings.ToLower(name)] = true
	}
	return f, nil
}

// gatewayAPIRewrite converts service.rewrite, nil for none. A uri replaces
// the matched path prefix unless type is ReplaceFullPath.
func gatewayAPIRewrite(rw *serinv1.HTTPRewrite) *gatewayv1.HTTPURLRewriteFilter {
	if rw == nil || (rw.URI == "" && rw.Authority == "") {
		return nil
	}
	f := &gatewayv1.HTTPURLRewriteFilter{}
	if rw.Authority != "" {
		f.Hostname = new(gatewayv1.PreciseHostname(rw.Authority))
	}
	switch {
	case rw.URI == "":
	case rw.Type == string(gatewayv1.FullPathHTTPPathModifier):
		f.Path = &gatewayv1.HTTPPathModifier{Type: gatewayv1.FullPathHTTPPathModifier, ReplaceFullPath: new(rw.URI)}
	default:
		f.Path = &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: new(rw.URI)}
	}
	return f
}

// gatewayAPIPrefixRewriteFits checks the Gateway API's rule for a
// ReplacePrefixMatch rewrite: each rule has exactly one match, on a path
// prefix.
func gatewayAPIPrefixRewriteFits(rules []gatewayv1.HTTPRouteRule) error {
	for i, rule := range rules {
		if len(rule.Matches) != 1 {
			return fmt.Errorf("service.rewrite: a ReplacePrefixMatch rewrite needs each rule to have one match, but rule %d has %d (from service.match)", i, len(rule.Matches))
		}
		if p := rule.Matches[0].Path; p == nil || p.Type == nil || *p.Type != gatewayv1.PathMatchPathPrefix {
			return fmt.Errorf("service.rewrite: a ReplacePrefixMatch rewrite needs each rule to match a path prefix, but rule %d does not (service.match or analysis.match sets an exact or regex uri)", i)
		}
	}
	return nil
}

// gatewayAPICORS converts service.corsPolicy. Gateway API origins are exact
// or have a '*' wildcard for DNS labels: Istio's prefix and regex origins
// have no equivalent.
func gatewayAPICORS(raw *apiextensionsv1.JSON) (*gatewayv1.HTTPCORSFilter, error) {
	p := &istionetworking.CorsPolicy{}
	if err := istioUnmarshal("service.corsPolicy", raw, p); err != nil {
		return nil, err
	}
	f := &gatewayv1.HTTPCORSFilter{}
	for i, m := range p.GetAllowOrigins() {
		kind, v, ok := StringMatchOf(m)
		if !ok {
			return nil, fmt.Errorf("service.corsPolicy.allowOrigins[%d]: empty match", i)
		}
		if kind != MatchExact {
			return nil, fmt.Errorf("service.corsPolicy.allowOrigins[%d]: the Gateway API has no %s origins (%q), only exact ones and wildcards such as https://*.example.com", i, strings.ToLower(string(kind)), v)
		}
		f.AllowOrigins = append(f.AllowOrigins, gatewayv1.CORSOrigin(v))
	}
	for _, o := range p.GetAllowOrigin() {
		f.AllowOrigins = append(f.AllowOrigins, gatewayv1.CORSOrigin(o))
	}
	for _, m := range p.GetAllowMethods() {
		f.AllowMethods = append(f.AllowMethods, gatewayv1.HTTPMethodWithWildcard(m))
	}
	for _, h := range p.GetAllowHeaders() {
		f.AllowHeaders = append(f.AllowHeaders, gatewayv1.HTTPHeaderName(h))
	}
	for _, h := range p.GetExposeHeaders() {
		f.ExposeHeaders = append(f.ExposeHeaders, gatewayv1.HTTPHeaderName(h))
	}
	if p.GetMaxAge() != nil {
		d := p.GetMaxAge().AsDuration()
		if d < time.Second || d%time.Second != 0 || d > math.MaxInt32*time.Second {
			return nil, fmt.Errorf("service.corsPolicy.maxAge: %s is not a whole number of seconds, as the Gateway API takes it", d)
		}
		f.MaxAge = int32(d / time.Second)
	}
	if p.GetAllowCredentials() != nil {
		f.AllowCredentials = new(p.GetAllowCredentials().GetValue())
	}
	if p.GetUnmatchedPreflights() != istionetworking.CorsPolicy_UNSPECIFIED {
		return nil, fmt.Errorf("service.corsPolicy.unmatchedPreflights: the Gateway API has no equivalent")
	}
	return f, nil
}

// gatewayAPIMirrors converts service.mirror into RequestMirror filters.
func gatewayAPIMirrors(raw []apiextensionsv1.JSON, canary string) ([]gatewayv1.HTTPRouteFilter, error) {
	var out []gatewayv1.HTTPRouteFilter
	for i, r := range raw {
		m, err := gatewayAPIMirror(r.Raw)
		if err != nil {
			return nil, fmt.Errorf("service.mirror[%d]: %w", i, err)
		}
		f := gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: m}
		// Routes would read it as a mirroring analysis.
		if isCanaryMirror(f, canary) {
			return nil, fmt.Errorf("service.mirror[%d]: mirrors to the canary Service %s, which Serin does during mirroring analyses only", i, canary)
		}
		out = append(out, f)
	}
	return out, nil
}

// gatewayAPIMirror converts a service.mirror item: the Gateway API's
// HTTPRequestMirrorFilter, as Flagger's Gateway API router takes it, or
// Istio's HTTPMirrorPolicy, as its Istio router does. Their required
// fields, backendRef and destination, tell them apart.
func gatewayAPIMirror(raw []byte) (*gatewayv1.HTTPRequestMirrorFilter, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	_, gateway := fields["backendRef"]
	_, istio := fields["destination"]
	switch {
	case gateway && !istio:
		m := &gatewayv1.HTTPRequestMirrorFilter{}
		// As protojson does for the Istio shape, a typo fails loudly.
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(m); err != nil {
			return nil, fmt.Errorf("HTTPRequestMirrorFilter: %w", err)
		}
		return m, nil
	case istio && !gateway:
		p := &istionetworking.HTTPMirrorPolicy{}
		if err := protojson.Unmarshal(raw, p); err != nil {
			return nil, fmt.Errorf("HTTPMirrorPolicy: %w", err)
		}
		return gatewayAPIIstioMirror(p)
	}
	return nil, errors.New("neither a Gateway API HTTPRequestMirrorFilter (backendRef) nor an Istio HTTPMirrorPolicy (destination)")
}

// gatewayAPIIstioMirror converts an Istio mirror policy to a Service of the
// cluster.
func gatewayAPIIstioMirror(p *istionetworking.HTTPMirrorPolicy) (*gatewayv1.HTTPRequestMirrorFilter, error) {
	d := p.GetDestination()
	if d.GetSubset() != "" {
		return nil, fmt.Errorf("destination.subset: the Gateway API mirrors to a Service, not to a subset")
	}
	if d.GetPort().GetNumber() == 0 {
		return nil, fmt.Errorf("destination.port.number: the Gateway API needs the Service port")
	}
	// Istio's short names: name, name.namespace, name.namespace.svc[.<cluster domain>].
	parts := strings.Split(d.GetHost(), ".")
	if slices.Contains(parts[:min(len(parts), 2)], "") || len(parts) > 2 && parts[2] != "svc" {
		return nil, fmt.Errorf("destination.host %q is not a Service of the cluster (name, name.namespace or name.namespace.svc.cluster.local)", d.GetHost())
	}
	m := &gatewayv1.HTTPRequestMirrorFilter{BackendRef: gatewayv1.BackendObjectReference{
		Name: gatewayv1.ObjectName(parts[0]),
		Port: new(gatewayv1.PortNumber(d.GetPort().GetNumber())),
	}}
	if len(parts) > 1 {
		m.BackendRef.Namespace = new(gatewayv1.Namespace(parts[1]))
	}
	if pct := p.GetPercentage(); pct != nil {
		v := pct.GetValue()
		switch {
		case v < 0 || v > 100:
			return nil, fmt.Errorf("percentage.value %v is not between 0 and 100", v)
		case v == math.Trunc(v):
			m.Percent = new(int32(v))
		default:
			// Percent is whole: a fraction keeps four decimals.
			m.Fraction = &gatewayv1.Fraction{Numerator: int32(math.Round(v * 10000)), Denominator: new(int32(1000000))}
		}
	}
	return m, nil
}

// gatewayAPIABRules are the A/B rules, one per analysis.match rule, each
// sending the requests it matches within the base matches to the canary.
func gatewayAPIABRules(match []apiextensionsv1.JSON, base []gatewayv1.HTTPRouteMatch, rb gatewayAPIRuleBase, b gatewayAPIBackends) ([]gatewayv1.HTTPRouteRule, error) {
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
		var matches []gatewayv1.HTTPRouteMatch
		for _, bm := range base {
			matches = append(matches, mergeGatewayAPIMatch(bm, am))
		}
		rules = append(rules, rb.rule(matches, b.ref(b.names.Primary, new(int32(0))), b.ref(b.names.Canary, new(int32(100)))))
	}
	return rules, nil
}

// gatewayAPIAffinityRule is a session affinity rule, which keeps sending
// the clients that got the release's cookie of name cookieName to backend.
func gatewayAPIAffinityRule(cookieName, release string, base []gatewayv1.HTTPRouteMatch, rb gatewayAPIRuleBase, backend gatewayv1.HTTPBackendRef) gatewayv1.HTTPRouteRule {
	header := gatewayv1.HTTPHeaderMatch{
		Type:  new(gatewayv1.HeaderMatchRegularExpression),
		Name:  "Cookie",
		Value: "^(.*?;)?(" + regexp.QuoteMeta(cookieName+"="+release) + ")(;.*)?$",
	}
	var matches []gatewayv1.HTTPRouteMatch
	for _, bm := range base {
		m := *bm.DeepCopy()
		m.Headers = append(m.Headers, header)
		matches = append(matches, m)
	}
	return rb.rule(matches, backend)
}

// gatewayAPISetCookie is the backend filter that adds the Set-Cookie
// header value to the backend's responses.
func gatewayAPISetCookie(value string) gatewayv1.HTTPRouteFilter {
	return gatewayv1.HTTPRouteFilter{
		Type:                   gatewayv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: value}}},
	}
}

// gatewayAPIFilterKey names a filter in gatewayAPIDefaultRuleAnnotation by
// what the server does not default: a mirror by its backend, any other by
// its type, of which a rule has one.
func gatewayAPIFilterKey(f gatewayv1.HTTPRouteFilter) string {
	if f.Type != gatewayv1.HTTPRouteFilterRequestMirror || f.RequestMirror == nil {
		return string(f.Type)
	}
	b := f.RequestMirror.BackendRef
	var ns string
	if b.Namespace != nil {
		ns = string(*b.Namespace)
	}
	var port gatewayv1.PortNumber
	if b.Port != nil {
		port = *b.Port
	}
	return fmt.Sprintf("%s=%s/%s:%d", f.Type, ns, b.Name, port)
}

// gatewayAPIOwnKeys are the keys of the filters and timeouts Serin sets on
// the default rule.
func gatewayAPIOwnKeys(def gatewayv1.HTTPRouteRule) []string {
	var keys []string
	for _, f := range def.Filters {
		keys = append(keys, gatewayAPIFilterKey(f))
	}
	if def.Timeouts != nil && def.Timeouts.Request != nil {
		keys = append(keys, gatewayAPIRequestTimeout)
	}
	if def.Timeouts != nil && def.Timeouts.BackendRequest != nil {
		keys = append(keys, gatewayAPIBackendRequestTimeout)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// gatewayAPIKeepForeign carries the filters and timeouts others added to
// the live default rule over to def: the rules list is atomic, so Serin's
// apply would otherwise remove them. What Serin sets (own: its keys now and
// before) is not carried over but set anew, so what the Canary no longer
// asks for goes; a foreign filter of a type Serin sets gives way, as a rule
// has one of each. Serin's mirror to the canary is set anew too.
func gatewayAPIKeepForeign(def, liveDefault *gatewayv1.HTTPRouteRule, own []string, canary string) {
	if liveDefault == nil {
		return
	}
	for _, f := range liveDefault.Filters {
		if !isCanaryMirror(f, canary) && !slices.Contains(own, gatewayAPIFilterKey(f)) {
			def.Filters = append(def.Filters, f)
		}
	}
	if lt := liveDefault.Timeouts; lt != nil {
		var ours gatewayv1.HTTPRouteTimeouts
		if def.Timeouts != nil {
			ours = *def.Timeouts
		}
		merged := lt.DeepCopy()
		if slices.Contains(own, gatewayAPIRequestTimeout) {
			merged.Request = ours.Request
		}
		if slices.Contains(own, gatewayAPIBackendRequestTimeout) {
			merged.BackendRequest = ours.BackendRequest
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

// isSessionAffinityRule reports whether rule is a session affinity rule: it
// sends everything to one Service (an A/B rule has both, the primary at 0)
// and all its matches test the Cookie header with a regular expression.
func isSessionAffinityRule(rule gatewayv1.HTTPRouteRule) bool {
	if len(rule.Matches) == 0 || len(rule.BackendRefs) != 1 {
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

// gatewayAPIConvert copies in into out through their JSON form, e.g. a typed
// object into its apply configuration.
func gatewayAPIConvert(in, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	istionetworking "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/naming"
)

// IstioRouter routes with Istio, as Flagger does: a VirtualService <apex>
// splits traffic between the <apex>-primary and <apex>-canary Services, and
// a DestinationRule per Service carries service.trafficPolicy.
type IstioRouter struct {
	Reader       client.Reader
	Client       client.Client
	FieldManager string
}

const (
	// Route names tell Routes which generated HTTP route is which; the
	// default route is always the last one.
	istioMatchRoutePrefix = "canary-match-"
	// Weighted match routes carry the split of a canary release with
	// analysis.match: only the requests that match are split.
	istioWeightedMatchPrefix = "canary-weighted-match-"
	istioAffinityRoute       = "canary-affinity"
	istioPrimaryAffinity     = "primary-affinity"
	istioDefaultRoute        = "default"

	// istioMeshGateway is Istio's name for the sidecars of the mesh.
	istioMeshGateway = "mesh"
)

// SetRoutes applies the two DestinationRules, then the VirtualService, so
// the routes never point at hosts without their policy.
// It reports the split of the VirtualService as its apply left it.
func (ir *IstioRouter) SetRoutes(ctx context.Context, r Route, t analysis.Traffic) (analysis.Traffic, error) {
	drs, err := istioDestinationRules(r)
	if err != nil {
		return analysis.Traffic{}, err
	}
	vs, err := istioVirtualService(r, t)
	if err != nil {
		return analysis.Traffic{}, err
	}
	// Every object is read, and refused if the Canary may not write it,
	// before any is written: a VirtualService that is someone else's
	// stops the DestinationRules from being applied too.
	a := ir.applier()
	desired := []client.Object{drs[0], drs[1], vs}
	stored := &istiov1.VirtualService{}
	lives := []client.Object{&istiov1.DestinationRule{}, &istiov1.DestinationRule{}, stored}
	exists := make([]bool, len(desired))
	for i, obj := range desired {
		if exists[i], err = a.Read(ctx, istioRef(r.Canary, obj), lives[i]); err != nil {
			return analysis.Traffic{}, err
		}
	}
	for i, obj := range desired {
		if err := istioApply(ctx, a, r.Canary, obj, lives[i], exists[i]); err != nil {
			return analysis.Traffic{}, err
		}
	}
	return istioTraffic(stored, naming.ServicesOf(r.Canary))
}

func (ir *IstioRouter) applier() *apply.Applier {
	return &apply.Applier{Reader: ir.Reader, Client: ir.Client, FieldManager: ir.FieldManager}
}

// istioRef names a generated Istio object.
func istioRef(c *serinv1.Canary, obj client.Object) apply.Ref {
	return apply.Ref{Kind: obj.GetObjectKind().GroupVersionKind().Kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), Owner: c}
}

// Routes reads the weights from the default (last) route of the
// VirtualService, the mirror from the same route and A/B testing from the
// presence of match routes above it.
func (ir *IstioRouter) Routes(ctx context.Context, r Route) (analysis.Traffic, error) {
	names := naming.ServicesOf(r.Canary)
	var vs istiov1.VirtualService
	if err := ir.Reader.Get(ctx, client.ObjectKey{Namespace: r.Canary.Namespace, Name: names.Apex}, &vs); err != nil {
		return analysis.Traffic{}, fmt.Errorf("reading VirtualService %s: %w", names.Apex, err)
	}
	return istioTraffic(&vs, names)
}

func istioTraffic(vs *istiov1.VirtualService, names naming.Services) (analysis.Traffic, error) {
	var t analysis.Traffic
	if tcp := vs.Spec.GetTcp(); len(tcp) > 0 {
		for _, d := range tcp[len(tcp)-1].GetRoute() {
			if d.GetDestination().GetHost() == names.Canary {
				t.CanaryWeight = int(d.GetWeight())
			}
		}
		return t, nil
	}
	routes := vs.Spec.GetHttp()
	if len(routes) == 0 {
		return t, fmt.Errorf("VirtualService %s has no routes", names.Apex)
	}
	def := routes[len(routes)-1]
	// The split is on the weighted match routes when there are any.
	split := def
	for _, route := range routes {
		if strings.HasPrefix(route.GetName(), istioWeightedMatchPrefix) {
			split = route
			break
		}
	}
	for _, d := range split.GetRoute() {
		if d.GetDestination().GetHost() == names.Canary {
			t.CanaryWeight = int(d.GetWeight())
		}
	}
	if def.GetMirror().GetHost() == names.Canary {
		t.Mirror, t.MirrorWeight = true, int(def.GetMirrorPercentage().GetValue())
	}
	for _, m := range def.GetMirrors() {
		if m.GetDestination().GetHost() == names.Canary {
			t.Mirror, t.MirrorWeight = true, int(m.GetPercentage().GetValue())
		}
	}
	for _, route := range routes[:len(routes)-1] {
		if strings.HasPrefix(route.GetName(), istioMatchRoutePrefix) {
			t.MatchToCanary = true
		}
	}
	return t, nil
}

// Revert deletes the VirtualService and the DestinationRules the Canary
// controls. Without the Istio CRDs none of them can exist, so that is not an
// error either: it would keep the Canary's finalizer forever once Istio is
// uninstalled.
func (ir *IstioRouter) Revert(ctx context.Context, r Route) error {
	names := naming.ServicesOf(r.Canary)
	key := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: r.Canary.Namespace, Name: name}
	}
	objs := []client.Object{
		&istiov1.VirtualService{ObjectMeta: key(names.Apex)},
		&istiov1.DestinationRule{ObjectMeta: key(names.Primary)},
		&istiov1.DestinationRule{ObjectMeta: key(names.Canary)},
	}
	a := ir.applier()
	for _, obj := range objs {
		if err := a.Delete(ctx, r.Canary, obj); err != nil {
			return err
		}
	}
	return nil
}

// istioVirtualService builds the VirtualService <apex> for t.
func istioVirtualService(r Route, t analysis.Traffic) (*istiov1.VirtualService, error) {
	c := r.Canary
	s := c.Spec.Service
	names := naming.ServicesOf(c)
	primaryWeight, canaryWeight := Split(t)
	vs := &istiov1.VirtualService{
		TypeMeta:   metav1.TypeMeta{APIVersion: istiov1.SchemeGroupVersion.String(), Kind: "VirtualService"},
		ObjectMeta: istioObjectMeta(c, names.Apex, s.Apex),
	}
	// A delegate VirtualService has neither hosts nor gateways: the root
	// VirtualService that delegates to it has them.
	if !s.Delegation {
		vs.Spec.Hosts = istioHosts(names.Apex, s.Hosts)
		vs.Spec.Gateways = istioGateways(s.Gateways)
	}

	if s.AppProtocol == "tcp" {
		if t.MatchToCanary || t.Mirror || c.Spec.Analysis.SessionAffinity != nil {
			return nil, fmt.Errorf("VirtualService %s: tcp routes carry weights only, not match, mirror or sessionAffinity", names.Apex)
		}
		vs.Spec.Tcp = []*istionetworking.TCPRoute{{Route: []*istionetworking.RouteDestination{
			{Destination: istioDestination(names.Primary, s.Port), Weight: primaryWeight},
			{Destination: istioDestination(names.Canary, s.Port), Weight: canaryWeight},
		}}}
		return vs, nil
	}

	base, err := istioBaseRoute(s)
	if err != nil {
		return nil, fmt.Errorf("VirtualService %s: %w", names.Apex, err)
	}
	serviceMatch, err := ParseMatches(s.Match)
	if err != nil {
		return nil, fmt.Errorf("VirtualService %s: service.%w", names.Apex, err)
	}
	route := func(name string, match []*istionetworking.HTTPMatchRequest, primary, canary int32) *istionetworking.HTTPRoute {
		h := proto.Clone(base).(*istionetworking.HTTPRoute)
		h.Name, h.Match = name, match
		h.Route = []*istionetworking.HTTPRouteDestination{
			{Destination: istioDestination(names.Primary, s.Port), Weight: primary},
			{Destination: istioDestination(names.Canary, s.Port), Weight: canary},
		}
		return h
	}

	analysisMatch, err := ParseMatches(c.Spec.Analysis.Match)
	if err != nil {
		return nil, fmt.Errorf("VirtualService %s: analysis.%w", names.Apex, err)
	}
	var routes []*istionetworking.HTTPRoute
	def := route(istioDefaultRoute, serviceMatch, primaryWeight, canaryWeight)
	// weighted are the routes that carry the split.
	weighted := []*istionetworking.HTTPRoute{def}
	switch {
	case t.MatchToCanary:
		if len(analysisMatch) == 0 {
			return nil, fmt.Errorf("VirtualService %s: A/B testing needs analysis.match", names.Apex)
		}
		for i, m := range analysisMatch {
			routes = append(routes, route(istioMatchRoutePrefix+strconv.Itoa(i), istioMergeMatch(m, serviceMatch), 0, 100))
		}
	case len(analysisMatch) > 0 && c.Spec.Analysis.Iterations == 0:
		// As in Flagger, analysis.match with stepWeight splits only the
		// matching requests; the others stay on the primary.
		weighted = nil
		for i, m := range analysisMatch {
			weighted = append(weighted, route(istioWeightedMatchPrefix+strconv.Itoa(i), istioMergeMatch(m, serviceMatch), primaryWeight, canaryWeight))
		}
		def = route(istioDefaultRoute, serviceMatch, 100, 0)
	}
	if sa := c.Spec.Analysis.SessionAffinity; sa != nil && canaryWeight > 0 && canaryWeight < 100 {
		// The cookies name the release, so they stop matching once the
		// next release (or none) is analysed.
		if c.Status.LastAppliedSpec == "" {
			return nil, fmt.Errorf("VirtualService %s: sessionAffinity needs status.lastAppliedSpec", names.Apex)
		}
		sticky := func(name, cookieName string, primary, canary int32) {
			cookie := cookieName + "=" + c.Status.LastAppliedSpec
			// Istio wants lower-case header names in matches.
			m := &istionetworking.HTTPMatchRequest{Headers: map[string]*istionetworking.StringMatch{
				"cookie": {MatchType: &istionetworking.StringMatch_Regex{Regex: "^(.*?;)?(" + regexp.QuoteMeta(cookie) + ")(;.*)?$"}},
			}}
			routes = append(routes, route(name, istioMergeMatch(m, serviceMatch), primary, canary))
		}
		sticky(istioAffinityRoute, sa.CookieName, 0, 100)
		if sa.PrimaryCookieName != "" {
			sticky(istioPrimaryAffinity, sa.PrimaryCookieName, 100, 0)
		}
		for _, w := range weighted {
			w.Route[1].Headers = istioSetCookie(setCookie(sa, sa.CookieName, c.Status.LastAppliedSpec))
			if sa.PrimaryCookieName != "" {
				w.Route[0].Headers = istioSetCookie(setCookie(sa, sa.PrimaryCookieName, c.Status.LastAppliedSpec))
			}
		}
	}
	if t.Mirror {
		mirror := &istionetworking.Destination{Host: names.Canary}
		var pct *istionetworking.Percent
		if t.MirrorWeight > 0 {
			pct = &istionetworking.Percent{Value: float64(t.MirrorWeight)}
		}
		// Istio accepts mirror or mirrors, not both: with service.mirror
		// set, the canary joins that list.
		if len(def.Mirrors) > 0 {
			def.Mirrors = append(def.Mirrors, &istionetworking.HTTPMirrorPolicy{Destination: mirror, Percentage: pct})
		} else {
			def.Mirror, def.MirrorPercentage = mirror, pct
		}
	}
	if len(weighted) > 0 && weighted[0] != def {
		routes = append(routes, weighted...)
	}
	vs.Spec.Http = append(routes, def)
	return vs, nil
}

// istioBaseRoute holds what every generated HTTP route shares: retries,
// timeout, headers, corsPolicy, rewrite and the user's mirrors.
func istioBaseRoute(s serinv1.CanaryService) (*istionetworking.HTTPRoute, error) {
	h := &istionetworking.HTTPRoute{}
	if s.Retries != nil {
		h.Retries = &istionetworking.HTTPRetry{}
		if err := istioUnmarshal("service.retries", s.Retries, h.Retries); err != nil {
			return nil, err
		}
	}
	if s.Headers != nil {
		h.Headers = &istionetworking.Headers{}
		if err := istioUnmarshal("service.headers", s.Headers, h.Headers); err != nil {
			return nil, err
		}
	}
	if s.CorsPolicy != nil {
		h.CorsPolicy = &istionetworking.CorsPolicy{}
		if err := istioUnmarshal("service.corsPolicy", s.CorsPolicy, h.CorsPolicy); err != nil {
			return nil, err
		}
	}
	for i := range s.Mirror {
		m, err := istioMirror(fmt.Sprintf("service.mirror[%d]", i), &s.Mirror[i])
		if err != nil {
			return nil, err
		}
		h.Mirrors = append(h.Mirrors, m)
	}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil {
			return nil, fmt.Errorf("service.timeout: %w", err)
		}
		h.Timeout = durationpb.New(d)
	}
	if rw := s.Rewrite; rw != nil && (rw.URI != "" || rw.Authority != "") {
		h.Rewrite = &istionetworking.HTTPRewrite{Uri: rw.URI, Authority: rw.Authority}
	}
	return h, nil
}

// istioDestinationRules builds the DestinationRules of the primary and the
// canary Service.
func istioDestinationRules(r Route) ([]*istiov1.DestinationRule, error) {
	c := r.Canary
	names := naming.ServicesOf(c)
	var policy *istionetworking.TrafficPolicy
	if tp := c.Spec.Service.TrafficPolicy; tp != nil {
		policy = &istionetworking.TrafficPolicy{}
		if err := istioUnmarshal("service.trafficPolicy", tp, policy); err != nil {
			return nil, fmt.Errorf("DestinationRules of %s: %w", names.Apex, err)
		}
	}
	var drs []*istiov1.DestinationRule
	for _, host := range []string{names.Primary, names.Canary} {
		dr := &istiov1.DestinationRule{
			TypeMeta:   metav1.TypeMeta{APIVersion: istiov1.SchemeGroupVersion.String(), Kind: "DestinationRule"},
			ObjectMeta: istioObjectMeta(c, host, nil),
		}
		dr.Spec.Host = host
		if policy != nil {
			dr.Spec.TrafficPolicy = proto.Clone(policy).(*istionetworking.TrafficPolicy)
		}
		drs = append(drs, dr)
	}
	return drs, nil
}

// istioUnmarshal decodes an Istio-shaped field of the Canary. Like
// ParseMatches it refuses unknown fields, so a typo fails loudly instead of
// being pruned by the apiserver.
func istioUnmarshal(field string, raw *apiextensionsv1.JSON, m proto.Message) error {
	data, err := durationsInSeconds(raw.Raw)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if err := protojson.Unmarshal(data, m); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

// istioDurationFields are the duration fields of the Istio types a Canary
// embeds (retries, corsPolicy, trafficPolicy, mirrors).
var istioDurationFields = []string{
	"maxAge", "perTryTimeout", "timeout", "idleTimeout", "connectTimeout", "maxConnectionDuration",
	"baseEjectionTime", "interval", "time", "warmupDurationSecs", "ttl",
}

// durationsInSeconds rewrites the Go durations of Flagger's manifests
// (corsPolicy.maxAge: 24h, perTryTimeout: 1m) in the form protojson reads,
// seconds only (86400s, 60s); Istio takes both. Header maps are left alone:
// a header's value is no duration, whatever its name.
func durationsInSeconds(raw []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, child := range t {
				if s, ok := child.(string); ok && slices.Contains(istioDurationFields, k) {
					if d, err := time.ParseDuration(s); err == nil {
						t[k] = strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
					}
					continue
				}
				if k != "headers" && k != "request" && k != "response" {
					walk(child)
				}
			}
		case []any:
			for _, child := range t {
				walk(child)
			}
		}
	}
	walk(v)
	return json.Marshal(v)
}

// istioMirror reads one service.mirror item: an Istio HTTPMirrorPolicy, or
// Flagger's shape, a Gateway API HTTPRequestMirrorFilter, whose Service
// backendRef becomes the mirror's destination host.
func istioMirror(field string, raw *apiextensionsv1.JSON) (*istionetworking.HTTPMirrorPolicy, error) {
	var shape struct {
		BackendRef *json.RawMessage `json:"backendRef"`
	}
	if err := json.Unmarshal(raw.Raw, &shape); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	if shape.BackendRef == nil {
		m := &istionetworking.HTTPMirrorPolicy{}
		return m, istioUnmarshal(field, raw, m)
	}
	var f gatewayv1.HTTPRequestMirrorFilter
	dec := json.NewDecoder(bytes.NewReader(raw.Raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	ref := f.BackendRef
	if ptr.Deref(ref.Group, "") != "" || ptr.Deref(ref.Kind, "Service") != "Service" {
		return nil, fmt.Errorf("%s.backendRef: Istio mirrors to Services only, not %s %s", field, ptr.Deref(ref.Kind, ""), ref.Name)
	}
	host := string(ref.Name)
	if ref.Namespace != nil && *ref.Namespace != "" {
		host += "." + string(*ref.Namespace)
	}
	m := &istionetworking.HTTPMirrorPolicy{Destination: &istionetworking.Destination{Host: host}}
	if ref.Port != nil {
		m.Destination.Port = &istionetworking.PortSelector{Number: uint32(*ref.Port)}
	}
	switch {
	case f.Percent != nil:
		m.Percentage = &istionetworking.Percent{Value: float64(*f.Percent)}
	case f.Fraction != nil:
		denominator := float64(ptr.Deref(f.Fraction.Denominator, 100))
		if denominator <= 0 {
			return nil, fmt.Errorf("%s.fraction: the denominator must be positive", field)
		}
		m.Percentage = &istionetworking.Percent{Value: float64(f.Fraction.Numerator) * 100 / denominator}
	}
	return m, nil
}

func istioDestination(host string, port int32) *istionetworking.Destination {
	return &istionetworking.Destination{Host: host, Port: &istionetworking.PortSelector{Number: uint32(port)}}
}

// istioSetCookie adds a Set-Cookie header to the responses of a
// destination.
func istioSetCookie(value string) *istionetworking.Headers {
	return &istionetworking.Headers{Response: &istionetworking.Headers_HeaderOperations{
		Add: map[string]string{"Set-Cookie": value},
	}}
}

// istioHosts routes the apex Service's in-mesh name and service.hosts.
func istioHosts(apex string, hosts []string) []string {
	out := []string{apex}
	for _, h := range hosts {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// istioGateways keeps Flagger's behaviour: without gateways the
// VirtualService is bound to the mesh; the gateways it names are taken as
// they are, so in-cluster callers are routed by it only if they include
// "mesh".
func istioGateways(gateways []string) []string {
	if len(gateways) == 0 {
		return []string{istioMeshGateway}
	}
	return slices.Clone(gateways)
}

// istioMergeMatch narrows every service.match rule with m, so an A/B or
// cookie route only catches requests that the default route would catch.
// m's fields win where both set one.
func istioMergeMatch(m *istionetworking.HTTPMatchRequest, serviceMatch []*istionetworking.HTTPMatchRequest) []*istionetworking.HTTPMatchRequest {
	if len(serviceMatch) == 0 {
		return []*istionetworking.HTTPMatchRequest{m}
	}
	out := make([]*istionetworking.HTTPMatchRequest, 0, len(serviceMatch))
	for _, s := range serviceMatch {
		merged := proto.Clone(s).(*istionetworking.HTTPMatchRequest)
		proto.Merge(merged, m)
		out = append(out, merged)
	}
	return out
}

// istioObjectMeta names a generated object, owned by the Canary so that
// deleting the Canary deletes it.
func istioObjectMeta(c *serinv1.Canary, name string, custom *serinv1.CustomMetadata) metav1.ObjectMeta {
	om := metav1.ObjectMeta{
		Namespace:       c.Namespace,
		Name:            name,
		OwnerReferences: []metav1.OwnerReference{apply.ControllerRef(c)},
	}
	om.Labels, om.Annotations = c.Spec.Service.ManagedMetadata(custom)
	return om
}

// istioApply applies desired unless live (read by apply.Applier.Read;
// exists says whether there was one) shows that it already carries
// everything desired sets. live is left holding the object as the server
// stores it.
func istioApply(ctx context.Context, a *apply.Applier, c *serinv1.Canary, desired, live client.Object, exists bool) error {
	ref := istioRef(c, desired)
	u, err := apply.JSONBody(desired)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", ref, err)
	}
	hash, err := apply.Hash(u.Object)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", ref, err)
	}
	_, err = apply.Apply(ctx, a, apply.Write[client.Object]{
		Ref:  ref,
		Hash: hash,
		UpToDate: func(live client.Object) (bool, error) {
			upToDate, err := istioUpToDate(live, u)
			if err != nil {
				return false, fmt.Errorf("encoding %s: %w", ref, err)
			}
			return upToDate, nil
		},
		Desired: func() (*unstructured.Unstructured, error) { return u, nil },
		Decode:  true,
	}, live, exists)
	return err
}

// istioUpToDate is true when live has the labels, annotations and
// controller reference of desired and the same spec; apply.Apply checks the
// hash. Comparing the spec too catches someone else editing Serin's routes
// without touching the hash.
func istioUpToDate(live client.Object, desired *unstructured.Unstructured) (bool, error) {
	if !istioSubset(desired.GetLabels(), live.GetLabels()) || !istioSubset(desired.GetAnnotations(), live.GetAnnotations()) {
		return false, nil
	}
	for _, want := range desired.GetOwnerReferences() {
		if !slices.ContainsFunc(live.GetOwnerReferences(), func(ref metav1.OwnerReference) bool {
			return ref.UID == want.UID && ptr.Deref(ref.Controller, false)
		}) {
			return false, nil
		}
	}
	// Istio's specs are protobuf messages that only their own MarshalJSON
	// encodes correctly.
	l, err := apply.JSONBody(live)
	if err != nil {
		return false, err
	}
	return reflect.DeepEqual(l.Object["spec"], desired.Object["spec"]), nil
}

func istioSubset(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

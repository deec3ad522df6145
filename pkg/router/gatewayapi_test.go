package router

import (
	"path/filepath"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	contourv1 "github.com/projectcontour/contour/apis/projectcontour/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

const gcTestFieldManager = "serin"

// gcTestClient returns a client for the Serin, core, Gateway API and
// Contour kinds.
func gcTestClient(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, f := range []func(*runtime.Scheme) error{serinv1.AddToScheme, corev1.AddToScheme, gatewayv1.Install, contourv1.AddToScheme} {
		if err := f(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// gcTestCanary creates a namespace and a Canary "podinfo" in it, with
// status.lastAppliedSpec set, and returns the live Canary.
func gcTestCanary(t *testing.T, c client.Client, ns string, mutate func(*serinv1.Canary)) *serinv1.Canary {
	t.Helper()
	ctx := t.Context()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	canary := &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo"},
		Spec: serinv1.CanarySpec{
			TargetRef: serinv1.TargetReference{Name: "podinfo"},
			Service: serinv1.CanaryService{
				Port:    9898,
				Hosts:   []string{"app.example.com"},
				Timeout: "1.5s",
			},
			Analysis: serinv1.CanaryAnalysis{
				Interval:   "30s",
				StepWeight: 10,
				Match: []apiextensionsv1.JSON{
					{Raw: []byte(`{"headers":{"x-canary":{"exact":"insider"},"user-agent":{"regex":".*Firefox.*"}}}`)},
					{Raw: []byte(`{"queryParams":{"canary":{"exact":"true"}}}`)},
				},
			},
		},
	}
	if mutate != nil {
		mutate(canary)
	}
	if err := c.Create(ctx, canary); err != nil {
		t.Fatal(err)
	}
	canary.Status.LastAppliedSpec = "rev1"
	if err := c.Status().Update(ctx, canary); err != nil {
		t.Fatal(err)
	}
	return canary
}

// gcTestCRDDir returns a CRD path inside a required module.
func gcTestCRDDir(t *testing.T, module string, elem ...string) string {
	t.Helper()
	dir, err := testenv.ModuleDir(module)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(append([]string{dir}, elem...)...)
}

// TestGatewayAPIRouter runs the router against a real kube-apiserver with
// the standard-channel Gateway API CRDs (RequestMirror's percent is in the
// standard channel since v1.3).
func TestGatewayAPIRouter(t *testing.T) {
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{
		gcTestCRDDir(t, "sigs.k8s.io/gateway-api", "config", "crd", "standard"),
		"../../artifacts/crds",
	}})
	c := gcTestClient(t, env.Config)
	ctx := t.Context()
	canary := gcTestCanary(t, c, "gatewayapi", func(c *serinv1.Canary) {
		c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: "public", Namespace: new(gatewayv1.Namespace("gateways"))}}
		c.Spec.Service.Match = []apiextensionsv1.JSON{{Raw: []byte(`{"uri":{"prefix":"/api"}}`)}}
		c.Spec.Analysis.SessionAffinity = &serinv1.SessionAffinity{CookieName: "canary-session", MaxAge: 60}
	})
	gw := &GatewayAPIRouter{Reader: c, Client: c, FieldManager: gcTestFieldManager}
	route := Route{Canary: canary}
	key := client.ObjectKey{Namespace: canary.Namespace, Name: "podinfo"}
	get := func(t *testing.T) *gatewayv1.HTTPRoute {
		t.Helper()
		var hr gatewayv1.HTTPRoute
		if err := c.Get(ctx, key, &hr); err != nil {
			t.Fatal(err)
		}
		return &hr
	}
	weights := gatewayAPIWeights
	pathAPI := gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new("/api")}
	canaryAffinity := func(g Gomega, hr *gatewayv1.HTTPRoute, want bool) {
		def := hr.Spec.Rules[len(hr.Spec.Rules)-1]
		var filters []gatewayv1.HTTPRouteFilter
		for _, b := range def.BackendRefs {
			if b.Name == "podinfo-canary" {
				filters = b.Filters
			}
		}
		if !want {
			g.Expect(filters).To(BeEmpty())
			return
		}
		g.Expect(filters).To(HaveLen(1))
		g.Expect(filters[0].ResponseHeaderModifier.Add).To(Equal([]gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: "canary-session=rev1; Max-Age=60"}}))
		sa := hr.Spec.Rules[len(hr.Spec.Rules)-2]
		g.Expect(sa.Matches).To(HaveLen(1))
		g.Expect(sa.Matches[0].Path).To(Equal(&pathAPI))
		g.Expect(sa.Matches[0].Headers).To(Equal([]gatewayv1.HTTPHeaderMatch{{
			Type: new(gatewayv1.HeaderMatchRegularExpression), Name: "Cookie", Value: `^(.*?;)?(canary-session=rev1)(;.*)?$`,
		}}))
		g.Expect(sa.BackendRefs).To(HaveLen(1))
		g.Expect(sa.BackendRefs[0].Name).To(BeEquivalentTo("podinfo-canary"))
	}

	for _, tt := range []struct {
		name    string
		traffic analysis.Traffic
		rules   int
		check   func(g Gomega, hr *gatewayv1.HTTPRoute)
	}{
		{name: "initialisation", traffic: analysis.Traffic{}, rules: 1, check: func(g Gomega, hr *gatewayv1.HTTPRoute) {
			g.Expect(hr.Spec.ParentRefs).To(HaveLen(1))
			g.Expect(hr.Spec.ParentRefs[0].Name).To(BeEquivalentTo("public"))
			g.Expect(*hr.Spec.ParentRefs[0].Namespace).To(BeEquivalentTo("gateways"))
			g.Expect(hr.Spec.Hostnames).To(Equal([]gatewayv1.Hostname{"app.example.com"}))
			g.Expect(hr.OwnerReferences).To(HaveLen(1))
			g.Expect(hr.OwnerReferences[0].UID).To(Equal(canary.UID))
			g.Expect(*hr.OwnerReferences[0].Controller).To(BeTrue())
			def := hr.Spec.Rules[0]
			g.Expect(def.Matches).To(HaveLen(1))
			g.Expect(def.Matches[0].Path).To(Equal(&pathAPI))
			g.Expect(*def.Timeouts.Request).To(BeEquivalentTo("1s500ms"))
			g.Expect(def.BackendRefs[0].Port).To(Equal(new(gatewayv1.PortNumber(9898))))
			g.Expect(def.Filters).To(BeEmpty())
			canaryAffinity(g, hr, false)
		}},
		{name: "weight 10", traffic: analysis.Traffic{CanaryWeight: 10}, rules: 2, check: func(g Gomega, hr *gatewayv1.HTTPRoute) {
			canaryAffinity(g, hr, true)
		}},
		{name: "weight 50", traffic: analysis.Traffic{CanaryWeight: 50}, rules: 2, check: func(g Gomega, hr *gatewayv1.HTTPRoute) {
			canaryAffinity(g, hr, true)
		}},
		{name: "weight 100", traffic: analysis.Traffic{CanaryWeight: 100}, rules: 1, check: func(g Gomega, hr *gatewayv1.HTTPRoute) {
			canaryAffinity(g, hr, false)
		}},
		{name: "A/B", traffic: analysis.Traffic{MatchToCanary: true}, rules: 3, check: func(g Gomega, hr *gatewayv1.HTTPRoute) {
			for _, rule := range hr.Spec.Rules[:2] {
				g.Expect(weights(rule)).To(Equal(map[string]int32{"podinfo-primary": 0, "podinfo-canary": 100}))
				g.Expect(rule.Matches).To(HaveLen(1))
				g.Expect(rule.Matches[0].Path).To(Equal(&pathAPI))
				g.Expect(*rule.Timeouts.Request).To(BeEquivalentTo("1s500ms"))
			}
			g.Expect(hr.Spec.Rules[0].Matches[0].Headers).To(Equal([]gatewayv1.HTTPHeaderMatch{
				{Type: new(gatewayv1.HeaderMatchRegularExpression), Name: "user-agent", Value: ".*Firefox.*"},
				{Type: new(gatewayv1.HeaderMatchExact), Name: "x-canary", Value: "insider"},
			}))
			g.Expect(hr.Spec.Rules[1].Matches[0].QueryParams).To(Equal([]gatewayv1.HTTPQueryParamMatch{
				{Type: new(gatewayv1.QueryParamMatchExact), Name: "canary", Value: "true"},
			}))
		}},
		{name: "mirroring", traffic: analysis.Traffic{Mirror: true, MirrorWeight: 30}, rules: 1, check: func(g Gomega, hr *gatewayv1.HTTPRoute) {
			def := hr.Spec.Rules[0]
			g.Expect(def.Filters).To(HaveLen(1))
			g.Expect(def.Filters[0].Type).To(Equal(gatewayv1.HTTPRouteFilterRequestMirror))
			g.Expect(def.Filters[0].RequestMirror.BackendRef.Name).To(BeEquivalentTo("podinfo-canary"))
			g.Expect(def.Filters[0].RequestMirror.Percent).To(Equal(new(int32(30))))
		}},
		{name: "back to the primary", traffic: analysis.Traffic{}, rules: 1, check: func(g Gomega, hr *gatewayv1.HTTPRoute) {
			g.Expect(hr.Spec.Rules[0].Filters).To(BeEmpty())
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(setRoutes(ctx, gw, route, tt.traffic)).To(Succeed())
			hr := get(t)
			g.Expect(hr.Spec.Rules).To(HaveLen(tt.rules))
			p, cw := Split(tt.traffic)
			g.Expect(weights(hr.Spec.Rules[len(hr.Spec.Rules)-1])).To(Equal(map[string]int32{"podinfo-primary": p, "podinfo-canary": cw}))
			tt.check(g, hr)

			got, err := gw.Routes(ctx, route)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.traffic))

			g.Expect(setRoutes(ctx, gw, route, tt.traffic)).To(Succeed())
			g.Expect(get(t).ResourceVersion).To(Equal(hr.ResourceVersion), "a second SetRoutes wrote")
		})
	}

	t.Run("user filters survive", func(t *testing.T) {
		g := NewWithT(t)
		hr := get(t)
		def := &hr.Spec.Rules[len(hr.Spec.Rules)-1]
		userFilter := gatewayv1.HTTPRouteFilter{
			Type:                  gatewayv1.HTTPRouteFilterRequestHeaderModifier,
			RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Team", Value: "a"}}},
		}
		def.Filters = append(def.Filters, userFilter)
		def.Timeouts.BackendRequest = new(gatewayv1.Duration("1s"))
		g.Expect(c.Update(ctx, hr, client.FieldOwner("kubectl-edit"))).To(Succeed())

		for _, tr := range []analysis.Traffic{{CanaryWeight: 10}, {CanaryWeight: 50}, {Mirror: true}, {CanaryWeight: 100}, {}} {
			g.Expect(setRoutes(ctx, gw, route, tr)).To(Succeed())
			hr := get(t)
			def := hr.Spec.Rules[len(hr.Spec.Rules)-1]
			p, cw := Split(tr)
			g.Expect(weights(def)).To(Equal(map[string]int32{"podinfo-primary": p, "podinfo-canary": cw}), "%+v", tr)
			g.Expect(def.Filters).To(ContainElement(userFilter), "%+v", tr)
			g.Expect(def.Timeouts.BackendRequest).To(Equal(new(gatewayv1.Duration("1s"))), "%+v", tr)
			g.Expect(*def.Timeouts.Request).To(BeEquivalentTo("1s500ms"))
			got, err := gw.Routes(ctx, route)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tr))
		}
	})

	t.Run("drift is corrected", func(t *testing.T) {
		g := NewWithT(t)
		hr := get(t)
		hr.Spec.Rules[len(hr.Spec.Rules)-1].BackendRefs[1].Weight = new(int32(70))
		g.Expect(c.Update(ctx, hr, client.FieldOwner("kubectl-edit"))).To(Succeed())
		g.Expect(setRoutes(ctx, gw, route, analysis.Traffic{})).To(Succeed())
		got, err := gw.Routes(ctx, route)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(analysis.Traffic{}))
	})

	t.Run("revert", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(gw.Revert(ctx, route)).To(Succeed())
		err := c.Get(ctx, key, &gatewayv1.HTTPRoute{})
		g.Expect(client.IgnoreNotFound(err)).To(Succeed())
		g.Expect(err).To(HaveOccurred())
		g.Expect(gw.Revert(ctx, route)).To(Succeed(), "a second Revert")
	})

	t.Run("revert leaves an HTTPRoute of the same name that the Canary does not control", func(t *testing.T) {
		g := NewWithT(t)
		users := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		g.Expect(c.Create(ctx, users)).To(Succeed())
		g.Expect(gw.Revert(ctx, route)).To(Succeed())
		g.Expect(c.Get(ctx, key, &gatewayv1.HTTPRoute{})).To(Succeed(), "the user's HTTPRoute is still there")
		g.Expect(c.Delete(ctx, users)).To(Succeed())
	})
}

// gatewayAPIWeights maps the backends of rule to their weights.
func gatewayAPIWeights(rule gatewayv1.HTTPRouteRule) map[string]int32 {
	w := map[string]int32{}
	for _, b := range rule.BackendRefs {
		w[string(b.Name)] = *b.Weight
	}
	return w
}

// TestGatewayAPIRouterServiceFields checks, against a real kube-apiserver,
// that the HTTPRoute carries service.timeout, backendTimeout, headers,
// rewrite, corsPolicy, mirror and apex and sessionAffinity's cookie
// attributes and primary cookie, that what others add survives and that
// what the Canary drops goes.
func TestGatewayAPIRouterServiceFields(t *testing.T) {
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{
		gcTestCRDDir(t, "sigs.k8s.io/gateway-api", "config", "crd", "standard"),
		"../../artifacts/crds",
	}})
	c := gcTestClient(t, env.Config)
	ctx := t.Context()
	canary := gcTestCanary(t, c, "gatewayapi-fields", func(c *serinv1.Canary) {
		s := &c.Spec.Service
		s.GatewayRefs = []gatewayv1.ParentReference{{Name: "public"}}
		s.Timeout = "2s"
		s.BackendTimeout = "500ms"
		s.Rewrite = &serinv1.HTTPRewrite{URI: "/v2", Authority: "backend.internal"}
		s.Headers = &apiextensionsv1.JSON{Raw: []byte(`{"request":{"set":{"x-env":"canary"},"add":{"x-via":"serin"},"remove":["x-debug"]},"response":{"set":{"cache-control":"no-store"}}}`)}
		s.CorsPolicy = &apiextensionsv1.JSON{Raw: []byte(`{"allowOrigins":[{"exact":"https://app.example.com"}],"allowOrigin":["https://*.example.org"],` +
			`"allowMethods":["GET","POST"],"allowHeaders":["x-token"],"exposeHeaders":["x-request-id"],"maxAge":"60s","allowCredentials":true}`)}
		s.Mirror = []apiextensionsv1.JSON{
			{Raw: []byte(`{"backendRef":{"name":"shadow","port":8080},"percent":20}`)},
			{Raw: []byte(`{"destination":{"host":"audit.tools.svc.cluster.local","port":{"number":80}},"percentage":{"value":12.5}}`)},
		}
		s.Apex = &serinv1.CustomMetadata{
			Labels:      map[string]string{"team": "web", "owned-elsewhere": "serin"},
			Annotations: map[string]string{"note": "routed by serin"},
		}
		s.UnmanagedMetadata = &serinv1.UnmanagedMetadata{Labels: []string{"owned-elsewhere"}}
		// A cookie match of an A/B rule is not taken for session affinity.
		c.Spec.Analysis.Match = []apiextensionsv1.JSON{{Raw: []byte(`{"headers":{"cookie":{"regex":"^(.*?;)?(canary=always)(;.*)?$"}}}`)}}
		c.Spec.Analysis.SessionAffinity = &serinv1.SessionAffinity{
			CookieName: "canary-session", PrimaryCookieName: "primary-session", MaxAge: 60,
			Domain: "example.com", Path: "/", Secure: true, HttpOnly: true, SameSite: "Lax", Partitioned: true,
		}
	})
	gw := &GatewayAPIRouter{Reader: c, Client: c, FieldManager: gcTestFieldManager}
	route := Route{Canary: canary}
	key := client.ObjectKey{Namespace: canary.Namespace, Name: "podinfo"}
	get := func(t *testing.T) *gatewayv1.HTTPRoute {
		t.Helper()
		var hr gatewayv1.HTTPRoute
		if err := c.Get(ctx, key, &hr); err != nil {
			t.Fatal(err)
		}
		return &hr
	}

	// Every rule's filters, as the apiserver stores them.
	ruleFilters := []gatewayv1.HTTPRouteFilter{
		{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{
			Set:    []gatewayv1.HTTPHeader{{Name: "x-env", Value: "canary"}},
			Add:    []gatewayv1.HTTPHeader{{Name: "x-via", Value: "serin"}},
			Remove: []string{"x-debug"},
		}},
		{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{
			Set: []gatewayv1.HTTPHeader{{Name: "cache-control", Value: "no-store"}},
		}},
		{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{
			Hostname: new(gatewayv1.PreciseHostname("backend.internal")),
			Path:     &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: new("/v2")},
		}},
		{Type: gatewayv1.HTTPRouteFilterCORS, CORS: &gatewayv1.HTTPCORSFilter{
			AllowOrigins:     []gatewayv1.CORSOrigin{"https://app.example.com", "https://*.example.org"},
			AllowCredentials: new(true),
			AllowMethods:     []gatewayv1.HTTPMethodWithWildcard{"GET", "POST"},
			AllowHeaders:     []gatewayv1.HTTPHeaderName{"x-token"},
			ExposeHeaders:    []gatewayv1.HTTPHeaderName{"x-request-id"},
			MaxAge:           60,
		}},
	}
	mirror := func(name, ns string, port int32) gatewayv1.HTTPRouteFilter {
		ref := gatewayv1.BackendObjectReference{Group: new(gatewayv1.Group("")), Kind: new(gatewayv1.Kind("Service")), Name: gatewayv1.ObjectName(name), Port: new(port)}
		if ns != "" {
			ref.Namespace = new(gatewayv1.Namespace(ns))
		}
		return gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: ref}}
	}
	shadow := mirror("shadow", "", 8080)
	shadow.RequestMirror.Percent = new(int32(20))
	audit := mirror("audit", "tools", 80)
	audit.RequestMirror.Fraction = &gatewayv1.Fraction{Numerator: 125000, Denominator: new(int32(1000000))}
	userMirrors := []gatewayv1.HTTPRouteFilter{shadow, audit}
	attrs := "; Max-Age=60; Domain=example.com; Path=/; Secure; HttpOnly; SameSite=Lax; Partitioned"
	setCookie := func(value string) []gatewayv1.HTTPRouteFilter {
		return []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{
			Add: []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: value + attrs}},
		}}}
	}
	cookieMatch := func(cookie string) []gatewayv1.HTTPHeaderMatch {
		return []gatewayv1.HTTPHeaderMatch{{Type: new(gatewayv1.HeaderMatchRegularExpression), Name: "Cookie", Value: `^(.*?;)?(` + cookie + `)(;.*)?$`}}
	}
	backend := func(rule gatewayv1.HTTPRouteRule, name string) gatewayv1.HTTPBackendRef {
		for _, b := range rule.BackendRefs {
			if string(b.Name) == name {
				return b
			}
		}
		t.Fatalf("no backend %s in %+v", name, rule.BackendRefs)
		return gatewayv1.HTTPBackendRef{}
	}
	canaryMirror := mirror("podinfo-canary", "", 9898)
	canaryMirror.RequestMirror.Percent = new(int32(30))

	for _, tt := range []struct {
		name    string
		traffic analysis.Traffic
		rules   int
		// defaultFilters are the default rule's filters after ruleFilters.
		defaultFilters []gatewayv1.HTTPRouteFilter
		check          func(g Gomega, hr *gatewayv1.HTTPRoute)
	}{
		{name: "weight 10", traffic: analysis.Traffic{CanaryWeight: 10}, rules: 3, defaultFilters: userMirrors, check: func(g Gomega, hr *gatewayv1.HTTPRoute) {
			def := hr.Spec.Rules[2]
			g.Expect(backend(def, "podinfo-canary").Filters).To(Equal(setCookie("canary-session=rev1")))
			g.Expect(backend(def, "podinfo-primary").Filters).To(Equal(setCookie("primary-session=rev1")))
			for i, want := range []struct{ cookie, backend string }{{"canary-session=rev1", "podinfo-canary"}, {"primary-session=rev1", "podinfo-primary"}} {
				rule := hr.Spec.Rules[i]
				g.Expect(rule.Matches).To(HaveLen(1))
				g.Expect(rule.Matches[0].Headers).To(Equal(cookieMatch(want.cookie)))
				g.Expect(rule.BackendRefs).To(HaveLen(1))
				g.Expect(rule.BackendRefs[0].Name).To(BeEquivalentTo(want.backend))
				g.Expect(rule.BackendRefs[0].Filters).To(BeEmpty())
			}
		}},
		{name: "weight 50", traffic: analysis.Traffic{CanaryWeight: 50}, rules: 3, defaultFilters: userMirrors},
		{name: "A/B", traffic: analysis.Traffic{MatchToCanary: true}, rules: 2, defaultFilters: userMirrors, check: func(g Gomega, hr *gatewayv1.HTTPRoute) {
			ab := hr.Spec.Rules[0]
			g.Expect(gatewayAPIWeights(ab)).To(Equal(map[string]int32{"podinfo-primary": 0, "podinfo-canary": 100}))
			g.Expect(ab.Matches[0].Headers).To(Equal([]gatewayv1.HTTPHeaderMatch{{
				Type: new(gatewayv1.HeaderMatchRegularExpression), Name: "cookie", Value: `^(.*?;)?(canary=always)(;.*)?$`,
			}}))
		}},
		{name: "mirroring", traffic: analysis.Traffic{Mirror: true, MirrorWeight: 30}, rules: 1, defaultFilters: append(slices.Clone(userMirrors), canaryMirror)},
		{name: "weight 100", traffic: analysis.Traffic{CanaryWeight: 100}, rules: 1, defaultFilters: userMirrors, check: func(g Gomega, hr *gatewayv1.HTTPRoute) {
			for _, b := range hr.Spec.Rules[0].BackendRefs {
				g.Expect(b.Filters).To(BeEmpty())
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(setRoutes(ctx, gw, route, tt.traffic)).To(Succeed())
			hr := get(t)
			g.Expect(hr.Labels).To(Equal(map[string]string{"team": "web"}))
			g.Expect(hr.Annotations).To(HaveKeyWithValue("note", "routed by serin"))
			g.Expect(hr.Spec.Rules).To(HaveLen(tt.rules))
			for i, rule := range hr.Spec.Rules {
				g.Expect(rule.Timeouts).To(Equal(&gatewayv1.HTTPRouteTimeouts{Request: new(gatewayv1.Duration("2s")), BackendRequest: new(gatewayv1.Duration("500ms"))}), "rule %d", i)
				g.Expect(rule.Matches).To(HaveLen(1))
				g.Expect(rule.Matches[0].Path).To(Equal(&gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new("/")}))
				want := ruleFilters
				if i == len(hr.Spec.Rules)-1 {
					want = slices.Concat(ruleFilters, tt.defaultFilters)
				}
				g.Expect(rule.Filters).To(Equal(want), "rule %d", i)
			}
			p, cw := Split(tt.traffic)
			g.Expect(gatewayAPIWeights(hr.Spec.Rules[len(hr.Spec.Rules)-1])).To(Equal(map[string]int32{"podinfo-primary": p, "podinfo-canary": cw}))
			if tt.check != nil {
				tt.check(g, hr)
			}

			got, err := gw.Routes(ctx, route)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.traffic))

			g.Expect(setRoutes(ctx, gw, route, tt.traffic)).To(Succeed())
			g.Expect(get(t).ResourceVersion).To(Equal(hr.ResourceVersion), "a second SetRoutes wrote")
		})
	}

	// Another manager's label and mirror on the default rule.
	recorder := mirror("recorder", "", 80)
	t.Run("what others add survives", func(t *testing.T) {
		g := NewWithT(t)
		hr := get(t)
		hr.Labels["owner"] = "ops"
		def := &hr.Spec.Rules[len(hr.Spec.Rules)-1]
		def.Filters = append(def.Filters, recorder)
		g.Expect(c.Update(ctx, hr, client.FieldOwner("kubectl-edit"))).To(Succeed())

		for _, tr := range []analysis.Traffic{{CanaryWeight: 10}, {CanaryWeight: 50}, {Mirror: true}, {}} {
			g.Expect(setRoutes(ctx, gw, route, tr)).To(Succeed())
			hr := get(t)
			g.Expect(hr.Labels).To(Equal(map[string]string{"team": "web", "owner": "ops"}), "%+v", tr)
			def := hr.Spec.Rules[len(hr.Spec.Rules)-1]
			want := slices.Concat(ruleFilters, userMirrors, []gatewayv1.HTTPRouteFilter{recorder})
			if tr.Mirror {
				want = append(want, mirror("podinfo-canary", "", 9898))
			}
			g.Expect(def.Filters).To(Equal(want), "%+v", tr)
			got, err := gw.Routes(ctx, route)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tr))
		}
	})

	t.Run("a label Serin sets is put back", func(t *testing.T) {
		g := NewWithT(t)
		hr := get(t)
		delete(hr.Labels, "team")
		g.Expect(c.Update(ctx, hr, client.FieldOwner("kubectl-edit"))).To(Succeed())
		g.Expect(setRoutes(ctx, gw, route, analysis.Traffic{})).To(Succeed())
		g.Expect(get(t).Labels).To(HaveKeyWithValue("team", "web"))
	})

	t.Run("what the Canary drops goes", func(t *testing.T) {
		g := NewWithT(t)
		dropped := canary.DeepCopy()
		s := &dropped.Spec.Service
		s.BackendTimeout, s.Headers, s.CorsPolicy, s.Rewrite, s.Mirror = "", nil, nil, nil, nil
		s.Apex = nil
		g.Expect(setRoutes(ctx, gw, Route{Canary: dropped}, analysis.Traffic{CanaryWeight: 10})).To(Succeed())
		hr := get(t)
		g.Expect(hr.Labels).To(Equal(map[string]string{"owner": "ops"}))
		g.Expect(hr.Annotations).NotTo(HaveKey("note"))
		g.Expect(hr.Annotations).To(HaveKeyWithValue(gatewayAPIDefaultRuleAnnotation, gatewayAPIRequestTimeout))
		g.Expect(hr.Spec.Rules).To(HaveLen(3))
		for i, rule := range hr.Spec.Rules {
			g.Expect(rule.Timeouts).To(Equal(&gatewayv1.HTTPRouteTimeouts{Request: new(gatewayv1.Duration("2s"))}), "rule %d", i)
		}
		g.Expect(hr.Spec.Rules[0].Filters).To(BeEmpty())
		g.Expect(hr.Spec.Rules[2].Filters).To(Equal([]gatewayv1.HTTPRouteFilter{recorder}), "only the other manager's mirror is left")
	})

	t.Run("rejects", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			mutate func(s *serinv1.CanaryService)
			want   string
		}{
			{"a backend timeout over the request timeout", func(s *serinv1.CanaryService) { s.BackendTimeout = "3s" },
				"service.backendTimeout 3s exceeds service.timeout 2s"},
			{"a prefix origin", func(s *serinv1.CanaryService) {
				s.CorsPolicy = &apiextensionsv1.JSON{Raw: []byte(`{"allowOrigins":[{"prefix":"https://"}]}`)}
			}, `service.corsPolicy.allowOrigins[0]: the Gateway API has no prefix origins ("https://")`},
			{"a regex origin", func(s *serinv1.CanaryService) {
				s.CorsPolicy = &apiextensionsv1.JSON{Raw: []byte(`{"allowOrigins":[{"exact":"https://a.example.com"},{"regex":".*"}]}`)}
			}, `service.corsPolicy.allowOrigins[1]: the Gateway API has no regex origins (".*")`},
			{"a mirror of neither shape", func(s *serinv1.CanaryService) {
				s.Mirror = append(s.Mirror, apiextensionsv1.JSON{Raw: []byte(`{"host":"shadow"}`)})
			}, "service.mirror[2]: neither a Gateway API HTTPRequestMirrorFilter"},
			{"a mirror to the canary", func(s *serinv1.CanaryService) {
				s.Mirror = []apiextensionsv1.JSON{{Raw: []byte(`{"destination":{"host":"podinfo-canary","port":{"number":9898}}}`)}}
			}, "service.mirror[0]: mirrors to the canary Service podinfo-canary"},
			{"a prefix rewrite with two matches", func(s *serinv1.CanaryService) {
				s.Match = []apiextensionsv1.JSON{{Raw: []byte(`{"uri":{"prefix":"/a"}}`)}, {Raw: []byte(`{"uri":{"prefix":"/b"}}`)}}
			}, "service.rewrite: a ReplacePrefixMatch rewrite needs each rule to have one match, but rule 0 has 2"},
			{"a prefix rewrite of an exact path", func(s *serinv1.CanaryService) {
				s.Match = []apiextensionsv1.JSON{{Raw: []byte(`{"uri":{"exact":"/a"}}`)}}
			}, "service.rewrite: a ReplacePrefixMatch rewrite needs each rule to match a path prefix"},
			{"two operations on one header", func(s *serinv1.CanaryService) {
				s.Headers = &apiextensionsv1.JSON{Raw: []byte(`{"request":{"set":{"X-A":"1"},"remove":["x-a"]}}`)}
			}, "service.headers.request: header X-A has more than one operation"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				g := NewWithT(t)
				before := get(t)
				bad := canary.DeepCopy()
				tc.mutate(&bad.Spec.Service)
				_, err := gw.SetRoutes(ctx, Route{Canary: bad}, analysis.Traffic{CanaryWeight: 10})
				g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
				g.Expect(get(t).ResourceVersion).To(Equal(before.ResourceVersion))
			})
		}
	})
}

// TestGatewayAPIAndContourWithoutCRDs checks that a missing CRD surfaces as
// a no-match error, which the controller reports as a missing provider.
func TestGatewayAPIAndContourWithoutCRDs(t *testing.T) {
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{"../../artifacts/crds"}})
	c := gcTestClient(t, env.Config)
	canary := gcTestCanary(t, c, "nocrds", nil)
	for name, r := range map[string]Router{
		"gatewayapi": &GatewayAPIRouter{Reader: c, Client: c, FieldManager: gcTestFieldManager},
		"contour":    &ContourRouter{Reader: c, Client: c, FieldManager: gcTestFieldManager},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := r.SetRoutes(t.Context(), Route{Canary: canary}, analysis.Traffic{CanaryWeight: 10})
			if !meta.IsNoMatchError(err) {
				t.Fatalf("SetRoutes error %v is not a no-match error", err)
			}
		})
	}
}

package router

import (
	"testing"

	. "github.com/onsi/gomega"
	contourv1 "github.com/projectcontour/contour/apis/projectcontour/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// TestContourRouter runs the router against a real kube-apiserver with
// Contour's CRDs.
func TestContourRouter(t *testing.T) {
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{
		gcTestCRDDir(t, "github.com/projectcontour/contour", "examples", "contour", "01-crds.yaml"),
		"../../artifacts/crds",
	}})
	c := gcTestClient(t, env.Config)
	ctx := t.Context()
	canary := gcTestCanary(t, c, "contour", func(c *serinv1.Canary) {
		c.Annotations = map[string]string{ContourIngressClassAnnotation: "internal"}
		c.Spec.Service.Retries = &apiextensionsv1.JSON{Raw: []byte(`{"attempts":3,"perTryTimeout":"2s"}`)}
	})
	cr := &ContourRouter{Reader: c, Client: c, FieldManager: gcTestFieldManager, IngressClass: "public"}
	route := Route{Canary: canary}
	key := client.ObjectKey{Namespace: canary.Namespace, Name: "podinfo"}
	get := func(t *testing.T) *contourv1.HTTPProxy {
		t.Helper()
		var p contourv1.HTTPProxy
		if err := c.Get(ctx, key, &p); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	weights := func(r contourv1.Route) map[string]int64 {
		w := map[string]int64{}
		for _, s := range r.Services {
			w[s.Name] = s.Weight
		}
		return w
	}
	policies := func(g Gomega, r contourv1.Route) {
		g.Expect(r.TimeoutPolicy).To(Equal(&contourv1.TimeoutPolicy{Response: "1.5s"}))
		g.Expect(r.RetryPolicy).To(Equal(&contourv1.RetryPolicy{NumRetries: 3, PerTryTimeout: "2s"}))
	}

	for _, tt := range []struct {
		name    string
		traffic analysis.Traffic
		routes  int
		check   func(g Gomega, p *contourv1.HTTPProxy)
	}{
		{name: "initialisation", traffic: analysis.Traffic{}, routes: 1, check: func(g Gomega, p *contourv1.HTTPProxy) {
			g.Expect(p.Spec.VirtualHost).To(Equal(&contourv1.VirtualHost{Fqdn: "app.example.com"}))
			g.Expect(p.Spec.IngressClassName).To(Equal("internal"))
			g.Expect(p.OwnerReferences).To(HaveLen(1))
			g.Expect(p.OwnerReferences[0].UID).To(Equal(canary.UID))
			g.Expect(*p.OwnerReferences[0].Controller).To(BeTrue())
			g.Expect(p.Spec.Routes[0].Conditions).To(Equal([]contourv1.MatchCondition{{Prefix: "/"}}))
		}},
		{name: "weight 10", traffic: analysis.Traffic{CanaryWeight: 10}, routes: 1},
		{name: "weight 50", traffic: analysis.Traffic{CanaryWeight: 50}, routes: 1},
		{name: "weight 100", traffic: analysis.Traffic{CanaryWeight: 100}, routes: 1},
		{name: "A/B", traffic: analysis.Traffic{MatchToCanary: true}, routes: 3, check: func(g Gomega, p *contourv1.HTTPProxy) {
			for _, r := range p.Spec.Routes[:2] {
				g.Expect(weights(r)).To(Equal(map[string]int64{"podinfo-primary": 0, "podinfo-canary": 100}))
				policies(g, r)
			}
			g.Expect(p.Spec.Routes[0].Conditions).To(Equal([]contourv1.MatchCondition{
				{Prefix: "/"},
				{Header: &contourv1.HeaderMatchCondition{Name: "user-agent", Regex: ".*Firefox.*"}},
				{Header: &contourv1.HeaderMatchCondition{Name: "x-canary", Exact: "insider"}},
			}))
			g.Expect(p.Spec.Routes[1].Conditions).To(Equal([]contourv1.MatchCondition{
				{Prefix: "/"},
				{QueryParameter: &contourv1.QueryParameterMatchCondition{Name: "canary", Exact: "true"}},
			}))
		}},
		{name: "back to the primary", traffic: analysis.Traffic{}, routes: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(setRoutes(ctx, cr, route, tt.traffic)).To(Succeed())
			p := get(t)
			g.Expect(p.Spec.Routes).To(HaveLen(tt.routes))
			def := p.Spec.Routes[len(p.Spec.Routes)-1]
			pw, cw := Split(tt.traffic)
			g.Expect(weights(def)).To(Equal(map[string]int64{"podinfo-primary": int64(pw), "podinfo-canary": int64(cw)}))
			g.Expect(def.Conditions).To(Equal([]contourv1.MatchCondition{{Prefix: "/"}}))
			g.Expect(def.Services[0].Port).To(Equal(9898))
			policies(g, def)
			if tt.check != nil {
				tt.check(g, p)
			}

			got, err := cr.Routes(ctx, route)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.traffic))

			g.Expect(setRoutes(ctx, cr, route, tt.traffic)).To(Succeed())
			g.Expect(get(t).ResourceVersion).To(Equal(p.ResourceVersion), "a second SetRoutes wrote")
		})
	}

	t.Run("mirroring is refused", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(setRoutes(ctx, cr, route, analysis.Traffic{Mirror: true})).To(MatchError(ContainSubstring("does not mirror")))
	})

	t.Run("without hosts, a non-root proxy with the router's class", func(t *testing.T) {
		g := NewWithT(t)
		other := gcTestCanary(t, c, "contour-nohosts", func(c *serinv1.Canary) {
			c.Spec.Service.Hosts = nil
			c.Spec.Service.Match = []apiextensionsv1.JSON{{Raw: []byte(`{"uri":{"prefix":"/api"},"headers":{"x-env":{"prefix":"prod"}}}`)}}
		})
		r := Route{Canary: other}
		g.Expect(setRoutes(ctx, cr, r, analysis.Traffic{CanaryWeight: 20, MatchToCanary: true})).To(Succeed())
		var p contourv1.HTTPProxy
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: other.Namespace, Name: "podinfo"}, &p)).To(Succeed())
		g.Expect(p.Spec.VirtualHost).To(BeNil())
		g.Expect(p.Spec.IngressClassName).To(Equal("public"))
		g.Expect(p.Spec.Routes).To(HaveLen(3))
		g.Expect(p.Spec.Routes[2].Conditions).To(Equal([]contourv1.MatchCondition{
			{Prefix: "/api"},
			{Header: &contourv1.HeaderMatchCondition{Name: "x-env", Regex: "prod(?s:.*)"}},
		}))
		g.Expect(p.Spec.Routes[0].Conditions).To(HaveLen(4))
		got, err := cr.Routes(ctx, r)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(analysis.Traffic{CanaryWeight: 20, MatchToCanary: true}))
	})

	t.Run("Flagger's retryOn, rewrite and apex metadata", func(t *testing.T) {
		g := NewWithT(t)
		other := gcTestCanary(t, c, "contour-flagger", func(c *serinv1.Canary) {
			c.Spec.Service.Retries = &apiextensionsv1.JSON{Raw: []byte(`{"attempts":10,"perTryTimeout":"1m","retryOn":"5xx, gateway-error,reset"}`)}
			c.Spec.Service.Rewrite = &serinv1.HTTPRewrite{URI: "/v2", Authority: "backend.internal"}
			c.Spec.Service.Apex = &serinv1.CustomMetadata{Labels: map[string]string{"tier": "edge", "team": "x"}, Annotations: map[string]string{"owner": "web"}}
			c.Spec.Service.UnmanagedMetadata = &serinv1.UnmanagedMetadata{Labels: []string{"team"}}
		})
		r := Route{Canary: other}
		g.Expect(setRoutes(ctx, cr, r, analysis.Traffic{CanaryWeight: 20})).To(Succeed())
		var p contourv1.HTTPProxy
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: other.Namespace, Name: "podinfo"}, &p)).To(Succeed())
		route := p.Spec.Routes[0]
		g.Expect(route.RetryPolicy).To(Equal(&contourv1.RetryPolicy{NumRetries: 10, PerTryTimeout: "1m0s", RetryOn: []contourv1.RetryOn{"5xx", "gateway-error", "reset"}}))
		g.Expect(route.PathRewritePolicy).To(Equal(&contourv1.PathRewritePolicy{ReplacePrefix: []contourv1.ReplacePrefix{{Replacement: "/v2"}}}))
		g.Expect(route.RequestHeadersPolicy).To(Equal(&contourv1.HeadersPolicy{Set: []contourv1.HeaderValue{{Name: "Host", Value: "backend.internal"}}}))
		g.Expect(p.Labels).To(HaveKeyWithValue("tier", "edge"))
		g.Expect(p.Labels).NotTo(HaveKey("team"))
		g.Expect(p.Annotations).To(HaveKeyWithValue("owner", "web"))

		other.Spec.Service.Retries = &apiextensionsv1.JSON{Raw: []byte(`{"attempts":1,"retryOn":"5xx,sometimes"}`)}
		g.Expect(setRoutes(ctx, cr, r, analysis.Traffic{CanaryWeight: 20})).To(MatchError(ContainSubstring(`service.retries.retryOn: Contour cannot retry on "sometimes"`)))
	})

	t.Run("drift is corrected", func(t *testing.T) {
		g := NewWithT(t)
		p := get(t)
		p.Spec.Routes[0].Services[1].Weight = 70
		g.Expect(c.Update(ctx, p, client.FieldOwner("kubectl-edit"))).To(Succeed())
		g.Expect(setRoutes(ctx, cr, route, analysis.Traffic{})).To(Succeed())
		got, err := cr.Routes(ctx, route)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(analysis.Traffic{}))
	})

	t.Run("revert", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(cr.Revert(ctx, route)).To(Succeed())
		err := c.Get(ctx, key, &contourv1.HTTPProxy{})
		g.Expect(client.IgnoreNotFound(err)).To(Succeed())
		g.Expect(err).To(HaveOccurred())
		g.Expect(cr.Revert(ctx, route)).To(Succeed(), "a second Revert")
	})
}

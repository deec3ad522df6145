package router

import (
	"context"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	istionetworking "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// TestIstioRouter runs the router against a real kube-apiserver: first
// without Istio, where it must fail with a no-match error, then with Istio's
// CRDs, where every case is checked field by field twice: as built, and as
// stored by the apiserver after a server-side apply (so the real schema
// neither rejects nor prunes anything).
func TestIstioRouter(t *testing.T) {
	istioAPI, err := testenv.ModuleDir("istio.io/api")
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{"../../artifacts/crds"}})
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, serinv1.AddToScheme, istiov1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	// client.New's default mapper is lazy: it learns about the Istio CRDs
	// when they are installed, without a new client.
	kube, err := client.NewWithWatch(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	var applies atomic.Int32
	counting := interceptor.NewClient(kube, interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			applies.Add(1)
			return c.Apply(ctx, obj, opts...)
		},
	})
	ir := &IstioRouter{Reader: kube, Client: counting, FieldManager: "serin"}
	ctx := t.Context()

	if err := kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}); err != nil {
		t.Fatal(err)
	}
	canary := &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "podinfo"},
		Spec: serinv1.CanarySpec{
			TargetRef: serinv1.TargetReference{Name: "podinfo"},
			Service: serinv1.CanaryService{
				Port:          9898,
				Hosts:         []string{"app.example.com"},
				Gateways:      []string{"public/gateway"},
				Match:         []apiextensionsv1.JSON{{Raw: []byte(`{"uri":{"prefix":"/api"}}`)}},
				Timeout:       "30s",
				Retries:       &apiextensionsv1.JSON{Raw: []byte(`{"attempts":3,"perTryTimeout":"1s","retryOn":"5xx"}`)},
				Headers:       &apiextensionsv1.JSON{Raw: []byte(`{"request":{"set":{"x-serin":"on"}}}`)},
				CorsPolicy:    &apiextensionsv1.JSON{Raw: []byte(`{"allowOrigins":[{"exact":"https://example.com"}],"allowMethods":["GET"],"maxAge":"24h"}`)},
				Rewrite:       &serinv1.HTTPRewrite{URI: "/"},
				TrafficPolicy: &apiextensionsv1.JSON{Raw: []byte(`{"loadBalancer":{"simple":"LEAST_REQUEST"}}`)},
			},
			Analysis: serinv1.CanaryAnalysis{Interval: "30s", StepWeight: 10},
		},
	}
	if err := kube.Create(ctx, canary); err != nil {
		t.Fatal(err)
	}

	t.Run("without Istio", func(t *testing.T) {
		_, err := ir.SetRoutes(ctx, Route{Canary: canary}, analysis.Traffic{})
		if !meta.IsNoMatchError(err) {
			t.Fatalf("SetRoutes without the Istio CRDs = %v, want a no-match error", err)
		}
		if _, err := ir.Routes(ctx, Route{Canary: canary}); !meta.IsNoMatchError(err) {
			t.Errorf("Routes without the Istio CRDs = %v, want a no-match error", err)
		}
		if err := ir.Revert(ctx, Route{Canary: canary}); err != nil {
			t.Errorf("Revert without the Istio CRDs = %v, want nil: nothing can exist", err)
		}
	})
	if t.Failed() {
		return
	}
	start := time.Now()
	if err := env.InstallCRDs(ctx, filepath.Join(istioAPI, "kubernetes", "customresourcedefinitions.gen.yaml")); err != nil {
		t.Fatal(err)
	}
	t.Logf("Istio CRDs installed in %v", time.Since(start).Round(time.Millisecond))

	dest := func(host string, weight int32) *istionetworking.HTTPRouteDestination {
		return &istionetworking.HTTPRouteDestination{Destination: istioDestination(host, 9898), Weight: weight}
	}
	// route is the expected HTTP route with every option of the spec,
	// written out by hand rather than parsed by the code under test.
	route := func(name string, match []*istionetworking.HTTPMatchRequest, primaryWeight, canaryWeight int32) *istionetworking.HTTPRoute {
		return &istionetworking.HTTPRoute{
			Name:    name,
			Match:   match,
			Route:   []*istionetworking.HTTPRouteDestination{dest("podinfo-primary", primaryWeight), dest("podinfo-canary", canaryWeight)},
			Timeout: durationpb.New(30 * time.Second),
			Retries: &istionetworking.HTTPRetry{Attempts: 3, PerTryTimeout: durationpb.New(time.Second), RetryOn: "5xx"},
			Headers: &istionetworking.Headers{Request: &istionetworking.Headers_HeaderOperations{Set: map[string]string{"x-serin": "on"}}},
			CorsPolicy: &istionetworking.CorsPolicy{
				AllowOrigins: []*istionetworking.StringMatch{istioExact("https://example.com")},
				AllowMethods: []string{"GET"},
				MaxAge:       durationpb.New(24 * time.Hour), // Flagger's manifests write Go durations
			},
			Rewrite: &istionetworking.HTTPRewrite{Uri: "/"},
		}
	}
	apiPrefix := &istionetworking.StringMatch{MatchType: &istionetworking.StringMatch_Prefix{Prefix: "/api"}}
	serviceMatch := []*istionetworking.HTTPMatchRequest{{Uri: apiPrefix}}
	vs := func(routes ...*istionetworking.HTTPRoute) *istionetworking.VirtualService {
		return &istionetworking.VirtualService{
			Hosts:    []string{"podinfo", "app.example.com"},
			Gateways: []string{"public/gateway"},
			Http:     routes,
		}
	}
	withSetCookie := func(r *istionetworking.HTTPRoute, value string) *istionetworking.HTTPRoute {
		r.Route[1].Headers = &istionetworking.Headers{Response: &istionetworking.Headers_HeaderOperations{Add: map[string]string{"Set-Cookie": value}}}
		return r
	}
	withMirror := func(r *istionetworking.HTTPRoute, pct float64) *istionetworking.HTTPRoute {
		r.Mirror = &istionetworking.Destination{Host: "podinfo-canary"}
		r.MirrorPercentage = &istionetworking.Percent{Value: pct}
		return r
	}

	abCanary := canary.DeepCopy()
	abCanary.Spec.Analysis = serinv1.CanaryAnalysis{Interval: "30s", Iterations: 10, Match: []apiextensionsv1.JSON{
		{Raw: []byte(`{"headers":{"x-canary":{"exact":"insider"}}}`)},
		{Raw: []byte(`{"headers":{"cookie":{"regex":"^(.*?;)?(canary=always)(;.*)?$"}}}`)},
	}}
	stickyCanary := canary.DeepCopy()
	stickyCanary.Spec.Analysis.SessionAffinity = &serinv1.SessionAffinity{CookieName: "serin-canary", MaxAge: 3600}
	stickyCanary.Status.LastAppliedSpec = "5f7d9c"
	tcpCanary := canary.DeepCopy()
	tcpCanary.Spec.Service.AppProtocol = "tcp"
	matchedCanary := canary.DeepCopy()
	matchedCanary.Spec.Analysis.Match = []apiextensionsv1.JSON{{Raw: []byte(`{"headers":{"x-canary":{"exact":"insider"}}}`)}}
	stickyBoth := stickyCanary.DeepCopy()
	stickyBoth.Spec.Analysis.SessionAffinity = &serinv1.SessionAffinity{
		CookieName: "serin-canary", PrimaryCookieName: "serin-primary", MaxAge: 60,
		Domain: "example.com", Path: "/", HttpOnly: true, Secure: true, SameSite: "Lax", Partitioned: true,
	}
	withPrimaryCookie := func(r *istionetworking.HTTPRoute, value string) *istionetworking.HTTPRoute {
		r.Route[0].Headers = &istionetworking.Headers{Response: &istionetworking.Headers_HeaderOperations{Add: map[string]string{"Set-Cookie": value}}}
		return r
	}
	delegate := canary.DeepCopy()
	delegate.Spec.Service.Delegation = true
	gatewayMirror := canary.DeepCopy()
	gatewayMirror.Spec.Service.Mirror = []apiextensionsv1.JSON{
		{Raw: []byte(`{"backendRef":{"name":"shadow","namespace":"test","port":8080},"percent":10}`)},
		{Raw: []byte(`{"backendRef":{"name":"audit","port":80},"fraction":{"numerator":1,"denominator":200}}`)},
	}

	for _, tc := range []struct {
		name    string
		canary  *serinv1.Canary
		traffic analysis.Traffic
		want    *istionetworking.VirtualService
	}{{
		name:   "initialisation",
		canary: canary,
		want:   vs(route("default", serviceMatch, 100, 0)),
	}, {
		name:    "10/90",
		canary:  canary,
		traffic: analysis.Traffic{CanaryWeight: 10},
		want:    vs(route("default", serviceMatch, 90, 10)),
	}, {
		name:    "50/50",
		canary:  canary,
		traffic: analysis.Traffic{CanaryWeight: 50},
		want:    vs(route("default", serviceMatch, 50, 50)),
	}, {
		name:    "all to the canary",
		canary:  canary,
		traffic: analysis.Traffic{CanaryWeight: 100},
		want:    vs(route("default", serviceMatch, 0, 100)),
	}, {
		name:    "A/B testing",
		canary:  abCanary,
		traffic: analysis.Traffic{MatchToCanary: true},
		want: vs(
			route("canary-match-0", []*istionetworking.HTTPMatchRequest{{Uri: apiPrefix, Headers: map[string]*istionetworking.StringMatch{"x-canary": istioExact("insider")}}}, 0, 100),
			route("canary-match-1", []*istionetworking.HTTPMatchRequest{{Uri: apiPrefix, Headers: map[string]*istionetworking.StringMatch{"cookie": istioRegex("^(.*?;)?(canary=always)(;.*)?$")}}}, 0, 100),
			route("default", serviceMatch, 100, 0),
		),
	}, {
		name:    "mirroring",
		canary:  canary,
		traffic: analysis.Traffic{Mirror: true, MirrorWeight: 50},
		want:    vs(withMirror(route("default", serviceMatch, 100, 0), 50)),
	}, {
		name:    "session affinity",
		canary:  stickyCanary,
		traffic: analysis.Traffic{CanaryWeight: 20},
		want: vs(
			route("canary-affinity", []*istionetworking.HTTPMatchRequest{{Uri: apiPrefix, Headers: map[string]*istionetworking.StringMatch{"cookie": istioRegex(`^(.*?;)?(serin-canary=5f7d9c)(;.*)?$`)}}}, 0, 100),
			withSetCookie(route("default", serviceMatch, 80, 20), "serin-canary=5f7d9c; Max-Age=3600"),
		),
	}, {
		name:   "session affinity released at weight 0",
		canary: stickyCanary,
		want:   vs(route("default", serviceMatch, 100, 0)),
	}, {
		name:    "analysis.match with stepWeight splits the matching requests only",
		canary:  matchedCanary,
		traffic: analysis.Traffic{CanaryWeight: 20},
		want: vs(
			route("canary-weighted-match-0", []*istionetworking.HTTPMatchRequest{{Uri: apiPrefix, Headers: map[string]*istionetworking.StringMatch{"x-canary": istioExact("insider")}}}, 80, 20),
			route("default", serviceMatch, 100, 0),
		),
	}, {
		name:    "session affinity with a primary cookie and cookie attributes",
		canary:  stickyBoth,
		traffic: analysis.Traffic{CanaryWeight: 20},
		want: vs(
			route("canary-affinity", []*istionetworking.HTTPMatchRequest{{Uri: apiPrefix, Headers: map[string]*istionetworking.StringMatch{"cookie": istioRegex(`^(.*?;)?(serin-canary=5f7d9c)(;.*)?$`)}}}, 0, 100),
			route("primary-affinity", []*istionetworking.HTTPMatchRequest{{Uri: apiPrefix, Headers: map[string]*istionetworking.StringMatch{"cookie": istioRegex(`^(.*?;)?(serin-primary=5f7d9c)(;.*)?$`)}}}, 100, 0),
			withPrimaryCookie(withSetCookie(route("default", serviceMatch, 80, 20),
				"serin-canary=5f7d9c; Max-Age=60; Domain=example.com; Path=/; Secure; HttpOnly; SameSite=Lax; Partitioned"),
				"serin-primary=5f7d9c; Max-Age=60; Domain=example.com; Path=/; Secure; HttpOnly; SameSite=Lax; Partitioned"),
		),
	}, {
		name:    "a delegate VirtualService has no hosts and no gateways",
		canary:  delegate,
		traffic: analysis.Traffic{CanaryWeight: 10},
		want:    &istionetworking.VirtualService{Http: []*istionetworking.HTTPRoute{route("default", serviceMatch, 90, 10)}},
	}, {
		name:    "service.mirror in Flagger's Gateway API shape",
		canary:  gatewayMirror,
		traffic: analysis.Traffic{CanaryWeight: 10},
		want: vs(func() *istionetworking.HTTPRoute {
			r := route("default", serviceMatch, 90, 10)
			r.Mirrors = []*istionetworking.HTTPMirrorPolicy{
				{Destination: &istionetworking.Destination{Host: "shadow.test", Port: &istionetworking.PortSelector{Number: 8080}}, Percentage: &istionetworking.Percent{Value: 10}},
				{Destination: &istionetworking.Destination{Host: "audit", Port: &istionetworking.PortSelector{Number: 80}}, Percentage: &istionetworking.Percent{Value: 0.5}},
			}
			return r
		}()),
	}, {
		name:    "TCP",
		canary:  tcpCanary,
		traffic: analysis.Traffic{CanaryWeight: 30},
		want: &istionetworking.VirtualService{
			Hosts:    []string{"podinfo", "app.example.com"},
			Gateways: []string{"public/gateway"},
			Tcp: []*istionetworking.TCPRoute{{Route: []*istionetworking.RouteDestination{
				{Destination: istioDestination("podinfo-primary", 9898), Weight: 70},
				{Destination: istioDestination("podinfo-canary", 9898), Weight: 30},
			}}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := Route{Canary: tc.canary}
			built, err := istioVirtualService(r, tc.traffic)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, &built.Spec, protocmp.Transform()); diff != "" {
				t.Errorf("built VirtualService (-want +got):\n%s", diff)
			}

			start := time.Now()
			before := applies.Load()
			if _, err := ir.SetRoutes(ctx, r, tc.traffic); err != nil {
				t.Fatal(err)
			}
			t.Logf("SetRoutes: %v, %d applies", time.Since(start).Round(time.Millisecond), applies.Load()-before)
			live := istioLive(ctx, t, kube, tc.canary)
			if diff := cmp.Diff(tc.want, &live.vs.Spec, protocmp.Transform()); diff != "" {
				t.Errorf("stored VirtualService (-want +got):\n%s", diff)
			}
			wantPolicy := &istionetworking.TrafficPolicy{LoadBalancer: &istionetworking.LoadBalancerSettings{
				LbPolicy: &istionetworking.LoadBalancerSettings_Simple{Simple: istionetworking.LoadBalancerSettings_LEAST_REQUEST},
			}}
			for i, host := range []string{"podinfo-primary", "podinfo-canary"} {
				want := &istionetworking.DestinationRule{Host: host, TrafficPolicy: wantPolicy}
				if diff := cmp.Diff(want, &live.drs[i].Spec, protocmp.Transform()); diff != "" {
					t.Errorf("stored DestinationRule %s (-want +got):\n%s", host, diff)
				}
			}
			for _, obj := range []client.Object{live.vs, live.drs[0], live.drs[1]} {
				if refs := obj.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != canary.UID || refs[0].Controller == nil || !*refs[0].Controller {
					t.Errorf("%s owner references = %+v, want the Canary as controller", obj.GetName(), refs)
				}
				if obj.GetAnnotations()[apply.HashAnnotation] == "" {
					t.Errorf("%s has no %s annotation", obj.GetName(), apply.HashAnnotation)
				}
			}

			got, err := ir.Routes(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.traffic {
				t.Errorf("Routes = %+v, want %+v", got, tc.traffic)
			}

			// The same input again must not write anything.
			before = applies.Load()
			if _, err := ir.SetRoutes(ctx, r, tc.traffic); err != nil {
				t.Fatal(err)
			}
			if n := applies.Load() - before; n != 0 {
				t.Errorf("unchanged SetRoutes applied %d objects", n)
			}
			again := istioLive(ctx, t, kube, tc.canary)
			for i, obj := range []client.Object{live.vs, live.drs[0], live.drs[1]} {
				if now := []client.Object{again.vs, again.drs[0], again.drs[1]}[i]; now.GetResourceVersion() != obj.GetResourceVersion() {
					t.Errorf("%s resourceVersion changed from %s to %s", obj.GetName(), obj.GetResourceVersion(), now.GetResourceVersion())
				}
			}
		})
	}

	t.Run("a hand edit is undone", func(t *testing.T) {
		live := istioLive(ctx, t, kube, canary)
		patch := client.MergeFrom(live.vs.DeepCopy())
		live.vs.Spec.Hosts = []string{"podinfo"}
		if err := kube.Patch(ctx, live.vs, patch); err != nil {
			t.Fatal(err)
		}
		if _, err := ir.SetRoutes(ctx, Route{Canary: tcpCanary}, analysis.Traffic{CanaryWeight: 30}); err != nil {
			t.Fatal(err)
		}
		if got := istioLive(ctx, t, kube, canary).vs.Spec.GetHosts(); !cmp.Equal(got, []string{"podinfo", "app.example.com"}) {
			t.Errorf("hosts after SetRoutes = %v, want the hand edit undone", got)
		}
	})

	t.Run("revert", func(t *testing.T) {
		r := Route{Canary: canary}
		if err := ir.Revert(ctx, r); err != nil {
			t.Fatal(err)
		}
		for name, obj := range map[string]client.Object{
			"podinfo":         &istiov1.VirtualService{},
			"podinfo-primary": &istiov1.DestinationRule{},
			"podinfo-canary":  &istiov1.DestinationRule{},
		} {
			if err := kube.Get(ctx, client.ObjectKey{Namespace: "apps", Name: name}, obj); !apierrors.IsNotFound(err) {
				t.Errorf("after Revert, reading %s = %v, want NotFound", name, err)
			}
		}
		if err := ir.Revert(ctx, r); err != nil {
			t.Errorf("second Revert = %v, want nil", err)
		}
		if _, err := ir.Routes(ctx, r); !apierrors.IsNotFound(err) {
			t.Errorf("Routes after Revert = %v, want NotFound", err)
		}
	})
}

// TestIstioRouterRejects covers the inputs the router refuses before
// touching the cluster.
func TestIstioRouterRejects(t *testing.T) {
	base := &serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "podinfo"}}
	base.Spec.TargetRef.Name = "podinfo"
	base.Spec.Service.Port = 80
	tcp := base.DeepCopy()
	tcp.Spec.Service.AppProtocol = "tcp"
	sticky := base.DeepCopy()
	sticky.Spec.Analysis.SessionAffinity = &serinv1.SessionAffinity{CookieName: "c"}
	typo := base.DeepCopy()
	typo.Spec.Service.Retries = &apiextensionsv1.JSON{Raw: []byte(`{"atempts":3}`)}
	for name, tc := range map[string]struct {
		canary  *serinv1.Canary
		traffic analysis.Traffic
	}{
		"tcp with mirror":                    {tcp, analysis.Traffic{Mirror: true, MirrorWeight: 100}},
		"tcp with A/B":                       {tcp, analysis.Traffic{MatchToCanary: true}},
		"A/B without analysis.match":         {base, analysis.Traffic{MatchToCanary: true}},
		"session affinity without a release": {sticky, analysis.Traffic{CanaryWeight: 10}},
		"unknown field in retries":           {typo, analysis.Traffic{}},
	} {
		if _, err := istioVirtualService(Route{Canary: tc.canary}, tc.traffic); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

type istioObjects struct {
	vs  *istiov1.VirtualService
	drs [2]*istiov1.DestinationRule
}

// istioLive reads the VirtualService and the primary and canary
// DestinationRules of c.
func istioLive(ctx context.Context, t *testing.T, kube client.Client, c *serinv1.Canary) istioObjects {
	t.Helper()
	o := istioObjects{vs: &istiov1.VirtualService{}, drs: [2]*istiov1.DestinationRule{{}, {}}}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: "podinfo"}, o.vs); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"podinfo-primary", "podinfo-canary"} {
		if err := kube.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, o.drs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func istioExact(s string) *istionetworking.StringMatch {
	return &istionetworking.StringMatch{MatchType: &istionetworking.StringMatch_Exact{Exact: s}}
}

func istioRegex(s string) *istionetworking.StringMatch {
	return &istionetworking.StringMatch{MatchType: &istionetworking.StringMatch_Regex{Regex: s}}
}

// TestIstioGateways: as in Flagger, a VirtualService without gateways is
// bound to the mesh, and the gateways a Canary names are kept as they are:
// "mesh" is not added to them.
func TestIstioGateways(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{nil, []string{"mesh"}},
		{[]string{"public/gateway"}, []string{"public/gateway"}},
		{[]string{"public/gateway", "mesh"}, []string{"public/gateway", "mesh"}},
	} {
		if got := istioGateways(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("istioGateways(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

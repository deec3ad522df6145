package router

import (
	"context"
	"maps"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

const nginxNS = "apps"

// TestNginxRouter drives the nginx router against a real kube-apiserver
// through a release: initialisation, weights, A/B tests, promotion and
// revert, checking the canary Ingress field by field and that the user's
// Ingress is never touched.
func TestNginxRouter(t *testing.T) {
	g := NewWithT(t)
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{"../../artifacts/crds"}})
	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	g.Expect(serinv1.AddToScheme(scheme)).To(Succeed())
	base, err := client.NewWithWatch(env.Config, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	// applies counts the router's writes: a no-op apply would not change
	// the resourceVersion, so only counting shows that nothing was sent.
	var applies atomic.Int32
	kube := interceptor.NewClient(base, interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			applies.Add(1)
			return c.Apply(ctx, obj, opts...)
		},
	})
	ctx := context.Background()

	g.Expect(kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nginxNS}})).To(Succeed())
	canary := nginxCanary("podinfo", "podinfo")
	g.Expect(kube.Create(ctx, canary)).To(Succeed())
	const p = DefaultNginxAnnotationPrefix
	user := nginxUserIngress("podinfo", "podinfo", map[string]string{
		p + "/rewrite-target":   "/",
		p + "/ssl-redirect":     "true",
		p + "/canary-weight":    "99",
		"example.com/team":      "web",
		lastAppliedAnnotation:   `{"kind":"Ingress"}`,
		p + "/canary-by-header": "x-stale",
	})
	g.Expect(kube.Create(ctx, user)).To(Succeed())
	userBefore := nginxGet(g, kube, "podinfo")

	nginx := &NginxRouter{Reader: kube, Client: kube, FieldManager: "serin"}
	r := Route{Canary: canary}
	// copied are the user's annotations that the canary Ingress keeps.
	copied := map[string]string{p + "/rewrite-target": "/", p + "/ssl-redirect": "true", "example.com/team": "web"}

	t.Run("initialisation routes nothing to the canary", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(setRoutes(ctx, nginx, r, analysis.Traffic{})).To(Succeed())
		ing := nginxGet(g, kube, "podinfo-canary")
		g.Expect(ing.Annotations).To(Equal(nginxWith(copied, map[string]string{p + "/canary": "true", p + "/canary-weight": "0"})))
		g.Expect(ing.Labels).To(Equal(map[string]string{"app": "podinfo", "team": "web"}))
		g.Expect(ing.Spec).To(Equal(nginxCanarySpec("podinfo")))
		g.Expect(ing.OwnerReferences).To(HaveLen(1))
		owner := ing.OwnerReferences[0]
		g.Expect(owner.UID).To(Equal(canary.UID))
		g.Expect(owner.Kind).To(Equal(serinv1.CanaryKind))
		g.Expect(*owner.Controller).To(BeTrue())
		g.Expect(nginx.Routes(ctx, r)).To(Equal(analysis.Traffic{}))
	})

	t.Run("weights", func(t *testing.T) {
		for _, w := range []struct {
			weight int
			want   string
		}{{10, "10"}, {50, "50"}, {100, "100"}} {
			g := NewWithT(t)
			g.Expect(setRoutes(ctx, nginx, r, analysis.Traffic{CanaryWeight: w.weight})).To(Succeed())
			ing := nginxGet(g, kube, "podinfo-canary")
			g.Expect(ing.Annotations).To(Equal(nginxWith(copied, map[string]string{p + "/canary": "true", p + "/canary-weight": w.want})))
			g.Expect(ing.Spec).To(Equal(nginxCanarySpec("podinfo")))
			g.Expect(nginx.Routes(ctx, r)).To(Equal(analysis.Traffic{CanaryWeight: w.weight}))
		}
	})

	t.Run("an identical SetRoutes writes nothing", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(setRoutes(ctx, nginx, r, analysis.Traffic{CanaryWeight: 50})).To(Succeed())
		rv, writes := nginxGet(g, kube, "podinfo-canary").ResourceVersion, applies.Load()
		g.Expect(setRoutes(ctx, nginx, r, analysis.Traffic{CanaryWeight: 50})).To(Succeed())
		g.Expect(applies.Load()).To(Equal(writes))
		g.Expect(nginxGet(g, kube, "podinfo-canary").ResourceVersion).To(Equal(rv))
	})

	t.Run("someone else's edit is overwritten", func(t *testing.T) {
		g := NewWithT(t)
		ing := nginxGet(g, kube, "podinfo-canary")
		patch := client.MergeFrom(ing.DeepCopy())
		ing.Annotations[p+"/canary-weight"] = "77"
		g.Expect(kube.Patch(ctx, ing, patch, client.FieldOwner("someone"))).To(Succeed())
		g.Expect(setRoutes(ctx, nginx, r, analysis.Traffic{CanaryWeight: 50})).To(Succeed())
		g.Expect(nginxGet(g, kube, "podinfo-canary").Annotations).To(HaveKeyWithValue(p+"/canary-weight", "50"))
	})

	abCases := []struct {
		name  string
		match string
		want  map[string]string
	}{
		{"header exact", `{"headers":{"x-canary":{"exact":"insider"}}}`,
			map[string]string{p + "/canary-by-header": "x-canary", p + "/canary-by-header-value": "insider"}},
		{"header regex", `{"headers":{"user-agent":{"regex":".*Firefox.*"}}}`,
			map[string]string{p + "/canary-by-header": "user-agent", p + "/canary-by-header-pattern": ".*Firefox.*"}},
		{"cookie", `{"headers":{"cookie":{"regex":"^(.*?;)?(canary=always)(;.*)?$"}}}`,
			map[string]string{p + "/canary-by-cookie": "canary"}},
		{"header and cookie", `{"headers":{"x-canary":{"exact":"insider"},"cookie":{"regex":"^(.*?;)?(beta=always)(;.*)?$"}}}`,
			map[string]string{p + "/canary-by-header": "x-canary", p + "/canary-by-header-value": "insider", p + "/canary-by-cookie": "beta"}},
	}
	for _, tc := range abCases {
		t.Run("A/B "+tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ab := Route{Canary: nginxWithMatch(canary, tc.match)}
			g.Expect(setRoutes(ctx, nginx, ab, analysis.Traffic{MatchToCanary: true})).To(Succeed())
			ing := nginxGet(g, kube, "podinfo-canary")
			// Annotations of the previous case are gone: Serin owns them.
			g.Expect(ing.Annotations).To(Equal(nginxWith(copied, nginxWith(tc.want, map[string]string{p + "/canary": "true", p + "/canary-weight": "0"}))))
			g.Expect(ing.Spec).To(Equal(nginxCanarySpec("podinfo")))
			g.Expect(nginx.Routes(ctx, ab)).To(Equal(analysis.Traffic{MatchToCanary: true}))
		})
	}

	t.Run("A/B matches NGINX cannot carry are refused", func(t *testing.T) {
		for _, match := range []string{
			`{"uri":{"prefix":"/api"}}`,
			`{"headers":{"x-canary":{"prefix":"in"}}}`,
			`{"headers":{"x-canary":{"exact":"insider"},"x-beta":{"exact":"yes"}}}`,
		} {
			g := NewWithT(t)
			_, err := nginx.SetRoutes(ctx, Route{Canary: nginxWithMatch(canary, match)}, analysis.Traffic{MatchToCanary: true})
			g.Expect(err).To(HaveOccurred(), match)
		}
		g := NewWithT(t)
		g.Expect(setRoutes(ctx, nginx, r, analysis.Traffic{MatchToCanary: true})).To(MatchError(ContainSubstring("analysis.match")))
		g.Expect(setRoutes(ctx, nginx, r, analysis.Traffic{Mirror: true, MirrorWeight: 10})).To(MatchError(ContainSubstring("mirror")))
	})

	t.Run("after A/B the header and cookie annotations are removed", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(setRoutes(ctx, nginx, r, analysis.Traffic{})).To(Succeed())
		ing := nginxGet(g, kube, "podinfo-canary")
		g.Expect(ing.Annotations).To(Equal(nginxWith(copied, map[string]string{p + "/canary": "true", p + "/canary-weight": "0"})))
		g.Expect(nginx.Routes(ctx, r)).To(Equal(analysis.Traffic{}))
	})

	t.Run("custom annotation prefix", func(t *testing.T) {
		g := NewWithT(t)
		const cp = "custom.ingress.kubernetes.io"
		custom := nginxCanary("backend", "backend")
		// An A/B canary: analysis.match with iterations, not stepWeight.
		custom.Spec.Analysis.MaxWeight, custom.Spec.Analysis.StepWeight, custom.Spec.Analysis.Iterations = 0, 0, 10
		custom.Spec.Analysis.Match = []apiextensionsv1.JSON{{Raw: []byte(`{"headers":{"x-canary":{"exact":"insider"}}}`)}}
		g.Expect(kube.Create(ctx, custom)).To(Succeed())
		g.Expect(kube.Create(ctx, nginxUserIngress("backend", "backend", map[string]string{
			cp + "/rewrite-target": "/$1",
			cp + "/canary-weight":  "99",
			p + "/canary-weight":   "98",
		}))).To(Succeed())
		router := &NginxRouter{Reader: kube, Client: kube, FieldManager: "serin", AnnotationPrefix: cp}
		cr := Route{Canary: custom}

		g.Expect(setRoutes(ctx, router, cr, analysis.Traffic{CanaryWeight: 10})).To(Succeed())
		ing := nginxGet(g, kube, "backend-canary")
		g.Expect(ing.Annotations).To(Equal(map[string]string{
			cp + "/rewrite-target": "/$1", p + "/canary-weight": "98",
			cp + "/canary": "true", cp + "/canary-weight": "10",
		}))
		g.Expect(ing.Spec).To(Equal(nginxCanarySpec("backend")))
		g.Expect(router.Routes(ctx, cr)).To(Equal(analysis.Traffic{CanaryWeight: 10}))

		g.Expect(setRoutes(ctx, router, cr, analysis.Traffic{MatchToCanary: true})).To(Succeed())
		g.Expect(nginxGet(g, kube, "backend-canary").Annotations).To(Equal(map[string]string{
			cp + "/rewrite-target": "/$1", p + "/canary-weight": "98",
			cp + "/canary": "true", cp + "/canary-weight": "0",
			cp + "/canary-by-header": "x-canary", cp + "/canary-by-header-value": "insider",
		}))
		g.Expect(router.Routes(ctx, cr)).To(Equal(analysis.Traffic{MatchToCanary: true}))
	})

	t.Run("missing ingressRef or Ingress", func(t *testing.T) {
		g := NewWithT(t)
		noRef := canary.DeepCopy()
		noRef.Spec.IngressRef = nil
		g.Expect(setRoutes(ctx, nginx, Route{Canary: noRef}, analysis.Traffic{})).To(MatchError(ContainSubstring("spec.ingressRef")))
		_, err := nginx.Routes(ctx, Route{Canary: noRef})
		g.Expect(err).To(MatchError(ContainSubstring("spec.ingressRef")))
		g.Expect(nginx.Revert(ctx, Route{Canary: noRef})).To(MatchError(ContainSubstring("spec.ingressRef")))

		missing := canary.DeepCopy()
		missing.Spec.IngressRef.Name = "does-not-exist"
		_, err = nginx.SetRoutes(ctx, Route{Canary: missing}, analysis.Traffic{})
		g.Expect(err).To(MatchError(ContainSubstring("does-not-exist")))
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())

		elsewhere := canary.DeepCopy()
		elsewhere.Spec.Service.Name = "other"
		g.Expect(setRoutes(ctx, nginx, Route{Canary: elsewhere}, analysis.Traffic{})).To(MatchError(ContainSubstring("does not route to Service other")))
	})

	t.Run("Revert deletes only the canary Ingress", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(nginx.Revert(ctx, r)).To(Succeed())
		err := kube.Get(ctx, client.ObjectKey{Namespace: nginxNS, Name: "podinfo-canary"}, &networkingv1.Ingress{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		nginxGet(g, kube, "podinfo")
		nginxGet(g, kube, "backend-canary")
		g.Expect(nginx.Routes(ctx, r)).To(Equal(analysis.Traffic{}))
		g.Expect(nginx.Revert(ctx, r)).To(Succeed())
	})

	t.Run("the user's Ingress is unchanged", func(t *testing.T) {
		g := NewWithT(t)
		after := nginxGet(g, kube, "podinfo")
		g.Expect(after.ResourceVersion).To(Equal(userBefore.ResourceVersion))
		g.Expect(after.Spec).To(Equal(userBefore.Spec))
		g.Expect(after.Annotations).To(Equal(userBefore.Annotations))
		g.Expect(after.Labels).To(Equal(userBefore.Labels))
		g.Expect(after.OwnerReferences).To(BeEmpty())
	})
}

func nginxGet(g Gomega, kube client.Client, name string) *networkingv1.Ingress {
	var ing networkingv1.Ingress
	g.ExpectWithOffset(1, kube.Get(context.Background(), client.ObjectKey{Namespace: nginxNS, Name: name}, &ing)).To(Succeed())
	return &ing
}

func nginxCanary(name, ingress string) *serinv1.Canary {
	return &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: nginxNS, Name: name},
		Spec: serinv1.CanarySpec{
			Provider:   serinv1.ProviderNGINX,
			TargetRef:  serinv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			IngressRef: &serinv1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: ingress},
			Service:    serinv1.CanaryService{Port: 80},
			Analysis:   serinv1.CanaryAnalysis{Interval: "1m", Threshold: 5, MaxWeight: 50, StepWeight: 10},
		},
	}
}

func nginxWithMatch(c *serinv1.Canary, match string) *serinv1.Canary {
	c = c.DeepCopy()
	c.Spec.Analysis.Match = []apiextensionsv1.JSON{{Raw: []byte(match)}}
	return c
}

// userIngress routes two paths of two hosts to apex and one to a static
// Service, with TLS and an ingress class.
func nginxUserIngress(name, apex string, annotations map[string]string) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: nginxNS, Name: name,
			Labels:      map[string]string{"app": name, "team": "web"},
			Annotations: annotations,
		},
		Spec: nginxIngressSpec(name, apex, apex),
	}
}

// canarySpec is the spec the canary Ingress of nginxUserIngress(name, apex) has.
func nginxCanarySpec(apex string) networkingv1.IngressSpec {
	return nginxIngressSpec(apex, apex, apex+"-canary")
}

func nginxIngressSpec(name, apex, to string) networkingv1.IngressSpec {
	prefix, specific := networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific
	backend := func(svc string, port networkingv1.ServiceBackendPort) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: port}}
	}
	host := name + ".example.com"
	return networkingv1.IngressSpec{
		IngressClassName: new("nginx"),
		TLS:              []networkingv1.IngressTLS{{Hosts: []string{host, "api." + host}, SecretName: name + "-tls"}},
		Rules: []networkingv1.IngressRule{
			{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				{Path: "/", PathType: &prefix, Backend: backend(to, networkingv1.ServiceBackendPort{Number: 80})},
				{Path: "/static", PathType: &prefix, Backend: backend("static-"+apex, networkingv1.ServiceBackendPort{Number: 8080})},
			}}}},
			{Host: "api." + host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				{Path: "/v1", PathType: &specific, Backend: backend(to, networkingv1.ServiceBackendPort{Name: "http"})},
			}}}},
		},
	}
}

// with returns a copy of a with b's entries added.
func nginxWith(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

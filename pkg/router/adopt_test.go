package router

import (
	"context"
	"errors"
	"reflect"
	"testing"

	. "github.com/onsi/gomega"
	contourv1 "github.com/projectcontour/contour/apis/projectcontour/v1"
	"google.golang.org/protobuf/testing/protocmp"
	istionetworking "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// adoptCase is one routing object a router generates, made by a user
// before the Canary: the router must neither write it nor anything else
// until it is handed over.
type adoptCase struct {
	name, ns string
	kind     string
	router   func(client.Reader, client.Client) Router
	// setup creates what the router reads (the nginx ingressRef).
	setup  func(g Gomega, c client.Client, ns string)
	canary func(*serinv1.Canary)
	// users is the user's object, the one named like a generated one.
	users func(ns string) client.Object
	// others are the other objects the router generates, which must not be
	// created while the user's object is refused.
	others func(ns string) []client.Object
}

// TestRoutersNeverAdopt: for every router, an object of the name it
// generates that the Canary did not create is refused with
// apply.ErrNotOwned and left byte for byte as it was, and so is one whose
// hand-over is withdrawn after the router read it; handed over with
// serin.dev/adopt=true, it is taken, with the Canary as its controller.
func TestRoutersNeverAdopt(t *testing.T) {
	routerCRDs, err := testenv.RouterCRDPaths()
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: append(routerCRDs, "../../artifacts/crds")})
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, serinv1.AddToScheme, istiov1.AddToScheme, gatewayv1.Install, contourv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	meta := func(ns, name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"made-by": "user"}}
	}
	prefix := networkingv1.PathTypePrefix
	userIngress := func(ns, name, svc string) *networkingv1.Ingress {
		return &networkingv1.Ingress{
			ObjectMeta: meta(ns, name),
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "app.example.com", IngressRuleValue: networkingv1.IngressRuleValue{
				HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: &prefix,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 9898}}},
				}}},
			}}}},
		}
	}
	istioVS := func(ns string) *istiov1.VirtualService {
		vs := &istiov1.VirtualService{ObjectMeta: meta(ns, "podinfo")}
		vs.Spec.Hosts = []string{"podinfo"}
		vs.Spec.Http = []*istionetworking.HTTPRoute{{Route: []*istionetworking.HTTPRouteDestination{{Destination: &istionetworking.Destination{Host: "podinfo-v2"}}}}}
		return vs
	}
	istioDR := func(ns, name string) *istiov1.DestinationRule {
		dr := &istiov1.DestinationRule{ObjectMeta: meta(ns, name)}
		dr.Spec.Host = "someone-else"
		return dr
	}
	istioRouter := func(r client.Reader, w client.Client) Router {
		return &IstioRouter{Reader: r, Client: w, FieldManager: gcTestFieldManager}
	}

	for _, tc := range []adoptCase{{
		name: "istio VirtualService", ns: "istio-vs", kind: "VirtualService", router: istioRouter,
		users: func(ns string) client.Object { return istioVS(ns) },
		others: func(ns string) []client.Object {
			return []client.Object{istioDR(ns, "podinfo-primary"), istioDR(ns, "podinfo-canary")}
		},
	}, {
		name: "istio canary DestinationRule", ns: "istio-dr", kind: "DestinationRule", router: istioRouter,
		users: func(ns string) client.Object { return istioDR(ns, "podinfo-canary") },
		others: func(ns string) []client.Object {
			return []client.Object{istioDR(ns, "podinfo-primary"), istioVS(ns)}
		},
	}, {
		name: "nginx canary Ingress", ns: "nginx", kind: "Ingress",
		router: func(r client.Reader, w client.Client) Router {
			return &NginxRouter{Reader: r, Client: w, FieldManager: gcTestFieldManager}
		},
		canary: func(c *serinv1.Canary) {
			c.Spec.Provider = serinv1.ProviderNGINX
			c.Spec.Analysis.Match = nil
			c.Spec.IngressRef = &serinv1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "podinfo"}
		},
		setup: func(g Gomega, c client.Client, ns string) {
			g.Expect(c.Create(ctx, userIngress(ns, "podinfo", "podinfo"))).To(Succeed())
		},
		users: func(ns string) client.Object { return userIngress(ns, "podinfo-canary", "legacy") },
	}, {
		name: "contour HTTPProxy", ns: "contour", kind: "HTTPProxy",
		router: func(r client.Reader, w client.Client) Router {
			return &ContourRouter{Reader: r, Client: w, FieldManager: gcTestFieldManager}
		},
		users: func(ns string) client.Object {
			return &contourv1.HTTPProxy{ObjectMeta: meta(ns, "podinfo"), Spec: contourv1.HTTPProxySpec{
				VirtualHost: &contourv1.VirtualHost{Fqdn: "legacy.example.com"},
				Routes:      []contourv1.Route{{Services: []contourv1.Service{{Name: "legacy", Port: 80}}}},
			}}
		},
	}, {
		name: "gatewayapi HTTPRoute", ns: "gatewayapi", kind: "HTTPRoute",
		router: func(r client.Reader, w client.Client) Router {
			return &GatewayAPIRouter{Reader: r, Client: w, FieldManager: gcTestFieldManager}
		},
		canary: func(c *serinv1.Canary) {
			c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: "public"}}
		},
		users: func(ns string) client.Object {
			return &gatewayv1.HTTPRoute{ObjectMeta: meta(ns, "podinfo"), Spec: gatewayv1.HTTPRouteSpec{
				CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "legacy"}}},
				Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
					BackendObjectReference: gatewayv1.BackendObjectReference{Name: "legacy", Port: new(gatewayv1.PortNumber(80))},
				}}}}},
			}}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := "adopt-" + tc.ns
			canary := gcTestCanary(t, c, ns, tc.canary)
			if tc.setup != nil {
				tc.setup(g, c, ns)
			}
			users := tc.users(ns)
			g.Expect(c.Create(ctx, users)).To(Succeed())
			rt := tc.router(c, c)
			route := Route{Canary: canary}
			traffic := analysis.Traffic{CanaryWeight: 10}

			// unchanged checks that the user's object is as before and that
			// nothing else was generated.
			unchanged := func(g Gomega, before client.Object) {
				g.ExpectWithOffset(1, adoptGet(ctx, c, before)).To(adoptEqual(before))
				var others []client.Object
				if tc.others != nil {
					others = tc.others(ns)
				}
				for _, o := range others {
					err := c.Get(ctx, client.ObjectKeyFromObject(o), o)
					g.ExpectWithOffset(1, apierrors.IsNotFound(err)).To(BeTrue(), "%T %s was created: %v", o, o.GetName(), err)
				}
			}

			t.Run("refused", func(t *testing.T) {
				g := NewWithT(t)
				before := adoptGet(ctx, c, users)
				_, err := rt.SetRoutes(ctx, route, traffic)
				g.Expect(errors.Is(err, apply.ErrNotOwned)).To(BeTrue(), "SetRoutes = %v, want apply.ErrNotOwned", err)
				g.Expect(err).To(MatchError(ContainSubstring(tc.kind + " " + ns + "/" + users.GetName() + " exists and was not created by this Canary")))
				g.Expect(err).To(MatchError(ContainSubstring("annotate it serin.dev/adopt=true to hand it over")))
				unchanged(g, before)
				g.Expect(rt.Revert(ctx, route)).To(Succeed())
				unchanged(g, before)
			})

			t.Run("a hand-over withdrawn after the read is not taken", func(t *testing.T) {
				g := NewWithT(t)
				handed := adoptSetAnnotation(g, c, adoptGet(ctx, c, users), "true")
				withdrawn := adoptSetAnnotation(g, c, handed.DeepCopyObject().(client.Object), "")
				// The router reads the object as it was handed over.
				_, err := tc.router(&adoptStaleReader{Reader: c, stale: handed}, c).SetRoutes(ctx, route, traffic)
				g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "SetRoutes = %v, want a conflict", err)
				g.Expect(adoptGet(ctx, c, users)).To(adoptEqual(withdrawn))
			})

			t.Run("handed over", func(t *testing.T) {
				g := NewWithT(t)
				before := adoptSetAnnotation(g, c, adoptGet(ctx, c, users), "true")
				got, err := rt.SetRoutes(ctx, route, traffic)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(got).To(Equal(traffic))
				after := adoptGet(ctx, c, users)
				g.Expect(after.GetUID()).To(Equal(before.GetUID()))
				g.Expect(after.GetResourceVersion()).NotTo(Equal(before.GetResourceVersion()))
				g.Expect(metav1.IsControlledBy(after, canary)).To(BeTrue(), "owner references %+v", after.GetOwnerReferences())
				g.Expect(adoptSpec(after)).NotTo(BeComparableTo(adoptSpec(before), protocmp.Transform()), "Serin's routes replace the user's")
				var others []client.Object
				if tc.others != nil {
					others = tc.others(ns)
				}
				for _, o := range others {
					g.Expect(c.Get(ctx, client.ObjectKeyFromObject(o), o)).To(Succeed())
					g.Expect(metav1.IsControlledBy(o, canary)).To(BeTrue())
				}
				// Taken, it is the Canary's: an unchanged SetRoutes writes
				// nothing, and Revert deletes it.
				_, err = rt.SetRoutes(ctx, route, traffic)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(adoptGet(ctx, c, users).GetResourceVersion()).To(Equal(after.GetResourceVersion()))
				g.Expect(rt.Revert(ctx, route)).To(Succeed())
				err = c.Get(ctx, client.ObjectKeyFromObject(users), users.DeepCopyObject().(client.Object))
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "after Revert: %v", err)
			})
		})
	}
}

// adoptGet reads the live state of obj's object into a new object.
func adoptGet(ctx context.Context, c client.Client, obj client.Object) client.Object {
	live := obj.DeepCopyObject().(client.Object)
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
		panic(err)
	}
	return live
}

// adoptSpec is the address of obj's spec field (for Istio a protobuf
// message, compared with protocmp).
func adoptSpec(obj client.Object) any {
	return reflect.ValueOf(obj).Elem().FieldByName("Spec").Addr().Interface()
}

// adoptEqual matches an object that is want, unwritten: the same
// resourceVersion, spec, labels, annotations and owner references.
func adoptEqual(want client.Object) OmegaMatcher {
	return SatisfyAll(
		WithTransform(client.Object.GetResourceVersion, Equal(want.GetResourceVersion())),
		WithTransform(adoptSpec, BeComparableTo(adoptSpec(want), protocmp.Transform())),
		WithTransform(client.Object.GetLabels, Equal(want.GetLabels())),
		WithTransform(client.Object.GetAnnotations, Equal(want.GetAnnotations())),
		WithTransform(client.Object.GetOwnerReferences, BeEmpty()),
	)
}

// adoptSetAnnotation sets (or, with "", removes) serin.dev/adopt on obj and
// returns the updated object.
func adoptSetAnnotation(g Gomega, c client.Client, obj client.Object, value string) client.Object {
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	if value == "" {
		delete(annotations, apply.AdoptAnnotation)
	} else {
		annotations[apply.AdoptAnnotation] = value
	}
	obj.SetAnnotations(annotations)
	g.ExpectWithOffset(1, c.Patch(context.Background(), obj, patch, client.FieldOwner("user"))).To(Succeed())
	return obj
}

// adoptStaleReader is a Reader that returns stale for its key and type, as
// it was, and reads everything else from Reader.
type adoptStaleReader struct {
	client.Reader
	stale client.Object
}

func (r *adoptStaleReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if key == client.ObjectKeyFromObject(r.stale) && reflect.TypeOf(obj) == reflect.TypeOf(r.stale) {
		reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(r.stale.DeepCopyObject()).Elem())
		return nil
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

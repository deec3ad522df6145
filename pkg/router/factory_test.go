package router

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/service"
)

// TestNew builds every provider of serinv1.Providers and checks that each
// router gets the options meant for it, the reader and the client not
// swapped.
func TestNew(t *testing.T) {
	reader, kube := fake.NewClientBuilder().Build(), fake.NewClientBuilder().Build()
	services := &service.Applier{Reader: kube, Client: kube, FieldManager: "m"}
	o := Options{
		Reader:                reader,
		Client:                kube,
		FieldManager:          "m",
		Services:              services,
		NginxAnnotationPrefix: "nginx.example.com",
		ContourIngressClass:   "internal",
	}
	gatewayAPI := GatewayAPIRouter{Reader: reader, Client: kube, FieldManager: "m"}
	want := map[serinv1.Provider]any{
		serinv1.ProviderKubernetes:        KubernetesRouter{Services: services, Reader: reader},
		serinv1.ProviderIstio:             IstioRouter{Reader: reader, Client: kube, FieldManager: "m"},
		serinv1.ProviderNGINX:             NginxRouter{Reader: reader, Client: kube, FieldManager: "m", AnnotationPrefix: "nginx.example.com"},
		serinv1.ProviderContour:           ContourRouter{Reader: reader, Client: kube, FieldManager: "m", IngressClass: "internal"},
		serinv1.ProviderGatewayAPI:        gatewayAPI,
		serinv1.ProviderGatewayAPIV1:      gatewayAPI,
		serinv1.ProviderGatewayAPIV1beta1: gatewayAPI,
	}
	for _, p := range serinv1.Providers() {
		t.Run(string(p), func(t *testing.T) {
			rt, err := New(p, o)
			if err != nil {
				t.Fatalf("New(%q): %v", p, err)
			}
			var got any
			switch rt := rt.(type) {
			case *KubernetesRouter:
				got = *rt
			case *IstioRouter:
				got = *rt
			case *NginxRouter:
				got = *rt
			case *ContourRouter:
				got = *rt
			case *GatewayAPIRouter:
				got = *rt
			default:
				t.Fatalf("New(%q) = %T, a router this test does not know", p, rt)
			}
			w, ok := want[p]
			if !ok {
				t.Fatalf("provider %q is in serinv1.Providers but not in this test", p)
			}
			if got != w {
				t.Errorf("New(%q) = %+v, want %+v", p, got, w)
			}
		})
	}
	if len(want) != len(serinv1.Providers()) {
		t.Errorf("the test expects %d providers, serinv1.Providers has %d", len(want), len(serinv1.Providers()))
	}
	for _, p := range []serinv1.Provider{"", "linkerd", "Istio", "gatewayapi:v2", "kubernetes "} {
		if rt, err := New(p, o); err == nil {
			t.Errorf("New(%q) = %T, want an error", p, rt)
		}
	}
}

// TestAddToScheme registers the kinds the routers use.
func TestAddToScheme(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, gvk := range []string{"/v1, Kind=Service", "serin.dev/v1beta1, Kind=Canary", "networking.istio.io/v1, Kind=VirtualService", "projectcontour.io/v1, Kind=HTTPProxy", "gateway.networking.k8s.io/v1, Kind=HTTPRoute", "apps/v1, Kind=Deployment"} {
		found := false
		for k := range s.AllKnownTypes() {
			if k.String() == gvk {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("AddToScheme does not register %s", gvk)
		}
	}
}

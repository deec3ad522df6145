package router

import (
	"fmt"

	contourv1 "github.com/projectcontour/contour/apis/projectcontour/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/serin-dev/serin/pkg/apis/scheme"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/service"
)

// Options are what New hands to the routers.
type Options struct {
	// Reader reads the routing objects, and the kubernetes router's apex
	// Service when it verifies. The controller passes a reader around the
	// informer cache: a router writes only at a weight step, right before
	// reading the split back, which a cache might not have seen yet, and
	// an uncached reader keeps the routing kinds out of the cache, so that
	// a missing CRD never blocks it.
	Reader client.Reader
	// Client writes the routing objects.
	Client client.Client
	// FieldManager owns the fields the routers apply.
	FieldManager string
	// Services applies the kubernetes router's apex Service; its reader may
	// be the informer cache (the controller watches its Services). Nil
	// suits a router that only reads (Routes).
	Services *service.Applier
	// NginxAnnotationPrefix is ingress-nginx's annotation prefix; empty
	// means DefaultNginxAnnotationPrefix.
	NginxAnnotationPrefix string
	// ContourIngressClass is the ingress class of generated HTTPProxies;
	// empty leaves it unset.
	ContourIngressClass string
}

// New returns the router of provider p (any of serinv1.Providers, aliases
// included). It does not check the strategy: see Supports.
func New(p serinv1.Provider, o Options) (Router, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("provider %q has no router", p)
	}
	switch p.Canonical() {
	case serinv1.ProviderKubernetes:
		return &KubernetesRouter{Services: o.Services, Reader: o.Reader}, nil
	case serinv1.ProviderIstio:
		return &IstioRouter{Reader: o.Reader, Client: o.Client, FieldManager: o.FieldManager}, nil
	case serinv1.ProviderNGINX:
		return &NginxRouter{Reader: o.Reader, Client: o.Client, FieldManager: o.FieldManager, AnnotationPrefix: o.NginxAnnotationPrefix}, nil
	case serinv1.ProviderContour:
		return &ContourRouter{Reader: o.Reader, Client: o.Client, FieldManager: o.FieldManager, IngressClass: o.ContourIngressClass}, nil
	case serinv1.ProviderGatewayAPI:
		return &GatewayAPIRouter{Reader: o.Reader, Client: o.Client, FieldManager: o.FieldManager}, nil
	}
	// A provider in serinv1.Providers without a case here.
	return nil, fmt.Errorf("provider %q has no router", p)
}

// AddToScheme registers every API the routers and the controller read or
// write: the built-in kinds and Serin's (pkg/apis/scheme), and the routing
// APIs of Istio, Contour and the Gateway API. Registering a kind needs no
// CRD; using it does.
func AddToScheme(s *runtime.Scheme) error {
	for _, add := range []func(*runtime.Scheme) error{
		scheme.AddToScheme,
		istiov1.AddToScheme,
		contourv1.AddToScheme,
		gatewayv1.Install,
	} {
		if err := add(s); err != nil {
			return err
		}
	}
	return nil
}

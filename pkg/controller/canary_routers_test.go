package controller_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/controller"
	"github.com/serin-dev/serin/pkg/router"

	"github.com/serin-dev/serin/pkg/naming"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// progressive turns a Canary into a stepWeight 10 / maxWeight 50 canary on
// a provider.
func progressive(p serinv1.Provider) func(*serinv1.Canary) {
	return func(c *serinv1.Canary) {
		c.Spec.Provider = p
		c.Spec.Service.Hosts = []string{c.Name + ".example.com"}
		c.Spec.Analysis.Iterations = 0
		c.Spec.Analysis.StepWeight = 10
		c.Spec.Analysis.MaxWeight = 50
		if p == serinv1.ProviderGatewayAPI {
			// Admission asks for the Gateways the route attaches to.
			c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: "public"}}
		}
	}
}

// weightRecorder polls a router's objects and records every canary weight
// they carried, in order.
func weightRecorder(t *testing.T, rt router.Router, ns, name string) func() []int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var (
		mu      sync.Mutex
		weights []int
	)
	go func() {
		for ctx.Err() == nil {
			var c serinv1.Canary
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &c); err == nil {
				route := router.Route{Canary: &c, Selector: naming.Selector{Key: "app", Value: name}}
				if tr, err := rt.Routes(ctx, route); err == nil {
					mu.Lock()
					if n := len(weights); n == 0 || weights[n-1] != tr.CanaryWeight {
						weights = append(weights, tr.CanaryWeight)
					}
					mu.Unlock()
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(weights)
	}
}

func TestCanaryReconciler_Routers(t *testing.T) {
	t.Parallel()
	routers := map[serinv1.Provider]router.Router{
		serinv1.ProviderIstio:      &router.IstioRouter{Reader: k8sClient, Client: k8sClient, FieldManager: controller.FieldManager},
		serinv1.ProviderContour:    &router.ContourRouter{Reader: k8sClient, Client: k8sClient, FieldManager: controller.FieldManager},
		serinv1.ProviderNGINX:      &router.NginxRouter{Reader: k8sClient, Client: k8sClient, FieldManager: controller.FieldManager, AnnotationPrefix: "nginx.ingress.kubernetes.io"},
		serinv1.ProviderGatewayAPI: &router.GatewayAPIRouter{Reader: k8sClient, Client: k8sClient, FieldManager: controller.FieldManager},
	}
	for provider, rt := range routers {
		t.Run(string(provider), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns, name := newNamespace(t), "shop"
			mods := []func(*serinv1.Canary){progressive(provider)}
			if provider == serinv1.ProviderNGINX {
				create(t, userIngress(ns, name))
				mods = append(mods, func(c *serinv1.Canary) {
					c.Spec.IngressRef = &serinv1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: name}
				})
			}
			initialized(t, g, ns, name, mods...)
			weights := weightRecorder(t, rt, ns, name)
			if provider == serinv1.ProviderGatewayAPI {
				addUserFilter(g, ns, name)
			}

			setImage(g, ns, name, "example.com/app:v2")
			g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
			if provider == serinv1.ProviderGatewayAPI {
				route := get(g, ns, name, &gatewayv1.HTTPRoute{})
				rules := route.Spec.Rules
				g.Expect(rules[len(rules)-1].Filters).To(ContainElement(HaveField("RequestHeaderModifier", Not(BeNil()))), "a filter the user added survives the release")
			}
			g.Eventually(func() int { w := weights(); return w[len(w)-1] }, 10*time.Second, poll).Should(BeZero())
			g.Expect(weights()).To(Equal([]int{0, 10, 20, 30, 40, 50, 0}), "each step is visible in the routing objects, and promotion restores 100/0")
			g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v2"))
		})
	}
}

func TestCanaryReconciler_RouterRollback(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "flaky"
	hooks := newHookServer(t, 200)
	initialized(t, g, ns, name, progressive(serinv1.ProviderIstio), func(c *serinv1.Canary) {
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "load", URL: hooks.URL + "/load"}}
	})
	rt := &router.IstioRouter{Reader: k8sClient, Client: k8sClient, FieldManager: controller.FieldManager}
	weights := weightRecorder(t, rt, ns, name)

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(func() []int { return weights() }, release, poll).Should(ContainElement(20))
	hooks.status.Store(500)
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))
	g.Eventually(func() int { w := weights(); return w[len(w)-1] }, 10*time.Second, poll).Should(BeZero(), "rollback restores 100/0")
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v1"))
}

// addUserFilter adds a request header to the default rule of the HTTPRoute,
// as a user (or another controller) would.
func addUserFilter(g Gomega, ns, name string) {
	g.Eventually(func() error {
		route := &gatewayv1.HTTPRoute{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, route); err != nil {
			return err
		}
		last := &route.Spec.Rules[len(route.Spec.Rules)-1]
		last.Filters = append(last.Filters, gatewayv1.HTTPRouteFilter{
			Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier,
			RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{
				Set: []gatewayv1.HTTPHeader{{Name: "x-team", Value: "shop"}},
			},
		})
		return k8sClient.Update(context.Background(), route, client.FieldOwner("platform-team"))
	}, release, poll).Should(Succeed())
}

func userIngress(ns, name string) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.IngressSpec{
			IngressClassName: new("nginx"),
			Rules: []networkingv1.IngressRule{{
				Host: name + ".example.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path: "/", PathType: &prefix,
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Number: 80}}},
					}},
				}},
			}},
		},
	}
}

// TestCanaryReconciler_MissingRouterCRDs runs a second cluster without the
// Istio CRDs: an istio Canary stalls with a message that says so, while a
// Canary on another provider is still served.
func TestCanaryReconciler_MissingRouterCRDs(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	bare := testenv.StartForTest(t, testenv.Options{Mode: testenv.Full, CRDPaths: []string{"../../artifacts/crds"}})
	c, err := client.New(bare.Config, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logFile, err := os.Create(filepath.Join(bare.Dir, "serin.log"))
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { logFile.Close() })
	mgr, err := ctrl.NewManager(bare.Config, ctrl.Options{
		Scheme:  scheme,
		Logger:  zap.New(zap.WriteTo(logFile)),
		Metrics: metricsserver.Options{BindAddress: "0"},
		Client:  controller.ClientOptions(),
		// This process already runs a controller named canary.
		Controller: ctrlconfig.Controller{SkipNameValidation: new(true)},
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(controller.Setup(ctx, mgr, controller.Config{DefaultProvider: serinv1.ProviderKubernetes})).To(Succeed())
	go func() { _ = mgr.Start(ctx) }()

	const ns = "default"
	for _, obj := range []client.Object{
		newDeployment(ns, "meshed", "example.com/app:v1", 1), newCanary(ns, "meshed", progressive(serinv1.ProviderIstio)),
		newDeployment(ns, "plain", "example.com/app:v1", 1), newCanary(ns, "plain"),
	} {
		g.Expect(c.Create(ctx, obj)).To(Succeed())
	}
	g.Eventually(func() string {
		var canary serinv1.Canary
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "meshed"}, &canary); err != nil || !conditions.IsStalled(&canary) {
			return ""
		}
		return conditions.GetReason(&canary, meta.StalledCondition) + ": " + conditions.GetMessage(&canary, meta.StalledCondition)
	}, release, poll).Should(And(HavePrefix(serinv1.RouterUnavailableReason), ContainSubstring("routing CRDs are not installed"), ContainSubstring("networking.istio.io")))
	g.Eventually(func() serinv1.CanaryPhase {
		var canary serinv1.Canary
		_ = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "plain"}, &canary)
		return canary.Status.Phase
	}, release, poll).Should(Equal(serinv1.CanaryPhaseInitialized), "other Canaries are still served")
	var target appsv1.Deployment
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "meshed"}, &target)).To(Succeed())
	g.Expect(*target.Spec.Replicas).To(Equal(int32(1)), "nothing was routed, so the target keeps serving")
}

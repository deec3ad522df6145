package telemetry_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/common/model"
	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/e2e/telemetry"
	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/flags"
	"github.com/serin-dev/serin/pkg/naming"
	"github.com/serin-dev/serin/pkg/router"
	"github.com/serin-dev/serin/pkg/testharness/prometheus"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// scalarQuery returns a function that runs a query that must give one
// sample on prom, and returns its value.
func scalarQuery(ctx context.Context, g Gomega, prom *prometheus.Server) func(string) float64 {
	return func(q string) float64 {
		v, _, err := prom.API().Query(ctx, q, time.Now())
		g.Expect(err).NotTo(HaveOccurred())
		vec, ok := v.(model.Vector)
		g.Expect(ok && len(vec) == 1).To(BeTrue(), "%s returned %v", q, v)
		return float64(vec[0].Value)
	}
}

func deployment(ns, name string, annotations map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}, Annotations: annotations},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:v1"}}},
			},
		},
	}
}

// TestSourceFollowsTheRouting routes 30% to a canary that declares 10%
// errors and checks what a real Prometheus sees.
func TestSourceFollowsTheRouting(t *testing.T) {
	g := NewWithT(t)
	istio, err := testenv.ModuleDir("istio.io/api")
	g.Expect(err).NotTo(HaveOccurred())
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{
		filepath.Join(istio, "kubernetes", "customresourcedefinitions.gen.yaml"), "../../artifacts/crds",
	}})
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, serinv1.AddToScheme, istionetworkingv1.AddToScheme} {
		g.Expect(add(scheme)).To(Succeed())
	}
	kube, err := client.New(env.Config, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()

	const ns = "default"
	canary := &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: serinv1.CanarySpec{
			Provider:  serinv1.ProviderIstio,
			TargetRef: serinv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Service:   serinv1.CanaryService{Port: 80},
			Analysis:  serinv1.CanaryAnalysis{Interval: "10s", StepWeight: 10},
		},
	}
	g.Expect(kube.Create(ctx, canary)).To(Succeed())
	g.Expect(kube.Create(ctx, deployment(ns, "web-primary", nil))).To(Succeed())
	g.Expect(kube.Create(ctx, deployment(ns, "web", map[string]string{telemetry.ErrorRatioAnnotation: "0.1", telemetry.LatencyAnnotation: "200ms"}))).To(Succeed())

	rt := &router.IstioRouter{Reader: kube, Client: kube, FieldManager: "serin"}
	route := router.Route{Canary: canary, Selector: naming.Selector{Key: "app", Value: "web"}}
	_, err = rt.SetRoutes(ctx, route, analysis.Traffic{CanaryWeight: 30})
	g.Expect(err).To(Succeed())

	exporter := prometheus.NewExporter()
	t.Cleanup(exporter.Close)
	source := &telemetry.Source{Client: kube, Exporter: exporter, RPS: 100}
	g.Expect(source.Sync(ctx, canary)).To(Succeed())

	prom := prometheus.StartForTest(t, prometheus.Options{Targets: []string{exporter.Addr()}})
	g.Expect(prom.WaitForSeries(ctx, `count_over_time(istio_requests_total{destination_workload="web"}[20s]) > 2`)).To(Succeed())
	query := scalarQuery(ctx, g, prom)
	share := query(`sum(rate(istio_requests_total{destination_workload="web"}[20s])) / sum(rate(istio_requests_total{destination_workload=~"web|web-primary"}[20s]))`)
	g.Expect(share).To(BeNumerically("~", 0.30, 0.01), "the canary gets its routed share")
	g.Expect(query(`sum(rate(istio_requests_total{destination_workload="web",response_code!~"5.*"}[20s])) / sum(rate(istio_requests_total{destination_workload="web"}[20s])) * 100`)).
		To(BeNumerically("~", 90, 0.5), "the canary's declared error ratio")
	g.Expect(query(`sum(rate(istio_requests_total{destination_workload="web-primary",response_code!~"5.*"}[20s])) / sum(rate(istio_requests_total{destination_workload="web-primary"}[20s])) * 100`)).
		To(BeNumerically("~", 100, 0.01))
	g.Expect(query(`histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{destination_workload="web"}[20s])) by (le))`)).
		To(And(BeNumerically(">", 100), BeNumerically("<=", 250)), "the canary's declared latency")
}

// TestSourceEvaluatesFlagRollouts writes the split of a flag change at 25%
// into a primary ConfigMap and checks, on a real Prometheus, that the new
// variant gets its share of the requests and the declared errors.
func TestSourceEvaluatesFlagRollouts(t *testing.T) {
	g := NewWithT(t)
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{"../../artifacts/crds"}})
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, serinv1.AddToScheme} {
		g.Expect(add(scheme)).To(Succeed())
	}
	kube, err := client.New(env.Config, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()

	const ns = "default"
	oldDoc := `{"flags": {"banner": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"}}}`
	newDoc := `{"flags": {"banner": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "blue"}}}`
	oldParsed, err := flags.Parse([]byte(oldDoc))
	g.Expect(err).NotTo(HaveOccurred())
	newParsed, err := flags.Parse([]byte(newDoc))
	g.Expect(err).NotTo(HaveOccurred())
	split, err := flags.Rollout(oldParsed, newParsed, 25)
	g.Expect(err).NotTo(HaveOccurred())
	canary := &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "banner"},
		Spec: serinv1.CanarySpec{
			TargetRef: serinv1.TargetReference{APIVersion: "v1", Kind: "ConfigMap", Name: "flagd-config"},
			Analysis:  serinv1.CanaryAnalysis{Interval: "10s", StepWeights: []int{25}},
		},
	}
	g.Expect(kube.Create(ctx, canary)).To(Succeed())
	g.Expect(kube.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flagd-config", Annotations: map[string]string{telemetry.VariantErrorRatioAnnotation: `{"banner/blue": 0.2}`}},
		Data:       map[string]string{"flags.json": newDoc},
	})).To(Succeed())
	g.Expect(kube.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flagd-config-primary"}, Data: map[string]string{"flags.json": string(split)}})).To(Succeed())
	onNew := 0
	for i := range telemetry.FlagUsers {
		if flags.OnNewSide("banner", telemetry.FlagUser(i)["targetingKey"].(string), 25) {
			onNew++
		}
	}

	exporter := prometheus.NewExporter()
	t.Cleanup(exporter.Close)
	source := &telemetry.Source{Client: kube, Exporter: exporter, RPS: 100}
	g.Expect(source.Sync(ctx, canary)).To(Succeed())

	prom := prometheus.StartForTest(t, prometheus.Options{Targets: []string{exporter.Addr()}})
	g.Expect(prom.WaitForSeries(ctx, `count_over_time(http_server_request_duration_seconds_count{feature_flag_key="banner",feature_flag_variant="blue"}[20s]) > 2`)).To(Succeed())
	query := scalarQuery(ctx, g, prom)
	share := query(`sum(rate(http_server_request_duration_seconds_count{feature_flag_key="banner",feature_flag_variant="blue"}[20s])) / sum(rate(http_server_request_duration_seconds_count{feature_flag_key="banner"}[20s]))`)
	g.Expect(share).To(BeNumerically("~", float64(onNew)/telemetry.FlagUsers, 0.01), "the users on the new side get blue")
	g.Expect(share).To(BeNumerically("~", 0.25, 0.06))
	g.Expect(query(`100 * sum(rate(http_server_request_duration_seconds_count{feature_flag_variant="blue",http_response_status_code="500"}[20s])) / sum(rate(http_server_request_duration_seconds_count{feature_flag_variant="blue"}[20s]))`)).
		To(BeNumerically("~", 20, 0.5), "blue's declared errors")
	g.Expect(query(`sum(rate(http_server_request_duration_seconds_count{feature_flag_variant="red",http_response_status_code="500"}[20s])) or vector(0)`)).To(BeZero())
}

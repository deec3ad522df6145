package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/checks/metrics"
	"github.com/serin-dev/serin/pkg/checks/metrics/providers"
	"github.com/serin-dev/serin/pkg/refpolicy"

	"github.com/serin-dev/serin/pkg/testharness/prometheus"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

func canaryWith(ns string, ms ...serinv1.CanaryMetric) *serinv1.Canary {
	return &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: serinv1.CanarySpec{
			TargetRef: serinv1.TargetReference{Kind: "Deployment", Name: "web"},
			Service:   serinv1.CanaryService{Port: 80},
			Analysis:  serinv1.CanaryAnalysis{Interval: "10s", Iterations: 1, Metrics: ms},
		},
	}
}

// TestBuiltinChecksOnRealPrometheus runs the Istio built-in checks against a
// real Prometheus scraping Istio-shaped series every second.
func TestBuiltinChecksOnRealPrometheus(t *testing.T) {
	g := NewWithT(t)
	exporter := prometheus.NewExporter()
	t.Cleanup(exporter.Close)
	exporter.SetIstioWorkload("apps", "web", 20, 0.995, 50*time.Millisecond)
	exporter.SetIstioWorkload("apps", "bad", 20, 0.90, 50*time.Millisecond)
	prom := prometheus.StartForTest(t, prometheus.Options{Targets: []string{exporter.Addr()}})
	ctx := context.Background()
	// Two scrapes at least are needed for rate().
	g.Expect(prom.WaitForSeries(ctx, `count_over_time(istio_requests_total{destination_workload="web"}[30s]) > 2`)).To(Succeed())

	checker := &metrics.Checker{DefaultAddress: prom.URL, NewProvider: providers.New}
	successRate := serinv1.CanaryMetric{Name: serinv1.MetricRequestSuccessRate, Interval: "30s", ThresholdRange: &serinv1.CanaryThresholdRange{Min: new(99.0)}}
	duration := serinv1.CanaryMetric{Name: serinv1.MetricRequestDuration, Interval: "30s", ThresholdRange: &serinv1.CanaryThresholdRange{Max: new(100.0)}}

	res, err := checker.Measure(ctx, canaryWith("apps", successRate, duration), serinv1.ProviderIstio)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res).To(HaveLen(2))
	g.Expect(res[0].Name).To(Equal(serinv1.MetricRequestSuccessRate))
	g.Expect(res[0].Err).NotTo(HaveOccurred())
	g.Expect(res[0].NoData).To(BeFalse())
	g.Expect(res[0].Value).To(BeNumerically("~", 99.5, 0.3))
	g.Expect(res[1].Err).NotTo(HaveOccurred())
	g.Expect(res[1].Value).To(And(BeNumerically(">", 25), BeNumerically("<=", 50)), "p99 within the bucket holding 50ms")

	bad := canaryWith("apps", successRate)
	bad.Spec.TargetRef.Name = "bad"
	res, err = checker.Measure(ctx, bad, serinv1.ProviderIstio)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res[0].Value).To(BeNumerically("~", 90, 0.5))

	missing := canaryWith("apps", successRate)
	missing.Spec.TargetRef.Name = "absent"
	res, err = checker.Measure(ctx, missing, serinv1.ProviderIstio)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res[0].NoData).To(BeTrue(), "a series that does not exist is no data")
	g.Expect(res[0].Err).NotTo(HaveOccurred())

	// A stopped Prometheus is an error result, not a configuration
	// problem.
	g.Expect(prom.Stop()).To(Succeed())
	res, err = checker.Measure(ctx, canaryWith("apps", successRate), serinv1.ProviderIstio)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res[0].Err).To(HaveOccurred())
	g.Expect(res[0].NoData).To(BeFalse())
}

// TestMetricTemplate resolves a MetricTemplate and its Secret from a real
// apiserver and checks what reaches the backend.
func TestMetricTemplate(t *testing.T) {
	g := NewWithT(t)
	kube := templateCluster(t, g)
	ctx := context.Background()

	var (
		mu       sync.Mutex
		gotQuery string
		gotAuth  string
	)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		gotQuery, gotAuth = r.Form.Get("query"), r.Header.Get("Authorization")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"status": "success",
			"data": map[string]any{
				"resultType": "vector",
				"result":     []any{map[string]any{"metric": map[string]string{}, "value": []any{float64(time.Now().Unix()), "0.25"}}},
			},
		})
	}))
	t.Cleanup(backend.Close)

	for _, ns := range []string{"apps", "shared"} {
		g.Expect(kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	g.Expect(kube.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shared", Name: "prom-auth"},
		Data:       map[string][]byte{"token": []byte("s3cr3t-token")},
	})).To(Succeed())
	g.Expect(kube.Create(ctx, &serinv1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shared", Name: "error-rate"},
		Spec: serinv1.MetricTemplateSpec{
			Provider: serinv1.MetricTemplateProvider{Type: "prometheus", Address: backend.URL, SecretRef: &corev1.LocalObjectReference{Name: "prom-auth"}},
			Query:    `sum(rate(errors{namespace="{{ namespace }}",workload="{{ target }}",cluster="{{ variables.cluster }}"}[{{ interval }}]))`,
		},
	})).To(Succeed())

	metric := serinv1.CanaryMetric{
		Name:              "error-rate",
		Interval:          "2m",
		TemplateRef:       &serinv1.CrossNamespaceObjectReference{Name: "error-rate", Namespace: "shared"},
		TemplateVariables: map[string]string{"cluster": "eu-1"},
		SuccessCondition:  "result < 0.5 && result >= 0",
	}
	checker := &metrics.Checker{Reader: kube, NewProvider: providers.New, Refs: refpolicy.Policy{Shared: []string{"shared"}}}
	res, err := checker.Measure(ctx, canaryWith("apps", metric), serinv1.ProviderKubernetes)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res[0].Err).NotTo(HaveOccurred())
	g.Expect(res[0].Value).To(Equal(0.25))
	mu.Lock()
	g.Expect(gotQuery).To(Equal(`sum(rate(errors{namespace="apps",workload="web",cluster="eu-1"}[2m]))`))
	g.Expect(gotAuth).To(Equal("Bearer s3cr3t-token"))
	mu.Unlock()

	t.Run("cross-namespace references can be forbidden", func(t *testing.T) {
		g := NewWithT(t)
		strict := &metrics.Checker{Reader: kube, NewProvider: providers.New, Refs: refpolicy.Policy{Shared: []string{"shared"}, OwnOnly: true}}
		_, err := strict.Measure(ctx, canaryWith("apps", metric), serinv1.ProviderKubernetes)
		var invalid *metrics.ConfigError
		g.Expect(errors.As(err, &invalid)).To(BeTrue())
		g.Expect(err.Error()).To(ContainSubstring("shared/error-rate is in another namespace"))
	})

	t.Run("a namespace that is not shared is refused", func(t *testing.T) {
		g := NewWithT(t)
		unshared := &metrics.Checker{Reader: kube, NewProvider: providers.New}
		_, err := unshared.Measure(ctx, canaryWith("apps", metric), serinv1.ProviderKubernetes)
		var invalid *metrics.ConfigError
		g.Expect(errors.As(err, &invalid)).To(BeTrue())
		g.Expect(err.Error()).To(ContainSubstring("MetricTemplate shared/error-rate is in namespace shared, which is not shared"))
	})

	t.Run("a missing template is a configuration error naming it", func(t *testing.T) {
		g := NewWithT(t)
		gone := metric
		gone.TemplateRef = &serinv1.CrossNamespaceObjectReference{Name: "latency"}
		_, err := checker.Measure(ctx, canaryWith("apps", gone), serinv1.ProviderKubernetes)
		var invalid *metrics.ConfigError
		g.Expect(errors.As(err, &invalid)).To(BeTrue())
		g.Expect(err.Error()).To(ContainSubstring("MetricTemplate apps/latency not found"))
	})

	t.Run("a missing template variable is a configuration error", func(t *testing.T) {
		g := NewWithT(t)
		noVars := metric
		noVars.TemplateVariables = nil
		_, err := checker.Measure(ctx, canaryWith("apps", noVars), serinv1.ProviderKubernetes)
		var invalid *metrics.ConfigError
		g.Expect(errors.As(err, &invalid)).To(BeTrue())
		g.Expect(err.Error()).To(ContainSubstring("cluster"))
	})
}

// TestTemplateCredentialsStayWithTheTemplate: a template in a shared
// namespace with a Secret and no address would be queried at the Canary's
// metricsServer, which the Canary's owner chooses; it is refused, and the
// listener never sees the credential. Template variables that could rewrite
// the query are refused too.
func TestTemplateCredentialsStayWithTheTemplate(t *testing.T) {
	g := NewWithT(t)
	kube := templateCluster(t, g)
	ctx := context.Background()

	var seen sync.Map
	listener := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("Authorization"), true)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(listener.Close)

	for _, ns := range []string{"team-a", "team-b"} {
		g.Expect(kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	g.Expect(kube.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "prom-auth"},
		Data:       map[string][]byte{"token": []byte("team-b-token")},
	})).To(Succeed())
	g.Expect(kube.Create(ctx, &serinv1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "errors"},
		Spec: serinv1.MetricTemplateSpec{
			Provider: serinv1.MetricTemplateProvider{Type: "prometheus", SecretRef: &corev1.LocalObjectReference{Name: "prom-auth"}},
			Query:    `sum(errors{namespace="{{ namespace }}",le="{{ variables.bucket }}"})`,
		},
	})).To(Succeed())

	canary := canaryWith("team-a", serinv1.CanaryMetric{
		Name: "errors", TemplateRef: &serinv1.CrossNamespaceObjectReference{Name: "errors", Namespace: "team-b"},
		TemplateVariables: map[string]string{"bucket": "0.5"},
	})
	canary.Spec.MetricsServer = listener.URL
	// Even from a namespace the operator shares.
	checker := &metrics.Checker{Reader: kube, NewProvider: providers.New, Refs: refpolicy.Policy{Shared: []string{"team-b"}}}
	_, err := checker.Measure(ctx, canary, serinv1.ProviderKubernetes)
	var invalid *metrics.ConfigError
	g.Expect(errors.As(err, &invalid)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("team-b/errors has a secretRef but no provider.address"))
	_, leaked := seen.Load("Bearer team-b-token")
	g.Expect(leaked).To(BeFalse(), "the Canary's metricsServer never gets team-b's token")

	t.Run("template variables that could rewrite the query are refused", func(t *testing.T) {
		g := NewWithT(t)
		for _, v := range []string{`0.5"}) or vector(1) #`, "a\\b", "x}", "line\nbreak", "it's"} {
			m := serinv1.CanaryMetric{Name: "q", Query: `sum(x{le="{{ variables.bucket }}"})`, TemplateVariables: map[string]string{"bucket": v}}
			c := canaryWith("team-a", m)
			c.Spec.MetricsServer = listener.URL
			_, err := checker.Measure(ctx, c, serinv1.ProviderKubernetes)
			g.Expect(errors.As(err, &invalid)).To(BeTrue(), "%q: %v", v, err)
			g.Expect(err.Error()).To(ContainSubstring("templateVariables.bucket"))
		}
	})
}

// templateCluster starts an API server with Serin's CRDs and returns a
// client of it.
func templateCluster(t *testing.T, g Gomega) client.Client {
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{"../../../artifacts/crds"}})
	scheme := runtime.NewScheme()
	g.Expect(serinv1.AddToScheme(scheme)).To(Succeed())
	g.Expect(corev1.AddToScheme(scheme)).To(Succeed())
	kube, err := client.New(env.Config, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	return kube
}

// fixedValue is a backend that always measures 1.
type fixedValue struct{}

func (fixedValue) Query(context.Context, string, time.Duration) (float64, error) { return 1, nil }

// TestControllerAWSIdentityIsLentToSharedTemplatesOnly: a cloudwatch
// template without a secretRef queries with the controller's own AWS
// identity only when the operator enabled it, the template lives in a
// shared namespace (which only the operator writes) and it keeps the
// regional endpoint. A tenant's template would otherwise query CloudWatch
// as the controller.
func TestControllerAWSIdentityIsLentToSharedTemplatesOnly(t *testing.T) {
	g := NewWithT(t)
	kube := templateCluster(t, g)
	ctx := context.Background()
	for _, ns := range []string{"shared", "apps"} {
		g.Expect(kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	template := func(ns, name, address string) {
		g.Expect(kube.Create(ctx, &serinv1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: serinv1.MetricTemplateSpec{
				Provider: serinv1.MetricTemplateProvider{Type: "cloudwatch", Region: "eu-west-1", Address: address},
				Query:    `[{"Id":"e1","Expression":"1"}]`,
			},
		})).To(Succeed())
	}
	template("shared", "errors", "")
	template("shared", "errors-elsewhere", "https://collector.example.com")
	template("apps", "errors", "")

	identity := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}, nil
	})
	var lent []bool
	checker := &metrics.Checker{Reader: kube, AWS: identity, Refs: refpolicy.Policy{Shared: []string{"shared"}},
		NewProvider: func(cfg providers.Config) (providers.Provider, error) {
			lent = append(lent, cfg.AWS != nil)
			return fixedValue{}, nil
		}}
	measure := func(c *metrics.Checker, ns, name string) error {
		m := serinv1.CanaryMetric{Name: "errors", TemplateRef: &serinv1.CrossNamespaceObjectReference{Name: name, Namespace: ns},
			ThresholdRange: &serinv1.CanaryThresholdRange{Max: new(5.0)}}
		_, err := c.Measure(ctx, canaryWith("apps", m), serinv1.ProviderKubernetes)
		return err
	}

	g.Expect(measure(checker, "shared", "errors")).To(Succeed())
	g.Expect(lent).To(Equal([]bool{true}))
	g.Expect(measure(checker, "apps", "errors")).To(MatchError(ContainSubstring("serves only templates of the shared namespaces (shared)")))
	g.Expect(measure(checker, "shared", "errors-elsewhere")).To(MatchError(ContainSubstring("regional endpoint only")))
	withoutIdentity := *checker
	withoutIdentity.AWS = nil
	g.Expect(measure(&withoutIdentity, "shared", "errors")).To(MatchError(ContainSubstring("--aws-default-credentials")))
	g.Expect(lent).To(HaveLen(1), "no backend was built for a refused template")
}

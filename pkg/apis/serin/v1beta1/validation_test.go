package v1beta1_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/e2e/testenv"
)

// TestAdmission applies the generated CRDs to a real kube-apiserver and checks
// that the valid examples are accepted (and read back with their defaults)
// while each invalid spec is rejected with a message naming the field.
func TestAdmission(t *testing.T) {
	env := testenv.StartForTest(t, testenv.Options{
		Mode:     testenv.APIServer,
		CRDPaths: []string{"../../../../artifacts/crds"},
	})
	scheme := runtime.NewScheme()
	if err := serinv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "admission"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}

	t.Run("valid examples are accepted", func(t *testing.T) {
		files, err := filepath.Glob("testdata/valid/*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if len(files) < 6 {
			t.Fatalf("found %d examples in testdata/valid", len(files))
		}
		for _, f := range files {
			obj := readObject(t, f)
			obj.SetNamespace(ns.Name)
			if err := c.Create(ctx, obj); err != nil {
				t.Errorf("%s rejected: %v", f, err)
			}
		}
	})

	t.Run("defaults are applied and fields round-trip", func(t *testing.T) {
		g := NewWithT(t)
		var progressive serinv1.Canary
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "podinfo"}, &progressive)).To(Succeed())
		a := progressive.Spec.Analysis
		g.Expect(a.StepWeight).To(Equal(5))
		g.Expect(a.MaxWeight).To(Equal(50))
		g.Expect(*a.Metrics[1].ThresholdRange.Max).To(Equal(500.5))
		g.Expect(a.Webhooks[1].Type).To(Equal(serinv1.RolloutHook), "webhook type defaults to rollout")
		g.Expect(string(progressive.Spec.Service.TrafficPolicy.Raw)).To(ContainSubstring("ISTIO_MUTUAL"))
		g.Expect(progressive.Status.ObservedGeneration).To(Equal(int64(-1)))

		var bg serinv1.Canary
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "podinfo-bg"}, &bg)).To(Succeed())
		g.Expect(bg.Spec.Analysis.Iterations).To(Equal(10))
		g.Expect(bg.Spec.Service.TargetPort.String()).To(Equal("http"))

		var sw serinv1.Canary
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "shop"}, &sw)).To(Succeed())
		g.Expect(sw.Spec.TargetRef.Kind).To(Equal("Deployment"), "targetRef.kind defaults to Deployment")
		g.Expect(sw.Spec.Analysis.Threshold).To(Equal(5), "threshold defaults to 5")
		g.Expect(sw.Spec.Analysis.StepWeights).To(Equal([]int{1, 5, 10, 25, 50, 80}))

		var ab serinv1.Canary
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "agent"}, &ab)).To(Succeed())
		g.Expect(ab.Spec.Analysis.Match).To(HaveLen(2))
		g.Expect(ab.Spec.Service.GatewayRefs[0].Name).To(BeEquivalentTo("gateway"))
	})

	for _, tc := range invalidCases() {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			obj := readObject(t, tc.base)
			obj.SetNamespace(ns.Name)
			obj.SetName("invalid")
			tc.mutate(t, obj.Object)
			err := c.Create(ctx, obj)
			if err == nil {
				t.Fatalf("accepted, want a rejection naming %q", tc.want)
			}
			for _, want := range strings.Split(tc.want, "|") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("rejection %q does not contain %q", err.Error(), want)
				}
			}
		})
	}
}

type invalidCase struct {
	name   string
	base   string
	mutate func(t *testing.T, obj map[string]any)
	// want holds the fragments the rejection must contain, separated by |.
	want string
}

const (
	blueGreen   = "testdata/valid/canary-bluegreen.yaml"
	progressive = "testdata/valid/canary-progressive.yaml"
	stepWeights = "testdata/valid/canary-stepweights.yaml"
	template    = "testdata/valid/metrictemplate.yaml"
	provider    = "testdata/valid/alertprovider.yaml"
)

func invalidCases() []invalidCase {
	set := func(value any, path ...string) func(*testing.T, map[string]any) {
		return func(t *testing.T, obj map[string]any) {
			if err := unstructured.SetNestedField(obj, value, path...); err != nil {
				t.Fatal(err)
			}
		}
	}
	unset := func(path ...string) func(*testing.T, map[string]any) {
		return func(_ *testing.T, obj map[string]any) { unstructured.RemoveNestedField(obj, path...) }
	}
	both := func(fs ...func(*testing.T, map[string]any)) func(*testing.T, map[string]any) {
		return func(t *testing.T, obj map[string]any) {
			for _, f := range fs {
				f(t, obj)
			}
		}
	}
	analysis := func(field string) []string { return []string{"spec", "analysis", field} }
	firstWebhook := func(t *testing.T, obj map[string]any, field string, value any) {
		hooks, _, _ := unstructured.NestedSlice(obj, analysis("webhooks")...)
		hooks[0].(map[string]any)[field] = value
		if err := unstructured.SetNestedSlice(obj, hooks, analysis("webhooks")...); err != nil {
			t.Fatal(err)
		}
	}
	metric := func(m map[string]any) func(*testing.T, map[string]any) {
		return func(t *testing.T, obj map[string]any) {
			if err := unstructured.SetNestedSlice(obj, []any{m}, analysis("metrics")...); err != nil {
				t.Fatal(err)
			}
		}
	}
	const exactlyOne = "spec.analysis|exactly one of iterations, stepWeight or stepWeights must be set"
	return []invalidCase{
		{"iterations with stepWeight", blueGreen, set(int64(10), analysis("stepWeight")...), exactlyOne},
		{"stepWeight with stepWeights", progressive, set([]any{int64(10), int64(20)}, analysis("stepWeights")...), exactlyOne},
		{"no schedule", blueGreen, unset(analysis("iterations")...), exactlyOne},
		{"stepWeight 0", progressive, set(int64(0), analysis("stepWeight")...), "spec.analysis.stepWeight|greater than or equal to 1"},
		{"stepWeight 101", progressive, both(unset(analysis("maxWeight")...), set(int64(101), analysis("stepWeight")...)), "spec.analysis.stepWeight|less than or equal to 100"},
		{"maxWeight 0", progressive, set(int64(0), analysis("maxWeight")...), "spec.analysis.maxWeight|greater than or equal to 1"},
		{"maxWeight 120", progressive, set(int64(120), analysis("maxWeight")...), "spec.analysis.maxWeight|less than or equal to 100"},
		{"stepWeight above maxWeight", progressive, set(int64(60), analysis("stepWeight")...), "spec.analysis.stepWeight|stepWeight must not exceed maxWeight"},
		{"stepWeights decreasing", stepWeights, set([]any{int64(10), int64(5), int64(20)}, analysis("stepWeights")...), "spec.analysis.stepWeights|stepWeights must be strictly increasing"},
		{"stepWeights repeated", stepWeights, set([]any{int64(10), int64(10), int64(20)}, analysis("stepWeights")...), "spec.analysis.stepWeights|stepWeights must be strictly increasing"},
		{"stepWeights 0", stepWeights, set([]any{int64(0), int64(10)}, analysis("stepWeights")...), "spec.analysis.stepWeights[0]|greater than or equal to 1"},
		{"stepWeights above 100", stepWeights, set([]any{int64(50), int64(150)}, analysis("stepWeights")...), "spec.analysis.stepWeights[1]|less than or equal to 100"},
		{"interval not a duration", blueGreen, set("often", analysis("interval")...), "spec.analysis.interval|interval must be a duration of at least 10s"},
		{"interval under 10s", blueGreen, set("5s", analysis("interval")...), "spec.analysis.interval|interval must be a duration of at least 10s"},
		{"interval missing", blueGreen, unset(analysis("interval")...), "spec.analysis.interval|Required value"},
		{"threshold 0", blueGreen, set(int64(0), analysis("threshold")...), "spec.analysis.threshold|greater than or equal to 1"},
		{"primaryReadyThreshold 101", progressive, set(int64(101), analysis("primaryReadyThreshold")...), "spec.analysis.primaryReadyThreshold|less than or equal to 100"},
		{"canaryReadyThreshold -1", progressive, set(int64(-1), analysis("canaryReadyThreshold")...), "spec.analysis.canaryReadyThreshold|greater than or equal to 0"},
		{"metric without query", blueGreen, metric(map[string]any{"name": "error-rate", "thresholdRange": map[string]any{"max": int64(1)}}), "spec.analysis.metrics[0]|a metric must be built-in (request-success-rate, request-duration) or set templateRef or query"},
		{"thresholdRange min above max", blueGreen, metric(map[string]any{"name": "request-success-rate", "thresholdRange": map[string]any{"min": int64(99), "max": int64(90)}}), "spec.analysis.metrics[0].thresholdRange|thresholdRange.min must not exceed thresholdRange.max"},
		{"metric interval not a duration", blueGreen, metric(map[string]any{"name": "request-duration", "interval": "1 minute"}), "spec.analysis.metrics[0].interval|interval must be a positive duration"},
		{"unknown webhook type", blueGreen, func(t *testing.T, obj map[string]any) { firstWebhook(t, obj, "type", "pre-deploy") }, `spec.analysis.webhooks[0].type|Unsupported value: "pre-deploy"`},
		{"relative webhook url", blueGreen, func(t *testing.T, obj map[string]any) { firstWebhook(t, obj, "url", "/gate/check") }, "spec.analysis.webhooks[0].url|url must be an absolute http or https URL"},
		{"ftp webhook url", blueGreen, func(t *testing.T, obj map[string]any) { firstWebhook(t, obj, "url", "ftp://tester/") }, "spec.analysis.webhooks[0].url|url must be an absolute http or https URL"},
		{"webhook timeout not a duration", blueGreen, func(t *testing.T, obj map[string]any) { firstWebhook(t, obj, "timeout", "10") }, "spec.analysis.webhooks[0].timeout|timeout must be a positive duration"},
		{"webhook retries above 10", progressive, func(t *testing.T, obj map[string]any) { firstWebhook(t, obj, "retries", int64(11)) }, "spec.analysis.webhooks[0].retries|less than or equal to 10"},
		{"StatefulSet target", blueGreen, set("StatefulSet", "spec", "targetRef", "kind"), `spec.targetRef.kind|Unsupported value: "StatefulSet"`},
		{"target without name", blueGreen, unset("spec", "targetRef", "name"), "spec.targetRef.name|Required value"},
		{"unknown provider", blueGreen, set("linkerd", "spec", "provider"), `spec.provider|Unsupported value: "linkerd"`},
		{"service port out of range", blueGreen, set(int64(70000), "spec", "service", "port"), "spec.service.port|less than or equal to 65535"},
		{"mirrorWeight without mirror", stepWeights, set(false, analysis("mirror")...), "spec.analysis.mirrorWeight|mirrorWeight requires mirror: true"},
		{"metricsServer not a URL", blueGreen, set("prometheus:9090", "spec", "metricsServer"), "spec.metricsServer|metricsServer must be an absolute http or https URL"},
		{"unknown alert severity", progressive, func(t *testing.T, obj map[string]any) {
			alerts, _, _ := unstructured.NestedSlice(obj, analysis("alerts")...)
			alerts[0].(map[string]any)["severity"] = "critical"
			if err := unstructured.SetNestedSlice(obj, alerts, analysis("alerts")...); err != nil {
				t.Fatal(err)
			}
		}, `spec.analysis.alerts[0].severity|Unsupported value: "critical"`},
		{"unknown metric provider type", template, set("splunk", "spec", "provider", "type"), `spec.provider.type|Unsupported value: "splunk"`},
		{"metric template address not a URL", template, set("prometheus:9090", "spec", "provider", "address"), "spec.provider.address|address must be an absolute http or https URL"},
		{"alert provider without address", provider, unset("spec", "secretRef"), "spec|one of address or secretRef must be set"},
		{"unknown alert provider type", provider, set("pagerduty", "spec", "type"), `spec.type|Unsupported value: "pagerduty"`},
	}
}

func readObject(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	obj := &unstructured.Unstructured{}
	if err := yaml.NewYAMLOrJSONDecoder(f, 4096).Decode(&obj.Object); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return obj
}

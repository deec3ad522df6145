package v1beta1_test

import (
	"context"
	"fmt"
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

	"github.com/serin-dev/serin/pkg/testharness/testenv"
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

	for i, tc := range acceptedCases() {
		t.Run("accepts "+tc.name, func(t *testing.T) {
			obj := readObject(t, tc.base)
			obj.SetNamespace(ns.Name)
			obj.SetName(fmt.Sprintf("accepted-%d", i))
			tc.mutate(t, obj.Object)
			if err := c.Create(ctx, obj); err != nil {
				t.Errorf("rejected: %v", err)
			}
		})
	}

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
	// want holds the fragments the rejection must contain, separated by |
	// (empty in acceptedCases).
	want string
}

const (
	blueGreen   = "testdata/valid/canary-bluegreen.yaml"
	progressive = "testdata/valid/canary-progressive.yaml"
	stepWeights = "testdata/valid/canary-stepweights.yaml"
	flagRollout = "testdata/valid/canary-flags.yaml"
	abTesting   = "testdata/valid/canary-ab.yaml"
	nginx       = "testdata/valid/canary-nginx.yaml"
	template    = "testdata/valid/metrictemplate.yaml"
	provider    = "testdata/valid/alertprovider.yaml"
)

type mutation = func(*testing.T, map[string]any)

func set(value any, path ...string) mutation {
	return func(t *testing.T, obj map[string]any) {
		if err := unstructured.SetNestedField(obj, value, path...); err != nil {
			t.Fatal(err)
		}
	}
}

func unset(path ...string) mutation {
	return func(_ *testing.T, obj map[string]any) { unstructured.RemoveNestedField(obj, path...) }
}

func all(fs ...mutation) mutation {
	return func(t *testing.T, obj map[string]any) {
		for _, f := range fs {
			f(t, obj)
		}
	}
}

func analysis(field string) []string { return []string{"spec", "analysis", field} }

func service(field string) []string { return []string{"spec", "service", field} }

// firstWebhook sets a field of the first webhook.
func firstWebhook(field string, value any) mutation {
	return func(t *testing.T, obj map[string]any) {
		hooks, _, _ := unstructured.NestedSlice(obj, analysis("webhooks")...)
		hooks[0].(map[string]any)[field] = value
		if err := unstructured.SetNestedSlice(obj, hooks, analysis("webhooks")...); err != nil {
			t.Fatal(err)
		}
	}
}

// metric replaces the metrics with m.
func metric(m map[string]any) mutation {
	return func(t *testing.T, obj map[string]any) {
		if err := unstructured.SetNestedSlice(obj, []any{m}, analysis("metrics")...); err != nil {
			t.Fatal(err)
		}
	}
}

var headerMatch = []any{map[string]any{"headers": map[string]any{"x-canary": map[string]any{"exact": "insider"}}}}

// acceptedCases are edge cases of the rules that must stay valid, mostly
// because the provider the rule depends on is not known at admission.
func acceptedCases() []invalidCase {
	return []invalidCase{
		{name: "match with stepWeight without an explicit provider", base: abTesting, mutate: all(unset("spec", "provider"), unset(analysis("iterations")...), set(int64(10), analysis("stepWeight")...))},
		{name: "match with stepWeights on istio", base: stepWeights, mutate: set(headerMatch, analysis("match")...)},
		{name: "mirror and sessionAffinity on gatewayapi:v1beta1", base: stepWeights, mutate: all(set("gatewayapi:v1beta1", "spec", "provider"), set([]any{map[string]any{"name": "gateway"}}, service("gatewayRefs")...))},
		{name: "mirror and sessionAffinity without an explicit provider", base: stepWeights, mutate: unset("spec", "provider")},
		{name: "nginx without ingressRef or explicit provider", base: nginx, mutate: all(unset("spec", "provider"), unset("spec", "ingressRef"))},
		{name: "tcp with weights only on istio", base: progressive, mutate: set("tcp", service("appProtocol")...)},
		{name: "tcp with mirror and sessionAffinity without an explicit provider", base: stepWeights, mutate: all(unset("spec", "provider"), set("tcp", service("appProtocol")...))},
		{name: "target name that is no DNS-1035 label with service.name", base: blueGreen, mutate: all(set("pod.info-"+strings.Repeat("x", 60), "spec", "targetRef", "name"), set("podinfo", service("name")...))},
		{name: "service.name of 55 characters", base: stepWeights, mutate: set("s"+strings.Repeat("-x", 27), service("name")...)},
		{name: "maxWeight equal to the last stepWeights", base: stepWeights, mutate: set(int64(80), analysis("maxWeight")...)},
		{name: "metric interval of 1s", base: blueGreen, mutate: metric(map[string]any{"name": "request-duration", "interval": "1s", "thresholdRange": map[string]any{"max": int64(500)}})},
		{name: "thresholdRange with min 0", base: blueGreen, mutate: metric(map[string]any{"name": "request-success-rate", "thresholdRange": map[string]any{"min": int64(0)}})},
		{name: "webhook timeout of 15m", base: blueGreen, mutate: firstWebhook("timeout", "15m")},
		{name: "ConfigMap target without spec.flags", base: flagRollout, mutate: unset("spec", "flags")},
		{name: "interval under 10s, which runs at 10s as in Flagger", base: blueGreen, mutate: set("5s", analysis("interval")...)},
		{name: "Flagger's deprecated threshold on a built-in metric", base: blueGreen, mutate: metric(map[string]any{"name": "request-duration", "threshold": int64(500)})},
		{name: "ConfigMap target with stepWeight", base: flagRollout, mutate: all(unset(analysis("stepWeights")...), set(int64(10), analysis("stepWeight")...))},
		{name: "Flagger's cookie attributes, delegation, headless Services, trafficDistribution, backendTimeout, unmanagedMetadata and disableTLS", base: stepWeights, mutate: all(
			set(map[string]any{"cookieName": "canary", "primaryCookieName": "primary", "maxAge": int64(60), "domain": "example.com", "path": "/app",
				"httpOnly": true, "secure": true, "sameSite": "None", "partitioned": true}, analysis("sessionAffinity")...),
			set(true, service("delegation")...), set(true, service("headless")...), set("PreferClose", service("trafficDistribution")...),
			set("5s", service("backendTimeout")...),
			set(map[string]any{"labels": []any{"team"}, "annotations": []any{"owner"}}, service("unmanagedMetadata")...),
		)},
		{name: "a webhook with disableTLS", base: blueGreen, mutate: firstWebhook("disableTLS", true)},
		{name: "cloudwatch with region and no address", base: template, mutate: all(set("cloudwatch", "spec", "provider", "type"), unset("spec", "provider", "address"), set("eu-west-1", "spec", "provider", "region"))},
	}
}

func invalidCases() []invalidCase {
	const exactlyOne = "spec.analysis|exactly one of iterations, stepWeight or stepWeights must be set"
	return []invalidCase{
		{"iterations with stepWeight", blueGreen, set(int64(10), analysis("stepWeight")...), exactlyOne},
		{"stepWeight with stepWeights", progressive, set([]any{int64(10), int64(20)}, analysis("stepWeights")...), exactlyOne},
		{"no schedule", blueGreen, unset(analysis("iterations")...), exactlyOne},
		{"stepWeight 0", progressive, set(int64(0), analysis("stepWeight")...), "spec.analysis.stepWeight|greater than or equal to 1"},
		{"stepWeight 101", progressive, all(unset(analysis("maxWeight")...), set(int64(101), analysis("stepWeight")...)), "spec.analysis.stepWeight|less than or equal to 100"},
		{"maxWeight 0", progressive, set(int64(0), analysis("maxWeight")...), "spec.analysis.maxWeight|greater than or equal to 1"},
		{"maxWeight 120", progressive, set(int64(120), analysis("maxWeight")...), "spec.analysis.maxWeight|less than or equal to 100"},
		{"stepWeight above maxWeight", progressive, set(int64(60), analysis("stepWeight")...), "spec.analysis.stepWeight|stepWeight must not exceed maxWeight"},
		{"stepWeights decreasing", stepWeights, set([]any{int64(10), int64(5), int64(20)}, analysis("stepWeights")...), "spec.analysis.stepWeights|stepWeights must be strictly increasing"},
		{"stepWeights repeated", stepWeights, set([]any{int64(10), int64(10), int64(20)}, analysis("stepWeights")...), "spec.analysis.stepWeights|stepWeights must be strictly increasing"},
		{"stepWeights 0", stepWeights, set([]any{int64(0), int64(10)}, analysis("stepWeights")...), "spec.analysis.stepWeights[0]|greater than or equal to 1"},
		{"stepWeights above 100", stepWeights, set([]any{int64(50), int64(150)}, analysis("stepWeights")...), "spec.analysis.stepWeights[1]|less than or equal to 100"},
		{"interval not a duration", blueGreen, set("often", analysis("interval")...), "spec.analysis.interval|interval must be a positive duration"},
		{"interval of 0s", blueGreen, set("0s", analysis("interval")...), "spec.analysis.interval|interval must be a positive duration"},
		{"interval missing", blueGreen, unset(analysis("interval")...), "spec.analysis.interval|Required value"},
		{"threshold 0", blueGreen, set(int64(0), analysis("threshold")...), "spec.analysis.threshold|greater than or equal to 1"},
		{"primaryReadyThreshold 101", progressive, set(int64(101), analysis("primaryReadyThreshold")...), "spec.analysis.primaryReadyThreshold|less than or equal to 100"},
		{"canaryReadyThreshold -1", progressive, set(int64(-1), analysis("canaryReadyThreshold")...), "spec.analysis.canaryReadyThreshold|greater than or equal to 0"},
		{"metric without query", blueGreen, metric(map[string]any{"name": "error-rate", "thresholdRange": map[string]any{"max": int64(1)}}), "spec.analysis.metrics[0]|a metric must be built-in (request-success-rate, request-duration) or set templateRef or query"},
		{"thresholdRange min above max", blueGreen, metric(map[string]any{"name": "request-success-rate", "thresholdRange": map[string]any{"min": int64(99), "max": int64(90)}}), "spec.analysis.metrics[0].thresholdRange|thresholdRange.min must not exceed thresholdRange.max"},
		{"metric interval not a duration", blueGreen, metric(map[string]any{"name": "request-duration", "interval": "1 minute"}), "spec.analysis.metrics[0].interval|interval must be a duration of at least 1s"},
		{"unknown webhook type", blueGreen, firstWebhook("type", "pre-deploy"), `spec.analysis.webhooks[0].type|Unsupported value: "pre-deploy"`},
		{"relative webhook url", blueGreen, firstWebhook("url", "/gate/check"), "spec.analysis.webhooks[0].url|url must be an absolute http or https URL"},
		{"ftp webhook url", blueGreen, firstWebhook("url", "ftp://tester/"), "spec.analysis.webhooks[0].url|url must be an absolute http or https URL"},
		{"webhook timeout not a duration", blueGreen, firstWebhook("timeout", "10"), "spec.analysis.webhooks[0].timeout|timeout must be a positive duration"},
		{"webhook retries above 10", progressive, firstWebhook("retries", int64(11)), "spec.analysis.webhooks[0].retries|less than or equal to 10"},
		{"threshold on a custom metric", blueGreen, metric(map[string]any{"name": "errors", "query": "sum(up)", "threshold": int64(1)}), "spec.analysis.metrics[0].threshold|applies to the built-in metrics only"},
		{"a metric without a bound", blueGreen, metric(map[string]any{"name": "request-success-rate", "interval": "1m"}), "spec.analysis.metrics[0]|a metric needs a bound"},
		{"Deployment without service", blueGreen, unset("spec", "service"), "spec.service|service is required for a Deployment or DaemonSet target"},
		{"flags on a Deployment", blueGreen, set(map[string]any{"key": "flags.json"}, "spec", "flags"), "spec.flags|flags needs targetRef.kind ConfigMap"},
		{"ConfigMap target in apps/v1", flagRollout, set("apps/v1", "spec", "targetRef", "apiVersion"), "spec.targetRef.apiVersion|targetRef.apiVersion must be apps/v1 for a Deployment or DaemonSet and v1 for a ConfigMap"},
		{"Deployment in v1", blueGreen, set("v1", "spec", "targetRef", "apiVersion"), "spec.targetRef.apiVersion|targetRef.apiVersion must be apps/v1"},
		{"ConfigMap target with a provider", flagRollout, set("istio", "spec", "provider"), "spec.targetRef|a ConfigMap target rolls out flags through <target>-primary"},
		{"ConfigMap target with a service", flagRollout, set(map[string]any{"port": int64(80)}, "spec", "service"), "spec.targetRef|provider, service, ingressRef and autoscalerRef do not apply"},
		{"ConfigMap target with iterations", flagRollout, all(unset(analysis("stepWeights")...), set(int64(5), analysis("iterations")...)), "spec.analysis|a ConfigMap target's rollout is stepped by weight"},
		{"ConfigMap target with match", flagRollout, set(headerMatch, analysis("match")...), "spec.analysis|analysis.match, mirror, sessionAffinity and iterations do not apply"},
		{"flags key with a slash", flagRollout, set("conf/flags.json", "spec", "flags", "key"), "spec.flags.key|should match"},
		{"StatefulSet target", blueGreen, set("StatefulSet", "spec", "targetRef", "kind"), `spec.targetRef.kind|Unsupported value: "StatefulSet"`},
		{"target without name", blueGreen, unset("spec", "targetRef", "name"), "spec.targetRef.name|Required value"},
		{"unknown provider", blueGreen, set("linkerd", "spec", "provider"), `spec.provider|Unsupported value: "linkerd"`},
		{"service port out of range", blueGreen, set(int64(70000), "spec", "service", "port"), "spec.service.port|less than or equal to 65535"},
		{"mirrorWeight without mirror", stepWeights, set(false, analysis("mirror")...), "spec.analysis.mirrorWeight|mirrorWeight requires mirror: true"},
		{"metricsServer not a URL", blueGreen, set("prometheus:9090", "spec", "metricsServer"), "spec.metricsServer|metricsServer must be an absolute http or https URL"},
		{"stepWeights above maxWeight", stepWeights, set(int64(50), analysis("maxWeight")...), "spec.analysis.stepWeights|stepWeights must not exceed maxWeight"},
		{"match with stepWeight on nginx", nginx, set(headerMatch, analysis("match")...), "spec.analysis.match|analysis.match with stepWeight or stepWeights needs provider istio"},
		{"match with stepWeights on gatewayapi", abTesting, all(unset(analysis("iterations")...), set([]any{int64(10), int64(20)}, analysis("stepWeights")...)), "spec.analysis.match|analysis.match with stepWeight or stepWeights needs provider istio"},
		{"match with stepWeight on contour", progressive, all(set("contour", "spec", "provider"), set(headerMatch, analysis("match")...)), "spec.analysis.match|analysis.match with stepWeight or stepWeights needs provider istio"},
		{"metric with query and templateRef", blueGreen, metric(map[string]any{"name": "errors", "query": "sum(up)", "templateRef": map[string]any{"name": "error-rate"}, "thresholdRange": map[string]any{"max": int64(1)}}), "spec.analysis.metrics[0]|query and templateRef are mutually exclusive"},
		{"templateVariables on a built-in metric", blueGreen, metric(map[string]any{"name": "request-success-rate", "templateVariables": map[string]any{"route": "podinfo"}, "thresholdRange": map[string]any{"min": int64(99)}}), "spec.analysis.metrics[0].templateVariables|templateVariables requires templateRef"},
		{"service.name with upper case", stepWeights, set("Shop", service("name")...), "spec.service.name|service.name must be a DNS-1035 label"},
		{"service.name with a dot", stepWeights, set("shop.svc", service("name")...), "spec.service.name|service.name must be a DNS-1035 label"},
		{"service.name starting with a digit", stepWeights, set("1shop", service("name")...), "spec.service.name|service.name must be a DNS-1035 label"},
		{"service.name ending with a dash", stepWeights, set("shop-", service("name")...), "spec.service.name|service.name must be a DNS-1035 label"},
		{"service.name over 55 characters", stepWeights, set(strings.Repeat("s", 56), service("name")...), "spec.service.name|55"},
		{"target name not a DNS-1035 label without service.name", blueGreen, set("pod.info", "spec", "targetRef", "name"), "spec.targetRef.name|targetRef.name names the Services when service.name is empty"},
		{"target name over 55 characters without service.name", blueGreen, set(strings.Repeat("p", 56), "spec", "targetRef", "name"), "spec.targetRef.name|targetRef.name names the Services when service.name is empty"},
		{"nginx without ingressRef", nginx, unset("spec", "ingressRef"), "spec.ingressRef|provider nginx requires ingressRef"},
		{"gatewayapi without gatewayRefs", abTesting, all(set("gatewayapi", "spec", "provider"), unset(service("gatewayRefs")...)), "spec.service.gatewayRefs|provider gatewayapi requires service.gatewayRefs"},
		{"gatewayapi:v1 without gatewayRefs", abTesting, unset(service("gatewayRefs")...), "spec.service.gatewayRefs|provider gatewayapi requires service.gatewayRefs"},
		{"gatewayapi:v1beta1 with empty gatewayRefs", abTesting, all(set("gatewayapi:v1beta1", "spec", "provider"), set([]any{}, service("gatewayRefs")...)), "spec.service.gatewayRefs|provider gatewayapi requires service.gatewayRefs"},
		{"mirror on nginx", nginx, set(true, analysis("mirror")...), "spec.analysis.mirror|analysis.mirror needs provider istio or gatewayapi"},
		{"mirror on contour", progressive, all(set("contour", "spec", "provider"), set(true, analysis("mirror")...)), "spec.analysis.mirror|analysis.mirror needs provider istio or gatewayapi"},
		{"mirror on kubernetes", blueGreen, set(true, analysis("mirror")...), "spec.analysis.mirror|analysis.mirror needs provider istio or gatewayapi"},
		{"sessionAffinity on contour", stepWeights, all(set("contour", "spec", "provider"), unset(analysis("mirror")...), unset(analysis("mirrorWeight")...)), "spec.analysis.sessionAffinity|analysis.sessionAffinity needs provider istio or gatewayapi"},
		{"cookie sameSite outside the enum", stepWeights, set("Sometimes", "spec", "analysis", "sessionAffinity", "sameSite"), "spec.analysis.sessionAffinity.sameSite|Unsupported value"},
		{"cookie path with a semicolon", stepWeights, set("/a;b", "spec", "analysis", "sessionAffinity", "path"), "spec.analysis.sessionAffinity.path|should match"},
		{"cookie name with a space", stepWeights, set("serin canary", "spec", "analysis", "sessionAffinity", "cookieName"), "spec.analysis.sessionAffinity.cookieName|should match"},
		{"partitioned cookie without secure", stepWeights, set(true, "spec", "analysis", "sessionAffinity", "partitioned"), "spec.analysis.sessionAffinity.partitioned|partitioned needs secure"},
		{"sameSite None without secure", stepWeights, set("None", "spec", "analysis", "sessionAffinity", "sameSite"), "spec.analysis.sessionAffinity.sameSite|sameSite None needs secure"},
		{"primary cookie named as the canary cookie", stepWeights, func(t *testing.T, obj map[string]any) {
			name, _, _ := unstructured.NestedString(obj, "spec", "analysis", "sessionAffinity", "cookieName")
			set(name, "spec", "analysis", "sessionAffinity", "primaryCookieName")(t, obj)
		}, "spec.analysis.sessionAffinity.primaryCookieName|must differ from cookieName"},
		{"trafficDistribution outside the enum", stepWeights, set("Anywhere", service("trafficDistribution")...), "spec.service.trafficDistribution|Unsupported value"},
		{"backendTimeout that is no duration", stepWeights, set("soon", service("backendTimeout")...), "spec.service.backendTimeout|should match"},
		{"sessionAffinity on nginx", nginx, set(map[string]any{"cookieName": "canary"}, analysis("sessionAffinity")...), "spec.analysis.sessionAffinity|analysis.sessionAffinity needs provider istio or gatewayapi"},
		{"tcp with analysis.match", progressive, all(set("tcp", service("appProtocol")...), set(headerMatch, analysis("match")...)), "spec.service.appProtocol|service.appProtocol tcp routes by weight only"},
		{"tcp with A/B testing", progressive, all(set("tcp", service("appProtocol")...), unset(analysis("stepWeight")...), unset(analysis("maxWeight")...), set(int64(5), analysis("iterations")...), set(headerMatch, analysis("match")...)), "spec.service.appProtocol|service.appProtocol tcp routes by weight only"},
		{"tcp with service.match", progressive, all(set("tcp", service("appProtocol")...), set([]any{map[string]any{"uri": map[string]any{"prefix": "/api"}}}, service("match")...)), "spec.service.appProtocol|service.appProtocol tcp routes by weight only"},
		{"tcp with service.mirror", progressive, all(set("tcp", service("appProtocol")...), set([]any{map[string]any{"destination": map[string]any{"host": "shadow"}}}, service("mirror")...)), "spec.service.appProtocol|service.appProtocol tcp routes by weight only"},
		{"tcp with mirror", stepWeights, all(set("tcp", service("appProtocol")...), unset(analysis("sessionAffinity")...)), "spec.service.appProtocol|service.appProtocol tcp routes by weight only"},
		{"tcp with sessionAffinity", stepWeights, all(set("tcp", service("appProtocol")...), unset(analysis("mirror")...), unset(analysis("mirrorWeight")...)), "spec.service.appProtocol|service.appProtocol tcp routes by weight only"},
		{"empty thresholdRange", blueGreen, metric(map[string]any{"name": "request-success-rate", "thresholdRange": map[string]any{}}), "spec.analysis.metrics[0].thresholdRange|thresholdRange must set min, max or both"},
		{"metric interval under 1s", blueGreen, metric(map[string]any{"name": "request-duration", "interval": "500ms", "thresholdRange": map[string]any{"max": int64(500)}}), "spec.analysis.metrics[0].interval|interval must be a duration of at least 1s"},
		{"metric interval 0s", blueGreen, metric(map[string]any{"name": "request-duration", "interval": "0s", "thresholdRange": map[string]any{"max": int64(500)}}), "spec.analysis.metrics[0].interval|interval must be a duration of at least 1s"},
		{"webhook timeout over 15m", blueGreen, firstWebhook("timeout", "15m1s"), "spec.analysis.webhooks[0].timeout|timeout must be a positive duration of at most 15m"},
		{"webhook timeout of 1h", blueGreen, firstWebhook("timeout", "1h"), "spec.analysis.webhooks[0].timeout|timeout must be a positive duration of at most 15m"},
		{"cloudwatch without region", template, set("cloudwatch", "spec", "provider", "type"), "spec.provider.region|provider.region is required for type cloudwatch"},
		{"graphite without address", template, all(set("graphite", "spec", "provider", "type"), unset("spec", "provider", "address")), "spec.provider.address|provider.address is required for types dynatrace, graphite and influxdb"},
		{"influxdb without address", template, all(set("influxdb", "spec", "provider", "type"), unset("spec", "provider", "address")), "spec.provider.address|provider.address is required for types dynatrace, graphite and influxdb"},
		{"dynatrace without address", template, all(set("dynatrace", "spec", "provider", "type"), unset("spec", "provider", "address")), "spec.provider.address|provider.address is required for types dynatrace, graphite and influxdb"},
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

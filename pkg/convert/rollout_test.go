package convert

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

const podTemplate = `
  selector:
    matchLabels: {app: demo}
  template:
    metadata:
      labels: {app: demo}
    spec:
      containers: [{name: demo, image: demo:1}]
`

func TestRolloutCases(t *testing.T) {
	for _, c := range []struct {
		name    string
		spec    string
		related string
		// check returns what differs in the conversion, if anything.
		check    func(d *appsv1.Deployment, c *serinv1.Canary) string
		warnings []string // "path: message prefix"
	}{{
		name: "workloadRef targets the existing Deployment",
		spec: `
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web, scaleDown: onsuccess}
  strategy:
    blueGreen: {activeService: web}
`,
		check: func(d *appsv1.Deployment, c *serinv1.Canary) string {
			if d != nil {
				return "a Deployment was emitted"
			}
			return cmp.Diff(serinv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}, c.Spec.TargetRef)
		},
		warnings: []string{
			"spec.strategy.blueGreen.activeService: Serin manages Service web",
			"spec.template.spec.containers: no container port: spec.service.port is a placeholder, 80",
			"spec.workloadRef.scaleDown: not supported",
		},
	}, {
		name: "uniform weights become stepWeight and maxWeight; short pauses the minimum interval",
		spec: podTemplate + `
  strategy:
    canary:
      trafficRouting:
        plugins:
          argoproj-labs/gatewayAPI: {httpRoute: web, namespace: default}
      steps:
        - setWeight: 25
        - pause: {duration: 5}
        - setWeight: 50
        - pause: {duration: 5}
`,
		check: func(_ *appsv1.Deployment, c *serinv1.Canary) string {
			a := c.Spec.Analysis
			if a.StepWeight != 25 || a.MaxWeight != 50 || a.StepWeights != nil || a.Interval != "10s" || c.Spec.Provider != serinv1.ProviderGatewayAPI {
				return "got " + mustYAML(c.Spec)
			}
			return ""
		},
		warnings: []string{
			"spec.strategy.canary.steps: pauses of 5s: interval set to Serin's minimum, 10s",
			"spec.strategy.canary.trafficRouting.plugins.argoproj-labs/gatewayAPI: Serin generates the HTTPRoute web",
			"spec.template.spec.containers: no container port",
		},
	}, {
		name: "no trafficRouting, no pause, decreasing weight",
		spec: podTemplate + `
  strategy:
    canary:
      steps:
        - setWeight: 50
        - setWeight: 30
        - setCanaryScale: {replicas: 2}
`,
		check: func(_ *appsv1.Deployment, c *serinv1.Canary) string {
			a := c.Spec.Analysis
			if c.Spec.Provider != "" || a.StepWeight != 50 || a.MaxWeight != 50 || a.Interval != "1m" {
				return "got " + mustYAML(c.Spec)
			}
			return ""
		},
		warnings: []string{
			"spec.strategy.canary.steps: no pause duration: interval, the time between two steps, set to 1m",
			"spec.strategy.canary.steps[1].setWeight: dropped",
			"spec.strategy.canary.steps[2].setCanaryScale: not supported",
			"spec.strategy.canary.trafficRouting: absent",
			"spec.template.spec.containers: no container port",
		},
	}, {
		name: "smi routing, no weights, several ingresses",
		spec: podTemplate + `
  strategy:
    canary:
      trafficRouting:
        smi: {rootService: web}
        nginx: {stableIngresses: [a, b]}
      steps:
        - pause: {duration: 1h}
`,
		check: func(_ *appsv1.Deployment, c *serinv1.Canary) string {
			a := c.Spec.Analysis
			if a.Iterations != 1 || a.Interval != "1h" || c.Spec.IngressRef == nil || c.Spec.IngressRef.Name != "a" {
				return "got " + mustYAML(c.Spec)
			}
			return ""
		},
		warnings: []string{
			"spec.strategy.canary.steps: no setWeight step: converted to 1 blue/green iteration(s)",
			"spec.strategy.canary.trafficRouting.nginx.stableIngresses[1]: not supported",
			"spec.strategy.canary.trafficRouting.smi: no Serin router for smi",
			"spec.template.spec.containers: no container port",
		},
	}, {
		name: "blue/green iterations from autoPromotionSeconds; missing template; argument without value",
		spec: podTemplate + `
  strategy:
    blueGreen:
      activeService: web
      autoPromotionSeconds: 95
      prePromotionAnalysis:
        templates: [{templateName: gone}, {templateName: shared, clusterScope: true}]
`,
		related: `apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: shared}
spec:
  args: [{name: host}]
  metrics:
    - name: errors
      interval: 20s
      failureCondition: result[0] > 5
      consecutiveErrorLimit: 2
      provider:
        prometheus: {query: 'sum(errors{host="{{args.host}}"})'}
`,
		check: func(_ *appsv1.Deployment, c *serinv1.Canary) string {
			a := c.Spec.Analysis
			want := []serinv1.CanaryMetric{{Name: "errors", TemplateRef: &serinv1.CrossNamespaceObjectReference{Name: "shared"}, FailureCondition: "result > 5.0", ConsecutiveErrorLimit: new(2)}}
			if a.Iterations != 5 || a.Interval != "20s" || a.Threshold != 1 || c.Spec.Provider != serinv1.ProviderKubernetes {
				return "got " + mustYAML(c.Spec)
			}
			return cmp.Diff(want, a.Metrics)
		},
		warnings: []string{
			"spec.strategy.blueGreen.activeService: Serin manages Service web",
			"spec.strategy.blueGreen.prePromotionAnalysis.templates[0]: AnalysisTemplate gone is not in the input",
			"spec.strategy.blueGreen.prePromotionAnalysis.templates[1]: argument host has no value",
			"spec.template.spec.containers: no container port",
		},
	}, {
		name: "a metric without a condition is reported",
		spec: podTemplate + `
  strategy:
    blueGreen:
      activeService: web
      prePromotionAnalysis:
        templates: [{templateName: watch}]
`,
		related: `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: watch}
spec:
  metrics:
    - name: requests
      provider:
        prometheus: {query: 'sum(rate(requests_total[1m]))'}
`,
		check: func(_ *appsv1.Deployment, c *serinv1.Canary) string {
			if len(c.Spec.Analysis.Metrics) != 1 {
				return "got " + mustYAML(c.Spec)
			}
			return ""
		},
		warnings: []string{
			"spec.strategy.blueGreen.activeService: Serin manages Service web",
			"spec.strategy.blueGreen.prePromotionAnalysis.templates[0]: metric requests has neither successCondition nor failureCondition",
			"spec.template.spec.containers: no container port",
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			var obj map[string]any
			if err := yaml.Unmarshal([]byte("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web}\nspec:"+c.spec), &obj); err != nil {
				t.Fatal(err)
			}
			var related []map[string]any
			if c.related != "" {
				var r map[string]any
				if err := yaml.Unmarshal([]byte(c.related), &r); err != nil {
					t.Fatal(err)
				}
				related = append(related, r)
			}
			d, canary, warnings, err := Rollout(obj, related)
			if err != nil {
				t.Fatal(err)
			}
			if diff := c.check(d, canary); diff != "" {
				t.Error(diff)
			}
			var got []string
			for _, w := range warnings {
				if !strings.HasPrefix(w.Message, "Serin analyses Deployments") {
					got = append(got, w.Path+": "+w.Message)
				}
			}
			if len(got) != len(c.warnings) {
				t.Fatalf("warnings:\n%s\nwant prefixes:\n%s", strings.Join(got, "\n"), strings.Join(c.warnings, "\n"))
			}
			for i, w := range c.warnings {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("warning %d: %q, want prefix %q", i, got[i], w)
				}
			}
		})
	}
}

func mustYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

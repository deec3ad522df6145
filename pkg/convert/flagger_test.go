package convert

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestFlaggerCanaryValues(t *testing.T) {
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(`apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web}
spec:
  provider: nginx
  targetRef: {apiVersion: apps/v1, kind: Service, name: web}
  ingressRef: {apiVersion: networking.k8s.io/v1beta1, kind: Ingress, name: web}
  autoscalerRef: {apiVersion: keda.sh/v1alpha1, kind: ScaledObject, name: web}
  service: {port: 80}
  canaryAnalysis: {interval: 1h}
  analysis:
    interval: 1m
    iterations: 2
    webhooks: [{name: w, type: pre-promotion, url: http://x.test/}]
`), &obj); err != nil {
		t.Fatal(err)
	}
	c, warnings, err := FlaggerCanary(obj)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIVersion != "serin.dev/v1beta1" || c.Kind != "Canary" || c.Spec.Analysis.Interval != "1m" {
		t.Errorf("canary %+v", c)
	}
	if c.Spec.IngressRef.APIVersion != "networking.k8s.io/v1" {
		t.Errorf("ingressRef apiVersion %q not rewritten", c.Spec.IngressRef.APIVersion)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.Path)
	}
	want := []string{
		"spec.analysis.webhooks[0].type",
		"spec.autoscalerRef.apiVersion",
		"spec.autoscalerRef.kind",
		"spec.canaryAnalysis",
		"spec.ingressRef.apiVersion",
		"spec.targetRef.kind",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warning paths (-want +got):\n%s\n%v", diff, warnings)
	}
}

func TestAnalysisTemplateNames(t *testing.T) {
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(`apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: single, namespace: apps}
spec:
  metrics:
    - name: rate
      provider:
        prometheus: {address: http://p:9090, query: 'sum(x{a="{{args.a_b}}"})', timeout: 1m}
`), &obj); err != nil {
		t.Fatal(err)
	}
	mts, warnings, err := AnalysisTemplate(obj)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("err %v, warnings %v", err, warnings)
	}
	want := serinv1.MetricTemplateSpec{
		Provider: serinv1.MetricTemplateProvider{Type: "prometheus", Address: "http://p:9090", Timeout: "1m"},
		Query:    `sum(x{a="{{ variables.a_b }}"})`,
	}
	if len(mts) != 1 || mts[0].Name != "single" || mts[0].Namespace != "apps" {
		t.Fatalf("templates %+v", mts)
	}
	if diff := cmp.Diff(want, mts[0].Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
}

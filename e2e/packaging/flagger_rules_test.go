package packaging_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// flaggerRulesTest is a promtool unit test of the Flagger recording rules:
// Serin's series of two Canaries in, Flagger's names and labels out.
const flaggerRulesTest = `rule_files:
  - %s
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'serin_info{version="v1.2.3",commit="abc1234",go_version="go1.26.8"}'
        values: '1 1'
      - series: 'serin_canary_info{name="web-canary",namespace="shop",provider="istio",strategy="canary",target="web"}'
        values: '1 1'
      - series: 'serin_canary_info{name="api",namespace="shop",provider="kubernetes",strategy="bluegreen",target="api"}'
        values: '1 1'
      - series: 'serin_canary_status{name="web-canary",namespace="shop",provider="istio",strategy="canary"}'
        values: '0 2'
      - series: 'serin_canary_status{name="api",namespace="shop",provider="kubernetes",strategy="bluegreen"}'
        values: '1 1'
      - series: 'serin_canary_weight{name="web-canary",namespace="shop",provider="istio",strategy="canary"}'
        values: '30 0'
      - series: 'serin_canary_metric_value{name="web-canary",namespace="shop",provider="istio",strategy="canary",metric="request-success-rate"}'
        values: '99.5 97'
      - series: 'serin_canary_duration_seconds_count{name="web-canary",namespace="shop",provider="istio",strategy="canary"}'
        values: '0 1'
      - series: 'serin_canary_duration_seconds_bucket{name="web-canary",namespace="shop",provider="istio",strategy="canary",le="120"}'
        values: '0 1'
      - series: 'serin_canary_failures_total{name="web-canary",namespace="shop",provider="istio",strategy="canary"}'
        values: '0 1'
    promql_expr_test:
      - expr: flagger_info
        eval_time: 1m
        exp_samples:
          - labels: 'flagger_info{version="v1.2.3",mesh_provider="serin"}'
            value: 1
      - expr: flagger_canary_total
        eval_time: 1m
        exp_samples:
          - labels: 'flagger_canary_total{namespace="shop"}'
            value: 2
      - expr: flagger_canary_status
        eval_time: 1m
        exp_samples:
          - labels: 'flagger_canary_status{name="web",namespace="shop"}'
            value: 2
          - labels: 'flagger_canary_status{name="api",namespace="shop"}'
            value: 1
      - expr: flagger_canary_weight
        eval_time: 0m
        exp_samples:
          - labels: 'flagger_canary_weight{workload="web",namespace="shop"}'
            value: 30
          - labels: 'flagger_canary_weight{workload="web-primary",namespace="shop"}'
            value: 70
      - expr: flagger_canary_metric_analysis
        eval_time: 1m
        exp_samples:
          - labels: 'flagger_canary_metric_analysis{name="web",namespace="shop",metric="request-success-rate"}'
            value: 97
      - expr: flagger_canary_duration_seconds_count
        eval_time: 1m
        exp_samples:
          - labels: 'flagger_canary_duration_seconds_count{name="web",namespace="shop"}'
            value: 1
      - expr: flagger_canary_duration_seconds_bucket
        eval_time: 1m
        exp_samples:
          - labels: 'flagger_canary_duration_seconds_bucket{name="web",namespace="shop",le="120"}'
            value: 1
      - expr: flagger_canary_failures_total
        eval_time: 1m
        exp_samples:
          - labels: 'flagger_canary_failures_total{name="web",namespace="shop",deployment_strategy="canary"}'
            value: 1
`

// TestFlaggerRecordingRules runs the chart's Flagger recording rules
// (charts/serin/files/flagger-rules.yaml) through promtool's rule unit
// tests: Flagger's series come out under Flagger's names and labels, named
// after the target, with the primary's weight as the rest of 100.
func TestFlaggerRecordingRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool (Debian's prometheus package, which make testdeps installs) is needed: %v", err)
	}
	rules, err := filepath.Abs(filepath.Join(repoRoot, "charts", "serin", "files", "flagger-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	test := filepath.Join(t.TempDir(), "rules_test.yaml")
	if err := os.WriteFile(test, []byte(fmt.Sprintf(flaggerRulesTest, rules)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", test).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

var now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestJudge(t *testing.T) {
	successRate := serinv1.CanaryMetric{Name: "request-success-rate", ThresholdRange: &serinv1.CanaryThresholdRange{Min: new(99.0)}}
	latency := serinv1.CanaryMetric{Name: "request-duration", ThresholdRange: &serinv1.CanaryThresholdRange{Max: new(500.0)}}
	errorRate := serinv1.CanaryMetric{Name: "error-rate", Query: "x", SuccessCondition: "result < 0.5 && result >= 0"}
	notNegative := serinv1.CanaryMetric{Name: "saturation", Query: "x", FailureCondition: "result < 0.0"}
	streak := func(n int) *serinv1.MetricStatus {
		return &serinv1.MetricStatus{Name: "request-success-rate", ConsecutiveErrors: n, Errors: n, Verdict: serinv1.MetricError}
	}
	tests := []struct {
		name        string
		metric      serinv1.CanaryMetric
		meas        Measurement
		prev        *serinv1.MetricStatus
		wantVerdict serinv1.MetricVerdict
		wantFailed  bool
		wantStreak  int
		wantErrors  int
		wantNoData  int
		wantMessage string
	}{
		{"a value in range passes", successRate, Measurement{Value: 99.5}, nil, serinv1.MetricPassed, false, 0, 0, 0, "99.5 is within bounds"},
		{"a value under min fails", successRate, Measurement{Value: 90}, nil, serinv1.MetricFailed, true, 0, 0, 0, "90 is below the minimum 99"},
		{"a value over max fails", latency, Measurement{Value: 612.5}, nil, serinv1.MetricFailed, true, 0, 0, 0, "612.5 is above the maximum 500"},
		{"the bounds are inclusive", latency, Measurement{Value: 500}, nil, serinv1.MetricPassed, false, 0, 0, 0, "within bounds"},
		{"no data is not a failure", successRate, Measurement{NoData: true}, nil, serinv1.MetricNoData, false, 1, 0, 1, "no data"},
		{"an error is not a failure", successRate, Measurement{Err: errors.New("connection refused")}, nil, serinv1.MetricError, false, 1, 1, 0, "connection refused"},
		{"the third error in a row is a failed check", successRate, Measurement{Err: errors.New("connection refused")}, streak(2), serinv1.MetricError, true, 0, 3, 0, "3 in a row: counted as a failed check"},
		{"no data extends an error streak", successRate, Measurement{NoData: true}, streak(2), serinv1.MetricNoData, true, 0, 2, 1, "3 in a row"},
		{"a value ends the streak", successRate, Measurement{Value: 100}, streak(2), serinv1.MetricPassed, false, 0, 2, 0, "within bounds"},
		{"a successCondition that holds passes", errorRate, Measurement{Value: 0.2}, nil, serinv1.MetricPassed, false, 0, 0, 0, "within bounds"},
		{"a successCondition that does not hold fails", errorRate, Measurement{Value: 0.7}, nil, serinv1.MetricFailed, true, 0, 0, 0, `does not meet successCondition "result < 0.5 && result >= 0"`},
		{"a failureCondition that holds fails", notNegative, Measurement{Value: -1}, nil, serinv1.MetricFailed, true, 0, 0, 0, "meets failureCondition"},
		{"a failureCondition that does not hold passes", notNegative, Measurement{Value: 3}, nil, serinv1.MetricPassed, false, 0, 0, 0, "within bounds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, failed, err := Judge(tt.metric, tt.meas, tt.prev, 3, now)
			if err != nil {
				t.Fatal(err)
			}
			if got.Verdict != tt.wantVerdict || failed != tt.wantFailed {
				t.Errorf("verdict %s failed %v, want %s %v", got.Verdict, failed, tt.wantVerdict, tt.wantFailed)
			}
			if got.ConsecutiveErrors != tt.wantStreak || got.Errors != tt.wantErrors || got.NoData != tt.wantNoData {
				t.Errorf("streak/errors/noData %d/%d/%d, want %d/%d/%d", got.ConsecutiveErrors, got.Errors, got.NoData, tt.wantStreak, tt.wantErrors, tt.wantNoData)
			}
			if !strings.Contains(got.Message, tt.wantMessage) {
				t.Errorf("message %q does not contain %q", got.Message, tt.wantMessage)
			}
			if (got.Value != nil) != (tt.meas.Err == nil && !tt.meas.NoData) {
				t.Errorf("value %v for measurement %+v", got.Value, tt.meas)
			}
			if !got.Time.Time.Equal(now) || got.Name != tt.metric.Name {
				t.Errorf("name %s time %s", got.Name, got.Time)
			}
		})
	}
}

func TestJudgeRejectsBadConditions(t *testing.T) {
	for _, expr := range []string{"result <", "result + 1", "unknown > 1"} {
		m := serinv1.CanaryMetric{Name: "x", Query: "q", SuccessCondition: expr}
		if _, _, err := Judge(m, Measurement{Value: 1}, nil, 3, now); err == nil {
			t.Errorf("successCondition %q accepted", expr)
		}
	}
}

func TestRender(t *testing.T) {
	vars := Vars{
		Name: "podinfo", Namespace: "test", Target: "podinfo", Service: "podinfo-svc", Ingress: "podinfo-ing",
		Route: "podinfo-svc", Interval: "1m", Variables: map[string]string{"cluster": "eu-1"},
	}
	tests := []struct {
		name, query, want, wantErr string
	}{
		{"Flagger's functions", `rate(x{ns="{{ namespace }}",w="{{ target }}",s="{{ service }}",i="{{ ingress }}",r="{{ route }}",n="{{ name }}"}[{{ interval }}])`,
			`rate(x{ns="test",w="podinfo",s="podinfo-svc",i="podinfo-ing",r="podinfo-svc",n="podinfo"}[1m])`, ""},
		{"template variables", `x{cluster="{{ variables.cluster }}"}`, `x{cluster="eu-1"}`, ""},
		{"a missing variable is an error", `x{c="{{ variables.region }}"}`, "", "region"},
		{"an unknown function is an error", `{{ pod }}`, "", "pod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.query, vars)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Render = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestBuiltinQuery(t *testing.T) {
	vars := Vars{Namespace: "apps", Target: "web", Service: "web-svc", Ingress: "web-ing", Interval: "1m"}
	tests := []struct {
		provider serinv1.Provider
		metric   string
		contains []string
	}{
		{serinv1.ProviderIstio, serinv1.MetricRequestSuccessRate, []string{"istio_requests_total", `reporter="destination"`, `destination_workload="web"`, `destination_workload_namespace="apps"`, "[1m]"}},
		{serinv1.ProviderIstio, serinv1.MetricRequestDuration, []string{"histogram_quantile(0.99", "istio_request_duration_milliseconds_bucket", `destination_workload="web"`}},
		{serinv1.ProviderContour, serinv1.MetricRequestSuccessRate, []string{"envoy_cluster_upstream_rq{", `envoy_cluster_name=~"apps_web-svc-canary_[0-9a-zA-Z-]+"`}},
		{serinv1.ProviderContour, serinv1.MetricRequestDuration, []string{"envoy_cluster_upstream_rq_time_bucket", "histogram_quantile(0.99"}},
		{serinv1.ProviderNGINX, serinv1.MetricRequestSuccessRate, []string{"nginx_ingress_controller_requests", `ingress="web-ing"`, `canary!=""`}},
		{serinv1.ProviderNGINX, serinv1.MetricRequestDuration, []string{"nginx_ingress_controller_response_duration_seconds_bucket", "* 1000"}},
		{serinv1.ProviderGatewayAPI, serinv1.MetricRequestSuccessRate, []string{"http_request_duration_seconds_count", `pod=~"web-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"`}},
		{serinv1.ProviderKubernetes, serinv1.MetricRequestDuration, []string{"http_request_duration_seconds_bucket", "* 1000"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.provider)+"/"+tt.metric, func(t *testing.T) {
			q, ok := BuiltinQuery(tt.provider, tt.metric)
			if !ok {
				t.Fatal("not built in")
			}
			got, err := Render(q, vars)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.contains {
				if !strings.Contains(got, c) {
					t.Errorf("%s\ndoes not contain %s", got, c)
				}
			}
		})
	}
	if _, ok := BuiltinQuery(serinv1.ProviderIstio, "error-rate"); ok {
		t.Error("error-rate is not built in")
	}
}

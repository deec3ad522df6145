package analysis

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestJudgeMetric(t *testing.T) {
	judgedAt := metav1.NewTime(t0)
	successRate := serinv1.CanaryMetric{Name: "request-success-rate", ThresholdRange: &serinv1.CanaryThresholdRange{Min: new(99.0)}}
	latency := serinv1.CanaryMetric{Name: "request-duration", ThresholdRange: &serinv1.CanaryThresholdRange{Max: new(500.0)}}
	errorRate := serinv1.CanaryMetric{Name: "error-rate", Query: "x", SuccessCondition: "result < 0.5 && result >= 0"}
	notNegative := serinv1.CanaryMetric{Name: "saturation", Query: "x", FailureCondition: "result < 0.0"}
	// Flagger's deprecated threshold: a minimum for the success rate, a
	// maximum for the duration; thresholdRange takes its place when set.
	oldSuccessRate := serinv1.CanaryMetric{Name: "request-success-rate", Threshold: new(99.0)}
	oldLatency := serinv1.CanaryMetric{Name: "request-duration", Threshold: new(500.0)}
	bothBounds := serinv1.CanaryMetric{Name: "request-success-rate", Threshold: new(99.0), ThresholdRange: &serinv1.CanaryThresholdRange{Min: new(90.0)}}
	streak := func(n int) *serinv1.MetricStatus {
		return &serinv1.MetricStatus{Name: "request-success-rate", ConsecutiveErrors: n, Errors: n, Verdict: serinv1.MetricError}
	}
	tests := []struct {
		name        string
		metric      serinv1.CanaryMetric
		obs         MetricObservation
		prev        *serinv1.MetricStatus
		wantVerdict serinv1.MetricVerdict
		wantOutcome outcome
		wantStreak  int
		wantErrors  int
		wantNoData  int
		wantMessage string
	}{
		{"a value in range passes", successRate, MetricObservation{Value: 99.5}, nil, serinv1.MetricPassed, passed, 0, 0, 0, "99.5 is within bounds"},
		{"a value under min fails", successRate, MetricObservation{Value: 90}, nil, serinv1.MetricFailed, failedCheck, 0, 0, 0, "90 is below the minimum 99"},
		{"a value over max fails", latency, MetricObservation{Value: 612.5}, nil, serinv1.MetricFailed, failedCheck, 0, 0, 0, "612.5 is above the maximum 500"},
		{"the bounds are inclusive", latency, MetricObservation{Value: 500}, nil, serinv1.MetricPassed, passed, 0, 0, 0, "within bounds"},
		{"no data is no verdict", successRate, MetricObservation{NoData: true}, nil, serinv1.MetricNoData, inconclusive, 1, 0, 1, "no data"},
		{"an error is no verdict", successRate, MetricObservation{Err: "connection refused"}, nil, serinv1.MetricError, inconclusive, 1, 1, 0, "connection refused"},
		{"the third error in a row is a failed check", successRate, MetricObservation{Err: "connection refused"}, streak(2), serinv1.MetricError, failedCheck, 0, 3, 0, "3 in a row: counted as a failed check"},
		{"no data extends an error streak", successRate, MetricObservation{NoData: true}, streak(2), serinv1.MetricNoData, failedCheck, 0, 2, 1, "3 in a row"},
		{"a value ends the streak", successRate, MetricObservation{Value: 100}, streak(2), serinv1.MetricPassed, passed, 0, 2, 0, "within bounds"},
		{"a successCondition that holds passes", errorRate, MetricObservation{Value: 0.2}, nil, serinv1.MetricPassed, passed, 0, 0, 0, "within bounds"},
		{"a successCondition that does not hold fails", errorRate, MetricObservation{Value: 0.7}, nil, serinv1.MetricFailed, failedCheck, 0, 0, 0, `does not meet successCondition "result < 0.5 && result >= 0"`},
		{"a failureCondition that holds fails", notNegative, MetricObservation{Value: -1}, nil, serinv1.MetricFailed, failedCheck, 0, 0, 0, "meets failureCondition"},
		{"a failureCondition that does not hold passes", notNegative, MetricObservation{Value: 3}, nil, serinv1.MetricPassed, passed, 0, 0, 0, "within bounds"},
		{"threshold is the success rate's minimum", oldSuccessRate, MetricObservation{Value: 98}, nil, serinv1.MetricFailed, failedCheck, 0, 0, 0, "98 is below the minimum 99"},
		{"threshold is the duration's maximum", oldLatency, MetricObservation{Value: 612}, nil, serinv1.MetricFailed, failedCheck, 0, 0, 0, "612 is above the maximum 500"},
		{"a value within threshold passes", oldLatency, MetricObservation{Value: 499}, nil, serinv1.MetricPassed, passed, 0, 0, 0, "within bounds"},
		{"thresholdRange takes threshold's place", bothBounds, MetricObservation{Value: 95}, nil, serinv1.MetricPassed, passed, 0, 0, 0, "within bounds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, out, err := judgeMetric(tt.metric, tt.obs, tt.prev, 3, serinv1.MetricStatus{Name: tt.metric.Name, Time: judgedAt})
			if err != nil {
				t.Fatal(err)
			}
			if got.Verdict != tt.wantVerdict || out != tt.wantOutcome {
				t.Errorf("verdict %s outcome %v, want %s %v", got.Verdict, out, tt.wantVerdict, tt.wantOutcome)
			}
			if got.ConsecutiveErrors != tt.wantStreak || got.Errors != tt.wantErrors || got.NoData != tt.wantNoData {
				t.Errorf("streak/errors/noData %d/%d/%d, want %d/%d/%d", got.ConsecutiveErrors, got.Errors, got.NoData, tt.wantStreak, tt.wantErrors, tt.wantNoData)
			}
			if !strings.Contains(got.Message, tt.wantMessage) {
				t.Errorf("message %q does not contain %q", got.Message, tt.wantMessage)
			}
			if (got.Value != nil) != (tt.obs.Err == "" && !tt.obs.NoData) {
				t.Errorf("value %v for observation %+v", got.Value, tt.obs)
			}
			if !got.Time.Equal(&judgedAt) || got.Name != tt.metric.Name {
				t.Errorf("name %s time %s", got.Name, got.Time)
			}
		})
	}
}

func TestJudgeWebhook(t *testing.T) {
	streak := func(n int) *serinv1.WebhookStatus {
		return &serinv1.WebhookStatus{Name: "load", ConsecutiveErrors: n, Errors: n, Verdict: serinv1.MetricError}
	}
	tests := []struct {
		name        string
		obs         WebhookObservation
		prev        *serinv1.WebhookStatus
		wantVerdict serinv1.MetricVerdict
		wantOutcome outcome
		wantStreak  int
		wantMessage string
	}{
		{"a 200 passes", WebhookObservation{StatusCode: 200}, nil, serinv1.MetricPassed, passed, 0, "answered 200"},
		{"a 202 passes", WebhookObservation{StatusCode: 202}, nil, serinv1.MetricPassed, passed, 0, "answered 202"},
		{"a 500 fails, as in Flagger", WebhookObservation{StatusCode: 500, Err: "500 Internal Server Error: boom"}, nil, serinv1.MetricFailed, failedCheck, 0, "boom"},
		{"a 204 fails: only 200-202 are success", WebhookObservation{StatusCode: 204}, nil, serinv1.MetricFailed, failedCheck, 0, "answered 204"},
		{"no answer is no verdict", WebhookObservation{Err: "connection refused"}, nil, serinv1.MetricError, inconclusive, 1, "no answer: connection refused"},
		{"the third call without answer is a failed check", WebhookObservation{Err: "timed out after 10s"}, streak(2), serinv1.MetricError, failedCheck, 0, "3 in a row"},
		{"an answer ends the streak", WebhookObservation{StatusCode: 200}, streak(2), serinv1.MetricPassed, passed, 0, "answered 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, out := judgeWebhook(tt.obs, tt.prev, 3, serinv1.WebhookStatus{Name: "load"})
			if got.Verdict != tt.wantVerdict || out != tt.wantOutcome || got.ConsecutiveErrors != tt.wantStreak {
				t.Errorf("verdict %s outcome %v streak %d, want %s %v %d", got.Verdict, out, got.ConsecutiveErrors, tt.wantVerdict, tt.wantOutcome, tt.wantStreak)
			}
			if !strings.Contains(got.Message, tt.wantMessage) {
				t.Errorf("message %q does not contain %q", got.Message, tt.wantMessage)
			}
		})
	}
}

func TestJudgeRejectsBadConditions(t *testing.T) {
	for _, expr := range []string{"result <", "result + 1", "unknown > 1"} {
		m := serinv1.CanaryMetric{Name: "x", Query: "q", SuccessCondition: expr}
		if _, _, err := judgeMetric(m, MetricObservation{Value: 1}, nil, 3, serinv1.MetricStatus{}); err == nil {
			t.Errorf("successCondition %q accepted", expr)
		}
	}
}

// TestConditionCostIsBounded: a condition built to run for seconds is
// stopped by the cost limit, so it cannot hold a reconcile worker.
func TestConditionCostIsBounded(t *testing.T) {
	expr := "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, result >= 0.0)))))"
	_, err := evalCondition(expr, 1)
	if err == nil || !strings.Contains(err.Error(), "may cost more than the limit") {
		t.Fatalf("evaluating a 10^5-step condition: %v, want it refused before it runs", err)
	}
	// Conditions as users write them stay well under the limit.
	for _, ok := range []string{"result < 0.5 && result >= 0", "[1.0, 2.0, 3.0].exists(x, result == x)", "result in [200.0, 201.0] || (result > 1.0 && result < 99.0)"} {
		if _, err := evalCondition(ok, 1); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

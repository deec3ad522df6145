package main

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestPrintStatusOfAFlagRollout(t *testing.T) {
	now := time.Now()
	c := &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "production", Name: "payments-flags"},
		Spec: serinv1.CanarySpec{
			TargetRef: serinv1.TargetReference{APIVersion: "v1", Kind: "ConfigMap", Name: "flagd-config"},
			Analysis:  serinv1.CanaryAnalysis{Interval: "1m", Threshold: 3, StepWeights: []int{1, 5, 25, 50}},
		},
		Status: serinv1.CanaryStatus{
			Phase: serinv1.CanaryPhaseProgressing, CanaryWeight: 5, LastAppliedSpec: "b2", LastPromotedSpec: "a1",
			LastTransitionTime: metav1.NewTime(now.Add(-time.Minute)),
			Flags: []serinv1.FlagChange{
				{Key: "new-checkout", OldVariant: "off", NewVariant: "on"},
				{Key: "banner", NewVariant: "blue"},
			},
		},
	}
	var out strings.Builder
	if err := printStatus(&out, c, nil, now); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(out.String()) {
		lines = append(lines, strings.Join(strings.Fields(line), " "))
	}
	for _, want := range []string{
		"Canary: production/payments-flags (ConfigMap flagd-config)",
		"Weight: 5% of the evaluation contexts get the new flag definitions",
		"Changed flags: new-checkout (default off -> on)",
		"banner (default the code default -> blue)",
	} {
		found := false
		for _, l := range lines {
			found = found || strings.Contains(l, want)
		}
		if !found {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
}

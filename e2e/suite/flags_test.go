//go:build e2e

package suite

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/e2e/telemetry"
)

// The flag definitions of the flag scenarios: v2 turns new-checkout on
// (a change of default), v3 switches banner to blue.
const (
	flagsV1 = `{"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {
  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"in": [{"var": "country"}, ["US", "CA"]]}, "on", null]}},
  "banner": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"}}}`
	flagsV2 = `{"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {
  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
    "targeting": {"if": [{"in": [{"var": "country"}, ["US", "CA"]]}, "on", null]}},
  "banner": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"}}}`
	flagsV3 = `{"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {
  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
    "targeting": {"if": [{"in": [{"var": "country"}, ["US", "CA"]]}, "on", null]}},
  "banner": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "blue"}}}`

	// newVariantErrors is the 5xx share of the requests served with the
	// changed flag's new default variant, by OpenFeature's labels.
	newVariantErrors = `100 * (sum(rate(http_server_request_duration_seconds_count{namespace="{{ namespace }}",feature_flag_key=~"{{ flag }}",feature_flag_variant=~"{{ newVariant }}",http_response_status_code="500"}[{{ interval }}])) or vector(0))
  / sum(rate(http_server_request_duration_seconds_count{namespace="{{ namespace }}",feature_flag_key=~"{{ flag }}",feature_flag_variant=~"{{ newVariant }}"}[{{ interval }}]))`
)

// TestFlagRelease rolls flagd flag changes out on the real Prometheus: the
// telemetry source evaluates the flags the primary serves for synthetic
// users and exports requests by variant. A healthy change is promoted; one
// whose new variant fails is rolled back and the promoted definitions are
// served again.
func TestFlagRelease(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := t.Context()
	ns, name, target := "e2e-flags", "payments-flags", "flagd-config"
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: target}, Data: map[string]string{"flags.json": flagsV1}},
		&serinv1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "new-variant-errors"}, Spec: serinv1.MetricTemplateSpec{Query: newVariantErrors}},
		&serinv1.Canary{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: serinv1.CanarySpec{
				TargetRef:               serinv1.TargetReference{APIVersion: "v1", Kind: "ConfigMap", Name: target},
				Flags:                   &serinv1.FlagsSpec{Key: "flags.json"},
				ProgressDeadlineSeconds: new(int32(120)),
				Analysis: serinv1.CanaryAnalysis{
					Interval: "10s", Threshold: 2, StepWeights: []int{25, 50},
					Metrics: []serinv1.CanaryMetric{{
						Name: "new-variant-errors", Interval: "15s",
						TemplateRef:    &serinv1.CrossNamespaceObjectReference{Name: "new-variant-errors"},
						ThresholdRange: &serinv1.CanaryThresholdRange{Max: new(5.0)},
					}},
				},
			},
		},
	} {
		g.Expect(st.Client.Create(ctx, o)).To(Succeed(), "creating %T %s", o, o.GetName())
	}
	canary := func() *serinv1.Canary {
		var c serinv1.Canary
		g.Expect(st.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &c)).To(Succeed())
		return &c
	}
	phase := func() serinv1.CanaryPhase { return canary().Status.Phase }
	served := func() string {
		var cm corev1.ConfigMap
		g.Expect(st.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: target + "-primary"}, &cm)).To(Succeed())
		return cm.Data["flags.json"]
	}
	release := func(doc string, errorRatios map[string]float64) {
		var cm corev1.ConfigMap
		g.Expect(st.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: target}, &cm)).To(Succeed())
		patch := client.MergeFrom(cm.DeepCopy())
		cm.Data["flags.json"] = doc
		ratios, err := json.Marshal(errorRatios)
		g.Expect(err).NotTo(HaveOccurred())
		cm.Annotations = map[string]string{telemetry.VariantErrorRatioAnnotation: string(ratios)}
		g.Expect(st.Client.Patch(ctx, &cm, patch)).To(Succeed())
	}
	g.Eventually(phase, releaseTimeout, poll).Should(Equal(serinv1.CanaryPhaseInitialized))

	// Healthy: new-checkout's "on" answers as well as before.
	start := time.Now()
	release(flagsV2, nil)
	g.Eventually(func() []serinv1.FlagChange { return canary().Status.Flags }, releaseTimeout, poll).
		Should(Equal([]serinv1.FlagChange{{Key: "new-checkout", OldVariant: "off", NewVariant: "on"}}))
	g.Eventually(phase, releaseTimeout, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	report.add(t.Name()+"/healthy", time.Since(start), 2*10*time.Second)
	got := canary()
	m := metric(g, got, "new-variant-errors")
	g.Expect(m.Verdict).To(Equal(serinv1.MetricPassed), m.Message)
	g.Expect(*m.Value).To(BeNumerically("<", 1))
	g.Expect(got.Status.FailedChecks).To(BeZero())
	g.Expect(served()).To(Equal(flagsV2), "promotion serves the new definitions as Git holds them")

	// Failing: half of the requests served with banner's new "blue" fail.
	start = time.Now()
	release(flagsV3, map[string]float64{"banner/blue": 0.5})
	g.Eventually(phase, releaseTimeout, poll).Should(Equal(serinv1.CanaryPhaseFailed))
	report.add(t.Name()+"/errors", time.Since(start), 2*10*time.Second)
	got = canary()
	m = metric(g, got, "new-variant-errors")
	g.Expect(m.Verdict).To(Equal(serinv1.MetricFailed), m.Message)
	g.Expect(*m.Value).To(BeNumerically("~", 50, 2), "blue's declared errors")
	g.Expect(got.Status.FailedChecks).To(Equal(2))
	g.Expect(got.Status.Flags).To(Equal([]serinv1.FlagChange{{Key: "banner", OldVariant: "red", NewVariant: "blue"}}))
	g.Eventually(served, 10*time.Second, poll).Should(Equal(flagsV2), "the rollback serves the promoted definitions again")
}

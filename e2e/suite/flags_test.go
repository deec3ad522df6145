//go:build e2e

package suite

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/e2e/stack"
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
	g.Expect(st.CreateFlags(ctx, stack.NewFlagCanary(ns, name, target, 25, 50), flagsV1)).To(Succeed())
	canary := func() *serinv1.Canary {
		var c serinv1.Canary
		g.Expect(st.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &c)).To(Succeed())
		return &c
	}
	phase := func() serinv1.CanaryPhase { return canary().Status.Phase }
	served := func() string {
		doc, err := st.ServedFlags(context.Background(), ns, target)
		g.Expect(err).NotTo(HaveOccurred())
		return doc
	}
	release := func(doc string, errorRatios map[string]float64) {
		g.Expect(st.ReleaseFlags(ctx, ns, target, doc, errorRatios)).To(Succeed())
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
	m := metric(g, got, stack.FlagErrorsTemplate)
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
	m = metric(g, got, stack.FlagErrorsTemplate)
	g.Expect(m.Verdict).To(Equal(serinv1.MetricFailed), m.Message)
	g.Expect(*m.Value).To(BeNumerically("~", 50, 2), "blue's declared errors")
	g.Expect(got.Status.FailedChecks).To(Equal(2))
	g.Expect(got.Status.Flags).To(Equal([]serinv1.FlagChange{{Key: "banner", OldVariant: "red", NewVariant: "blue"}}))
	g.Eventually(served, 10*time.Second, poll).Should(Equal(flagsV2), "the rollback serves the promoted definitions again")
}

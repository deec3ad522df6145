package controller_test

import (
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// TestCanaryReconciler_TwoActiveControllers: two controllers serve the same
// Canary at once, without leader election (the split brain a Lease lost
// while paused can cause). The status compare-and-swap lets only one of
// them take each step: each iteration is counted once and announced once,
// in order, and the release ends as one controller's would.
func TestCanaryReconciler_TwoActiveControllers(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "split"
	hooks := newHookServer(t, 200)
	start := serinProcess(t, g, ns, "split-brain")
	start(nil, "--enable-leader-election=false")
	start(nil, "--enable-leader-election=false")
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Labels = map[string]string{restartShard: "split-brain"}
		c.Spec.Analysis.Iterations = 4
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "load", URL: hooks.URL + "/load"}}
	})
	iterations := watchValues(t, &serinv1.CanaryList{}, ns, name, true, func(o client.Object) string {
		return strconv.Itoa(o.(*serinv1.Canary).Status.Iterations)
	})

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v2"))

	seen := iterations()
	if n := len(seen); n > 0 && seen[n-1] == "0" && n > 1 {
		seen = seen[:n-1] // the count is reset once promoted
	}
	g.Expect(seen).To(Equal([]string{"0", "1", "2", "3", "4"}), "no iteration repeated or skipped")
	g.Expect(announcedIterations(g, ns, name)).To(Equal(eachIterationOnce(name, 4)), "each iteration announced once, by the controller whose decision was stored")
}

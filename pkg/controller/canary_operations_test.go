package controller_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/controller"
	"github.com/serin-dev/serin/pkg/router"
)

// operate asks for an operation as kubectl serin does: the operation
// annotations, and Flux's requestedAt so that the controller looks now. It
// returns the operation ID.
func operate(g Gomega, ns, name, op string) string {
	id := time.Now().UTC().Format(time.RFC3339Nano)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		serinv1.OperationAnnotation:   op,
		serinv1.OperationIDAnnotation: id,
		serinv1.OperationByAnnotation: "on-call",
	}}})
	g.Expect(err).NotTo(HaveOccurred())
	c := &serinv1.Canary{}
	c.Namespace, c.Name = ns, name
	g.Expect(k8sClient.Patch(context.Background(), c, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
	return id
}

// handled waits until the controller recorded the operation id.
func handled(g Gomega, ns, name, id string) {
	g.Eventually(func() string {
		return get(g, ns, name, &serinv1.Canary{}).Status.LastHandledOperation
	}, release, poll).Should(Equal(id))
}

func istioWeights(t *testing.T, ns, name string) func() []int {
	return weightRecorder(t, &router.IstioRouter{Reader: k8sClient, Client: k8sClient, FieldManager: controller.FieldManager}, ns, name)
}

func canaryWeight(g Gomega, ns, name string) func() int {
	return func() int { return get(g, ns, name, &serinv1.Canary{}).Status.CanaryWeight }
}

func TestCanaryReconciler_OperationPromoteFull(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "hurried"
	initialized(t, g, ns, name, progressive(serinv1.ProviderIstio))
	weights := istioWeights(t, ns, name)
	phases := recordPhases(t, ns, name)

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(canaryWeight(g, ns, name), release, poll).Should(Equal(10))
	id := operate(g, ns, name, "promote-full")

	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v2"))
	g.Expect(phases.since(serinv1.CanaryPhaseProgressing)).To(Equal([]serinv1.CanaryPhase{
		serinv1.CanaryPhaseProgressing, serinv1.CanaryPhasePromoting, serinv1.CanaryPhaseFinalising, serinv1.CanaryPhaseSucceeded,
	}), "promote-full still goes through Promoting and Finalising")
	g.Eventually(func() int { w := weights(); return w[len(w)-1] }, 10*time.Second, poll).Should(BeZero())
	g.Expect(weights()).NotTo(ContainElement(BeNumerically(">", 20)), "the remaining steps up to 50 were skipped")
	g.Expect(get(g, ns, name, &serinv1.Canary{}).Status.LastHandledOperation).To(Equal(id))
	g.Eventually(func() []string { return events(g, ns, name, "OperationPromoteFull") }, eventWait, poll).Should(ConsistOf(And(ContainSubstring("by on-call"), ContainSubstring(id))))
}

func TestCanaryReconciler_OperationPromotePassesGate(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "approved"
	gate := newHookServer(t, 403)
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.Analysis.Iterations = 1
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "approval", Type: serinv1.ConfirmPromotionHook, URL: gate.URL + "/gate/check"}}
	})

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseWaitingPromotion))
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v1"))
	operate(g, ns, name, "promote")

	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v2"), "the closed gate counted as passed")
	g.Expect(gate.status.Load()).To(Equal(int32(403)))
	g.Eventually(func() []string { return events(g, ns, name, "OperationPromote") }, eventWait, poll).Should(ConsistOf(ContainSubstring("passing the confirm-promotion gate")))
}

func TestCanaryReconciler_OperationAbort(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "aborted"
	initialized(t, g, ns, name, progressive(serinv1.ProviderIstio))
	weights := istioWeights(t, ns, name)

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(canaryWeight(g, ns, name), release, poll).Should(Equal(20))
	operate(g, ns, name, "abort")

	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))
	g.Eventually(func() int { w := weights(); return w[len(w)-1] }, 10*time.Second, poll).Should(BeZero(), "traffic is back on the primary")
	g.Expect(weights()).NotTo(ContainElement(BeNumerically(">", 30)))
	g.Eventually(func() int32 { return replicas(g, ns, name) }, release, poll).Should(BeZero(), "the canary is scaled down")
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v1"))
	g.Eventually(func() []string { return events(g, ns, name, "OperationAbort") }, eventWait, poll).Should(HaveLen(1))
	g.Eventually(func() []string { return events(g, ns, name, "RolledBack") }, eventWait, poll).Should(ConsistOf(ContainSubstring("aborted by on-call")))
	g.Consistently(phaseOf(ns, name), "12s", poll).Should(Equal(serinv1.CanaryPhaseFailed), "the aborted revision does not start again")
}

func TestCanaryReconciler_OperationRetry(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "retried"
	hooks := newHookServer(t, 500)
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.Analysis.Iterations = 1
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "smoke", Type: serinv1.PreRolloutHook, URL: hooks.URL + "/smoke"}}
	})

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))
	g.Expect(hooks.count("/smoke")).To(Equal(2))
	g.Consistently(phaseOf(ns, name), "12s", poll).Should(Equal(serinv1.CanaryPhaseFailed), "without retry the revision stays Failed")

	hooks.status.Store(200)
	phases := recordPhases(t, ns, name)
	operate(g, ns, name, "retry")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(phases.seen()).To(ContainElement(serinv1.CanaryPhaseProgressing))
	g.Expect(hooks.count("/smoke")).To(Equal(3), "the analysis ran again from its first step")
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v2"))
	g.Expect(get(g, ns, name, &serinv1.Canary{}).Status.FailedChecks).To(BeZero())
	g.Eventually(func() []string { return events(g, ns, name, "OperationRetry") }, eventWait, poll).Should(HaveLen(1))
}

func TestCanaryReconciler_OperationPauseResume(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "paused"
	hooks := newHookServer(t, 200)
	initialized(t, g, ns, name, progressive(serinv1.ProviderIstio), func(c *serinv1.Canary) {
		c.Spec.Analysis.MaxWeight = 30
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "load", URL: hooks.URL + "/load"}}
	})
	weights := istioWeights(t, ns, name)

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(canaryWeight(g, ns, name), release, poll).Should(Equal(10))
	id := operate(g, ns, name, "pause")
	handled(g, ns, name, id)
	g.Eventually(func() string {
		return conditions.GetMessage(get(g, ns, name, &serinv1.Canary{}), meta.ReadyCondition)
	}, release, poll).Should(HavePrefix("paused: "))
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.Paused).To(BeTrue())
	held, calls := c.Status.CanaryWeight, hooks.count("/load")

	// Over two intervals of 10s.
	g.Consistently(func() []any {
		c := get(g, ns, name, &serinv1.Canary{})
		return []any{c.Status.Phase, c.Status.CanaryWeight, hooks.count("/load")}
	}, "25s", time.Second).Should(Equal([]any{serinv1.CanaryPhaseProgressing, held, calls}), "no steps and no checks while paused")
	w := weights()
	g.Expect(w[len(w)-1]).To(Equal(held), "the routes keep the held weight")

	operate(g, ns, name, "resume")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(get(g, ns, name, &serinv1.Canary{}).Status.Paused).To(BeFalse())
	g.Expect(hooks.count("/load")).To(BeNumerically(">", calls), "the checks ran again after resume")
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v2"))
	g.Eventually(func() []string { return events(g, ns, name, "OperationPause") }, eventWait, poll).Should(HaveLen(1))
	g.Eventually(func() []string { return events(g, ns, name, "OperationResume") }, eventWait, poll).Should(HaveLen(1))
}

func TestCanaryReconciler_OperationRefused(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "settled"
	initialized(t, g, ns, name)

	id := operate(g, ns, name, "promote")
	handled(g, ns, name, id)
	g.Eventually(func() []string { return events(g, ns, name, "OperationRefused") }, eventWait, poll).Should(ConsistOf(ContainSubstring("promote by on-call (request " + id + ") refused: no release in flight: the phase is Initialized")))
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.Phase).To(Equal(serinv1.CanaryPhaseInitialized))
	g.Expect(conditions.IsReady(c)).To(BeTrue())
	g.Expect(conditions.GetMessage(c, meta.ReadyCondition)).NotTo(ContainSubstring("refused"), "a refusal does not describe the release")

	// The same request, seen again at the next reconcile, is not handled
	// twice.
	g.Eventually(func() []string { return events(g, ns, name, "OperationRefused") }, eventWait, poll).Should(HaveLen(1))
	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseProgressing))
	g.Consistently(func() []string { return events(g, ns, name, "OperationRefused") }, "3s", poll).Should(HaveLen(1))
	g.Expect(events(g, ns, name, "OperationPromote")).To(BeEmpty())
}

package controller_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// TestCanaryReconciler_TargetScaledUpWhileIdle: a GitOps tool re-applying
// the target's spec.replicas from Git while no release runs (here a patch
// by the field manager kustomize-controller, as Flux's would be) scales the
// target up next to the primary. Serin scales it back to zero and warns,
// naming that field manager and the fix; the release state is unchanged.
func TestCanaryReconciler_TargetScaledUpWhileIdle(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "fought"
	initialized(t, g, ns, name)
	replicas := func() int32 { return ptr.Deref(get(g, ns, name, &appsv1.Deployment{}).Spec.Replicas, 1) }
	g.Eventually(replicas, release, poll).Should(BeZero())
	promoted := get(g, ns, name, &serinv1.Canary{}).Status.LastPromotedSpec

	d := get(g, ns, name, &appsv1.Deployment{})
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = ptr.To[int32](3)
	g.Expect(k8sClient.Patch(context.Background(), d, patch, client.FieldOwner("kustomize-controller"))).To(Succeed())

	g.Eventually(func() []string { return events(g, ns, name, analysis.ReasonTargetScaledUp) }, eventWait, poll).Should(ContainElement(And(
		ContainSubstring("scaled up to 3 pods by field manager kustomize-controller"),
		ContainSubstring("RespectIgnoreDifferences=true"),
	)))
	g.Eventually(replicas, eventWait, poll).Should(BeZero(), "scaled back to zero")
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.Phase).To(Equal(serinv1.CanaryPhaseInitialized))
	g.Expect(c.Status.LastPromotedSpec).To(Equal(promoted))
	conflict := conditions.Get(c, serinv1.FieldConflictCondition)
	g.Expect(conflict).NotTo(BeNil())
	g.Expect(conflict.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(conflict.Reason).To(Equal(analysis.ReasonTargetScaledUp))
	g.Expect(conflict.Message).To(ContainSubstring("field manager kustomize-controller"))
	g.Expect(conditions.IsReady(c)).To(BeTrue(), "the primary serves: the Canary stays Ready")
}

// TestCanaryReconciler_ApexSelectorFight: a GitOps tool that holds the apex
// Service in Git re-applies its selector, which sends the traffic to the
// target's pods (none while no release runs). Serin sets the selector back
// to the primary and warns, naming the field manager and the fix.
func TestCanaryReconciler_ApexSelectorFight(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "selected"
	initialized(t, g, ns, name)
	selector := func() map[string]string { return get(g, ns, name, &corev1.Service{}).Spec.Selector }
	g.Expect(selector()).To(Equal(map[string]string{"app": name + "-primary"}))

	svc := get(g, ns, name, &corev1.Service{})
	patch := client.MergeFrom(svc.DeepCopy())
	svc.Spec.Selector = map[string]string{"app": name}
	g.Expect(k8sClient.Patch(context.Background(), svc, patch, client.FieldOwner("kustomize-controller"))).To(Succeed())

	g.Eventually(func() []string { return events(g, ns, name, serinv1.ApexSelectorChangedReason) }, eventWait, poll).Should(ContainElement(And(
		ContainSubstring("by field manager kustomize-controller"),
		ContainSubstring("ignoreDifferences on /spec/selector"),
	)))
	g.Eventually(selector, eventWait, poll).Should(Equal(map[string]string{"app": name + "-primary"}), "set back to the primary")
	g.Eventually(func() string {
		cond := conditions.Get(get(g, ns, name, &serinv1.Canary{}), serinv1.FieldConflictCondition)
		if cond == nil {
			return ""
		}
		return cond.Reason
	}, eventWait, poll).Should(Equal(serinv1.ApexSelectorChangedReason))
}

// blockingGate is a confirm-rollout gate whose answer can be held back, as
// a slow approval service's would be: while blocked, a call waits.
type blockingGate struct {
	*httptest.Server
	blocked atomic.Bool
	// answered counts the calls answered while blocked was set.
	answered atomic.Int32
}

func newBlockingGate(t *testing.T) *blockingGate {
	gate := &blockingGate{}
	gate.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		held := gate.blocked.Load()
		for gate.blocked.Load() && req.Context().Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		if held && gate.blocked.Load() {
			gate.answered.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(gate.Close)
	// Close waits for the calls in flight: let them end first.
	t.Cleanup(func() { gate.blocked.Store(false) })
	return gate
}

// kstatusOf is the kstatus of a Canary, as Flux's health check computes it.
func kstatusOf(g Gomega, ns, name string) (status.Status, int64) {
	c := get(g, ns, name, &serinv1.Canary{})
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c)
	g.Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(serinv1.GroupVersion.String())
	u.SetKind("Canary")
	res, err := status.Compute(u)
	g.Expect(err).NotTo(HaveOccurred())
	return res.Status, c.Status.ObservedTargetGeneration
}

// TestCanaryReconciler_ReadinessFollowsTheTarget: Flux applies a new target
// revision and then reads the Canary's kstatus. From Serin's first look at
// that revision on, the Canary is neither Current (for the revision it
// promoted before) nor Failed (for the release that rolled back before),
// also while the release has not begun because a confirm-rollout gate is
// still answering; status.observedTargetGeneration says which generation
// of the target the conditions are about.
func TestCanaryReconciler_ReadinessFollowsTheTarget(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "fenced"
	gate := newBlockingGate(t)
	smoke := newHookServer(t, 500)
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.Analysis.Iterations = 1
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{
			{Name: "gate", Type: serinv1.ConfirmRolloutHook, URL: gate.URL + "/gate", Timeout: "1m"},
			{Name: "smoke", Type: serinv1.PreRolloutHook, URL: smoke.URL + "/smoke"},
		}
	})
	generation := func() int64 { return get(g, ns, name, &appsv1.Deployment{}).Generation }
	seen := func() int64 { _, gen := kstatusOf(g, ns, name); return gen }
	state := func() status.Status { s, _ := kstatusOf(g, ns, name); return s }
	g.Eventually(seen, eventWait, poll).Should(Equal(generation()))
	g.Expect(state()).To(Equal(status.CurrentStatus))

	// A revision that fails its pre-rollout check leaves the Canary Failed.
	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))
	g.Eventually(state, eventWait, poll).Should(Equal(status.FailedStatus))

	// The fix arrives while the gate holds its answer back.
	for _, img := range []string{"example.com/app:v3", "example.com/app:v4"} {
		gate.blocked.Store(true)
		setImage(g, ns, name, img)
		want := generation()
		// Serin's first look, long before the gate could answer.
		g.Eventually(seen, "5s", poll).Should(Equal(want))
		g.Expect(gate.answered.Load()).To(BeZero())
		g.Consistently(state, "2s", poll).Should(Equal(status.InProgressStatus), "%s is not released yet", img)
		g.Expect(phaseOf(ns, name)()).To(BeElementOf(serinv1.CanaryPhaseFailed, serinv1.CanaryPhaseSucceeded), "the release has not begun")
		smoke.status.Store(200)
		gate.blocked.Store(false)
		g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
		g.Eventually(state, eventWait, poll).Should(Equal(status.CurrentStatus))
		g.Expect(image(g, ns, name+"-primary")).To(Equal(img))
	}
}

// TestCanaryReconciler_FlaggerServiceOptions: Flagger's headless and
// trafficDistribution reach the three Services as the API server stores
// them, and a key of unmanagedMetadata is never set by Serin, so another
// tool's value for it stays.
func TestCanaryReconciler_FlaggerServiceOptions(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "headless"
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.Service.Headless = true
		c.Spec.Service.TrafficDistribution = "PreferClose"
		c.Spec.Service.Primary = &serinv1.CustomMetadata{Labels: map[string]string{"tier": "web", "team": "from-canary"}}
		c.Spec.Service.UnmanagedMetadata = &serinv1.UnmanagedMetadata{Labels: []string{"team"}}
	})
	for _, svc := range []string{name, name + "-primary", name + "-canary"} {
		s := get(g, ns, svc, &corev1.Service{})
		g.Expect(s.Spec.ClusterIP).To(Equal(corev1.ClusterIPNone), svc)
		g.Expect(s.Spec.TrafficDistribution).To(HaveValue(Equal("PreferClose")), svc)
	}
	primary := get(g, ns, name+"-primary", &corev1.Service{})
	g.Expect(primary.Labels).To(HaveKeyWithValue("tier", "web"))
	g.Expect(primary.Labels).NotTo(HaveKey("team"), "an unmanaged key is left to others")
}

package controller_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
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
}

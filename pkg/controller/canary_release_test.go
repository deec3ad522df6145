package controller_test

import (
	"context"
	"sync"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func intOrString(port int32) intstr.IntOrString { return intstr.FromInt32(port) }

// initialized creates a Deployment and its Canary and waits for Initialized.
func initialized(t *testing.T, g Gomega, ns, name string, mods ...func(*serinv1.Canary)) {
	t.Helper()
	create(t, newDeployment(ns, name, "example.com/app:v1", 2), newCanary(ns, name, mods...))
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseInitialized))
}

func setImage(g Gomega, ns, name, image string) {
	d := get(g, ns, name, &appsv1.Deployment{})
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	g.Expect(k8sClient.Patch(context.Background(), d, patch)).To(Succeed())
}

func image(g Gomega, ns, name string) string {
	return get(g, ns, name, &appsv1.Deployment{}).Spec.Template.Spec.Containers[0].Image
}

func replicas(g Gomega, ns, name string) int32 {
	return *get(g, ns, name, &appsv1.Deployment{}).Spec.Replicas
}

func TestCanaryReconciler_InitializeAndPromote(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "podinfo"
	phases := recordPhases(t, ns, name)
	initialized(t, g, ns, name)

	t.Run("initialisation creates the primary and the Services and scales the target to zero", func(t *testing.T) {
		g := NewWithT(t)
		primary := get(g, ns, name+"-primary", &appsv1.Deployment{})
		g.Expect(primary.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app": name + "-primary"}))
		g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/app:v1"))
		g.Expect(primary.Status.ReadyReplicas).To(Equal(int32(2)))
		g.Expect(metav1.IsControlledBy(primary, get(g, ns, name, &serinv1.Canary{}))).To(BeTrue())

		for svc, selector := range map[string]string{name: name + "-primary", name + "-primary": name + "-primary", name + "-canary": name} {
			s := get(g, ns, svc, &corev1.Service{})
			g.Expect(s.Spec.Selector).To(Equal(map[string]string{"app": selector}), svc)
			g.Expect(s.Spec.Type).To(Equal(corev1.ServiceTypeClusterIP))
			g.Expect(s.Spec.Ports[0].Port).To(Equal(int32(80)))
			g.Expect(s.Spec.Ports[0].TargetPort).To(Equal(intstr.FromInt32(8080)))
		}
		g.Eventually(func() int32 { return replicas(g, ns, name) }, release, poll).Should(BeZero())

		c := get(g, ns, name, &serinv1.Canary{})
		g.Expect(conditions.IsReady(c)).To(BeTrue())
		g.Expect(c.Status.ObservedGeneration).To(Equal(c.Generation))
	})

	t.Run("a new image is analysed and promoted", func(t *testing.T) {
		g := NewWithT(t)
		setImage(g, ns, name, "example.com/app:v2")
		g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
		g.Eventually(phases.seen, 10*poll, poll).Should(Equal([]serinv1.CanaryPhase{
			serinv1.CanaryPhaseInitializing, serinv1.CanaryPhaseInitialized,
			serinv1.CanaryPhaseProgressing, serinv1.CanaryPhasePromoting, serinv1.CanaryPhaseFinalising, serinv1.CanaryPhaseSucceeded,
		}))
		g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v2"))
		g.Eventually(func() int32 { return replicas(g, ns, name) }, release, poll).Should(BeZero())
		g.Expect(get(g, ns, name, &corev1.Service{}).Spec.Selector).To(Equal(map[string]string{"app": name + "-primary"}))

		c := get(g, ns, name, &serinv1.Canary{})
		g.Expect(c.Status.Iterations).To(Equal(3))
		g.Expect(c.Status.LastPromotedSpec).To(Equal(c.Status.LastAppliedSpec))
		ready := conditions.Get(c, meta.ReadyCondition)
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(ready.ObservedGeneration).To(Equal(c.Generation))
		g.Expect(c.Status.ObservedGeneration).To(Equal(c.Generation))
		g.Expect(conditions.Has(c, meta.ReconcilingCondition)).To(BeFalse())
	})
}

func TestCanaryReconciler_FailedPreRolloutRollsBack(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "failing"
	hooks := newHookServer(t, 500)
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "smoke", Type: serinv1.PreRolloutHook, URL: hooks.URL + "/smoke"}}
	})
	apexSelectors := watchApexSelectors(t, ns, name)

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))

	// A transient API error on a later reconcile is retried, which marks
	// the Canary Reconciling for a moment; it settles Stalled again.
	g.Eventually(func() bool { return conditions.IsStalled(get(g, ns, name, &serinv1.Canary{})) }, release, poll).Should(BeTrue())
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.FailedChecks).To(Equal(2))
	g.Expect(hooks.count("/smoke")).To(Equal(2), "one pre-rollout call per step")
	g.Expect(conditions.GetMessage(c, meta.StalledCondition)).To(ContainSubstring("failed checks"))
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v1"), "the primary is never touched by a failed analysis")
	g.Eventually(func() int32 { return replicas(g, ns, name) }, release, poll).Should(BeZero())
	g.Expect(apexSelectors()).To(HaveEach(Equal(name+"-primary")), "traffic never reached the canary")
}

func TestCanaryReconciler_ConfirmRolloutGate(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "gated"
	gate := newHookServer(t, 403)
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.Analysis.Iterations = 1
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "gate", Type: serinv1.ConfirmRolloutHook, URL: gate.URL + "/gate/check"}}
	})

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseWaiting))
	g.Eventually(func() int { return gate.count("/gate/check") }, release, poll).Should(BeNumerically(">=", 2), "the closed gate is asked again at the next interval")
	g.Consistently(phaseOf(ns, name), "2s", poll).Should(Equal(serinv1.CanaryPhaseWaiting))
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v1"))

	gate.status.Store(200)
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v2"))
}

func TestCanaryReconciler_TrackedConfigMap(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "configured"
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"level": "info"}}
	create(t, cm)
	d := newDeployment(ns, name, "example.com/app:v1", 1)
	d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
	create(t, d, newCanary(ns, name, func(c *serinv1.Canary) { c.Spec.Analysis.Iterations = 1 }))
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseInitialized))
	g.Expect(get(g, ns, "settings-primary", &corev1.ConfigMap{}).Data).To(Equal(map[string]string{"level": "info"}))
	primary := get(g, ns, name+"-primary", &appsv1.Deployment{})
	g.Expect(primary.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name).To(Equal("settings-primary"))
	phases := recordPhases(t, ns, name)

	cm = get(g, ns, "settings", &corev1.ConfigMap{})
	cm.Data["level"] = "debug"
	g.Expect(k8sClient.Update(context.Background(), cm)).To(Succeed())

	g.Eventually(phases.seen, release, poll).Should(ContainElement(serinv1.CanaryPhaseProgressing))
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(get(g, ns, "settings-primary", &corev1.ConfigMap{}).Data).To(Equal(map[string]string{"level": "debug"}))
}

func TestCanaryReconciler_RevertOnDeletion(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "reverted"
	initialized(t, g, ns, name, func(c *serinv1.Canary) { c.Spec.RevertOnDeletion = true })
	g.Eventually(func() int32 { return replicas(g, ns, name) }, release, poll).Should(BeZero())

	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Finalizers).To(ContainElement(serinv1.CanaryFinalizer))
	g.Expect(k8sClient.Delete(context.Background(), c)).To(Succeed())

	g.Eventually(func() bool {
		err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(c), &serinv1.Canary{})
		return apierrors.IsNotFound(err)
	}, release, poll).Should(BeTrue())
	g.Expect(replicas(g, ns, name)).To(Equal(int32(2)), "the target gets the primary's replicas back")
	g.Eventually(func() bool {
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name + "-primary"}, &appsv1.Deployment{})
		return apierrors.IsNotFound(err)
	}, release, poll).Should(BeTrue(), "the primary is removed")
	for _, svc := range []string{name + "-primary", name + "-canary"} {
		g.Eventually(func() bool {
			err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: svc}, &corev1.Service{})
			return apierrors.IsNotFound(err)
		}, release, poll).Should(BeTrue(), svc+" is removed")
	}
	apex := get(g, ns, name, &corev1.Service{})
	g.Expect(apex.Spec.Selector).To(Equal(map[string]string{"app": name}), "the apex Service selects the target again")
	g.Expect(apex.OwnerReferences).To(BeEmpty(), "the apex Service outlives the Canary")
}

func TestCanaryReconciler_DaemonSet(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "agent"
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, "example.com/agent:v1"),
		},
	}
	create(t, ds, newCanary(ns, name, func(c *serinv1.Canary) {
		c.Spec.TargetRef.Kind = "DaemonSet"
		c.Spec.Analysis.Iterations = 1
	}))
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseInitialized))
	primary := get(g, ns, name+"-primary", &appsv1.DaemonSet{})
	g.Expect(primary.Status.NumberReady).To(Equal(int32(2)), "one primary pod per node")
	g.Eventually(func() int32 { return get(g, ns, name, &appsv1.DaemonSet{}).Status.DesiredNumberScheduled }, release, poll).Should(BeZero())

	ds = get(g, ns, name, &appsv1.DaemonSet{})
	patch := client.MergeFrom(ds.DeepCopy())
	ds.Spec.Template.Spec.Containers[0].Image = "example.com/agent:v2"
	g.Expect(k8sClient.Patch(context.Background(), ds, patch)).To(Succeed())

	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(get(g, ns, name+"-primary", &appsv1.DaemonSet{}).Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/agent:v2"))
	g.Eventually(func() int32 { return get(g, ns, name, &appsv1.DaemonSet{}).Status.DesiredNumberScheduled }, release, poll).Should(BeZero())
}

func TestCanaryReconciler_StepWeightNeedsARouter(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "weighted"
	create(t, newDeployment(ns, name, "example.com/app:v1", 1), newCanary(ns, name, func(c *serinv1.Canary) {
		c.Spec.Analysis.Iterations, c.Spec.Analysis.StepWeight = 0, 10
	}))
	// Conditions and the rest of the status are patched one after the
	// other: wait for both.
	g.Eventually(func() bool {
		c := get(g, ns, name, &serinv1.Canary{})
		return conditions.IsStalled(c) && c.Status.ObservedGeneration == c.Generation
	}, release, poll).Should(BeTrue())
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(conditions.GetReason(c, meta.StalledCondition)).To(Equal(serinv1.UnsupportedStrategyReason))
	g.Expect(conditions.GetMessage(c, meta.StalledCondition)).To(ContainSubstring("supports blue/green releases only"))
	g.Expect(conditions.IsReady(c)).To(BeFalse())
}

// watchApexSelectors records every selector value the apex Service had.
func watchApexSelectors(t *testing.T, ns, name string) func() []string {
	return watchValues(t, &corev1.ServiceList{}, ns, name, false, func(obj client.Object) string {
		return obj.(*corev1.Service).Spec.Selector["app"]
	})
}

// watchValues records value(obj) for every watch event of the named object
// in list's kind, from its current state on; with changesOnly, a value
// equal to the one before is not recorded again.
func watchValues(t *testing.T, list client.ObjectList, ns, name string, changesOnly bool, value func(client.Object) string) func() []string {
	t.Helper()
	w, err := k8sClient.Watch(context.Background(), list, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	var (
		mu     sync.Mutex
		values []string
	)
	go func() {
		for ev := range w.ResultChan() {
			obj, ok := ev.Object.(client.Object)
			if !ok || obj.GetName() != name {
				continue
			}
			v := value(obj)
			mu.Lock()
			if n := len(values); !changesOnly || n == 0 || values[n-1] != v {
				values = append(values, v)
			}
			mu.Unlock()
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), values...)
	}
}

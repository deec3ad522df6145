package controller_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
)

// flaggerCluster is what Flagger leaves in a namespace after it initialised
// a Canary: its Canary, the target scaled to zero, <name>-primary serving,
// and the apex, primary and canary Services, all controlled by its Canary.
func flaggerCluster(t *testing.T, g Gomega, ns, name string) *unstructured.Unstructured {
	t.Helper()
	fc := &unstructured.Unstructured{}
	fc.SetAPIVersion("flagger.app/v1beta1")
	fc.SetKind("Canary")
	fc.SetNamespace(ns)
	fc.SetName(name)
	g.Expect(unstructured.SetNestedField(fc.Object, map[string]any{
		"targetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
		"service":   map[string]any{"port": int64(80), "targetPort": int64(8080)},
		"analysis":  map[string]any{"interval": "10s", "threshold": int64(2), "iterations": int64(3)},
	}, "spec")).To(Succeed())
	g.Eventually(func() error { return k8sClient.Create(context.Background(), fc) }, eventWait, poll).Should(Succeed())
	owner := metav1.OwnerReference{APIVersion: "flagger.app/v1beta1", Kind: "Canary", Name: name, UID: fc.GetUID(),
		Controller: new(true), BlockOwnerDeletion: new(true)}

	target := newDeployment(ns, name, "example.com/app:v1", 0)
	primary := newDeployment(ns, name+"-primary", "example.com/app:v1", 2)
	primary.Spec.Selector.MatchLabels["app"] = name + "-primary"
	primary.Spec.Template = podTemplate(name+"-primary", "example.com/app:v1")
	primary.OwnerReferences = []metav1.OwnerReference{owner}
	svc := func(svcName, selects string) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svcName, OwnerReferences: []metav1.OwnerReference{owner}},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": selects},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		}
	}
	create(t, target, primary, svc(name, name+"-primary"), svc(name+"-primary", name+"-primary"), svc(name+"-canary", name))
	g.Eventually(func() int32 { return get(g, ns, name+"-primary", &appsv1.Deployment{}).Status.ReadyReplicas }, release, poll).Should(Equal(int32(2)))
	return fc
}

// handOver does what the runbook's hand-over step does to one of Flagger's
// objects: drop Flagger's controller reference and annotate it
// serin.dev/adopt=true.
func handOver(g Gomega, obj client.Object) {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": nil,
		"annotations":     map[string]string{apply.AdoptAnnotation: "true"},
	}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k8sClient.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
}

// TestCanaryReconciler_MigrationFromFlagger follows README's migration
// runbook on a namespace that Flagger manages, with Flagger's objects
// present. A Serin Canary created too early touches none of them and says
// which to hand over; once they are handed over it takes the running
// primary and the Services as they are, the apex Service never selects
// anything but the primary, Flagger's Canary can be deleted without taking
// them along, and the next release is Serin's.
func TestCanaryReconciler_MigrationFromFlagger(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "migrated"
	fc := flaggerCluster(t, g, ns, name)
	apexSelectors := watchApexSelectors(t, ns, name)
	primaryGeneration := get(g, ns, name+"-primary", &appsv1.Deployment{}).Generation

	// Too early: everything is still Flagger's.
	create(t, newCanary(ns, name))
	g.Eventually(func() bool { return conditions.IsStalled(get(g, ns, name, &serinv1.Canary{})) }, eventWait, poll).Should(BeTrue())
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(conditions.GetReason(c, "Stalled")).To(Equal(serinv1.NotOwnedReason))
	g.Expect(conditions.GetMessage(c, "Stalled")).To(ContainSubstring(name + "-primary"))
	primary := get(g, ns, name+"-primary", &appsv1.Deployment{})
	g.Expect(primary.Generation).To(Equal(primaryGeneration), "Flagger's primary is not touched")
	g.Expect(metav1.GetControllerOf(primary).UID).To(Equal(fc.GetUID()))

	// The hand-over.
	handOver(g, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-primary"}})
	for _, svc := range []string{name, name + "-primary", name + "-canary"} {
		handOver(g, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc}})
	}
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseInitialized))
	c = get(g, ns, name, &serinv1.Canary{})
	for _, obj := range []client.Object{get(g, ns, name+"-primary", &appsv1.Deployment{}), get(g, ns, name, &corev1.Service{}),
		get(g, ns, name+"-primary", &corev1.Service{}), get(g, ns, name+"-canary", &corev1.Service{})} {
		g.Expect(metav1.GetControllerOf(obj)).NotTo(BeNil())
		g.Expect(metav1.GetControllerOf(obj).UID).To(Equal(c.UID), "%s is Serin's now", obj.GetName())
	}

	// Flagger's Canary goes; what it controlled stays.
	g.Expect(k8sClient.Delete(context.Background(), fc, client.PropagationPolicy(metav1.DeletePropagationForeground))).To(Succeed())
	g.Eventually(func() bool {
		err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(fc), fc.DeepCopy())
		return client.IgnoreNotFound(err) == nil && err != nil
	}, eventWait, poll).Should(BeTrue())
	g.Expect(get(g, ns, name+"-primary", &appsv1.Deployment{}).Status.ReadyReplicas).To(Equal(int32(2)))

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v2"))
	g.Expect(apexSelectors()).NotTo(BeEmpty())
	for _, s := range apexSelectors() {
		// The kubernetes router's blue/green promotion points the apex at
		// the canary for a moment; before the release, never.
		g.Expect(s).To(BeElementOf(name+"-primary", name))
	}
	g.Expect(apexSelectors()[:2]).To(HaveEach(Equal(name+"-primary")), "migration kept the traffic on the primary")
}

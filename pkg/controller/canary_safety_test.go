package controller_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/checks/webhook"
)

// watchImages records every image the named Deployment's pod template had,
// in order, from its current one on.
func watchImages(t *testing.T, ns, name string) func() []string {
	return watchValues(t, &appsv1.DeploymentList{}, ns, name, true, func(obj client.Object) string {
		return obj.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Image
	})
}

// operateWith requests an operation with extra annotations, as kubectl
// serin does.
func operateWith(g Gomega, ns, name, op string, extra map[string]string) string {
	id := time.Now().UTC().Format(time.RFC3339Nano)
	annotations := map[string]string{serinv1.OperationAnnotation: op, serinv1.OperationIDAnnotation: id}
	for k, v := range extra {
		annotations[k] = v
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k8sClient.Patch(context.Background(), &serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
	return id
}

// TestCanaryReconciler_TargetChangedDuringTheLastCheck: the target gets a
// new image while the last iteration's blocking load test still runs. The
// analysis passed for the old image, but the primary never runs the new one
// without its own analysis: the analysed revision is gone, so the new one
// is analysed from the start.
func TestCanaryReconciler_TargetChangedDuringTheLastCheck(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "raced"
	var (
		mu        sync.Mutex
		checksums []string
	)
	load := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p webhook.Payload
		_ = json.NewDecoder(req.Body).Decode(&p)
		mu.Lock()
		checksums = append(checksums, p.Checksum)
		first := len(checksums) == 1
		mu.Unlock()
		if first {
			// Pushed while the load test of v2 runs.
			setImage(NewWithT(t), ns, name, "example.com/app:v3")
			time.Sleep(time.Second)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(load.Close)
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.Analysis.Iterations = 1
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "load", URL: load.URL + "/load", Timeout: "10s"}}
	})
	images := watchImages(t, ns, name+"-primary")

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(func() string { return image(g, ns, name+"-primary") }, release, poll).Should(Equal("example.com/app:v3"))
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(images()).To(Equal([]string{"example.com/app:v1", "example.com/app:v3"}), "the primary never ran v2, nor v3 before its analysis")
	c := get(g, ns, name, &serinv1.Canary{})
	mu.Lock()
	defer mu.Unlock()
	g.Expect(checksums).To(HaveLen(2))
	g.Expect(checksums[1]).To(Equal(c.Status.LastPromotedSpec), "v3 was analysed before its promotion")
	g.Expect(checksums[0]).NotTo(Equal(checksums[1]))
}

// TestCanaryReconciler_SkipAnalysisMidAnalysis: setting skipAnalysis during
// an analysis promotes at the next reconcile, as Flagger does.
func TestCanaryReconciler_SkipAnalysisMidAnalysis(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "skipped"
	initialized(t, g, ns, name, func(c *serinv1.Canary) { c.Spec.Analysis.Iterations = 20 })

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(func() int { return get(g, ns, name, &serinv1.Canary{}).Status.Iterations }, release, poll).Should(Equal(1))
	c := get(g, ns, name, &serinv1.Canary{})
	patch := client.MergeFrom(c.DeepCopy())
	c.Spec.SkipAnalysis = true
	g.Expect(k8sClient.Patch(context.Background(), c, patch)).To(Succeed())

	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v2"))
	g.Expect(get(g, ns, name, &serinv1.Canary{}).Status.Iterations).To(BeNumerically("<", 5), "the remaining iterations were skipped")
	g.Eventually(func() []string { return events(g, ns, name, "SkippedAnalysis") }, eventWait, poll).ShouldNot(BeEmpty())
}

// TestCanaryReconciler_RevertOnDeletionMidAnalysis: deleting a Canary in
// the middle of an analysis hands the traffic back to the target running
// the promoted revision, not the unanalysed one.
func TestCanaryReconciler_RevertOnDeletionMidAnalysis(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "deleted-mid"
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.RevertOnDeletion = true
		c.Spec.Analysis.Iterations = 20
	})
	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(func() int { return get(g, ns, name, &serinv1.Canary{}).Status.Iterations }, release, poll).Should(Equal(1))

	deleteCanary(g, ns, name)
	g.Expect(image(g, ns, name)).To(Equal("example.com/app:v1"), "the target runs the promoted revision again")
	g.Expect(get(g, ns, name, &corev1.Service{}).Spec.Selector).To(Equal(map[string]string{"app": name}))
	g.Eventually(func() []string { return events(g, ns, name, "RestoredTarget") }, eventWait, poll).Should(ContainElement(ContainSubstring("never promoted")))
	d := get(g, ns, name, &appsv1.Deployment{})
	g.Expect(d.Spec.Template.Labels).To(Equal(map[string]string{"app": name}), "the target's own selector value")
	g.Expect(d.Spec.Template.Annotations).NotTo(HaveKey(serinv1.RevisionAnnotation))
}

// TestCanaryReconciler_RevertOnDeletionGivesUp: a target that cannot become
// ready (a quota forbids its pods) does not keep the Canary Terminating:
// after the progress deadline the traffic goes to it anyway, with a Warning.
func TestCanaryReconciler_RevertOnDeletionGivesUp(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "stuck"
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.RevertOnDeletion = true
		c.Spec.ProgressDeadlineSeconds = new(int32(10))
	})
	g.Eventually(func() int32 { return replicas(g, ns, name) }, release, poll).Should(BeZero())
	create(t, &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-more-pods"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}},
	})

	deleteCanary(g, ns, name)
	g.Eventually(func() []string { return events(g, ns, name, "ProgressDeadlineExceeded") }, eventWait, poll).Should(ContainElement(ContainSubstring("past the progress deadline")))
	g.Expect(get(g, ns, name, &corev1.Service{}).Spec.Selector).To(Equal(map[string]string{"app": name}))
}

// TestCanaryReconciler_Undo: after two promotions, undo puts the revision
// before back into the primary without an analysis, and no release starts
// for the target's unchanged revision.
func TestCanaryReconciler_Undo(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "undone"
	initialized(t, g, ns, name, func(c *serinv1.Canary) { c.Spec.Analysis.Iterations = 1 })
	v1 := get(g, ns, name, &serinv1.Canary{}).Status.LastPromotedSpec
	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(func() string { return get(g, ns, name, &serinv1.Canary{}).Status.LastPromotedSpec }, release, poll).ShouldNot(Equal(v1))
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))

	var kept appsv1.ControllerRevisionList
	g.Expect(k8sClient.List(context.Background(), &kept, client.InNamespace(ns), client.MatchingLabels{serinv1.KeptRevisionLabel: name})).To(Succeed())
	g.Expect(kept.Items).To(HaveLen(1))
	g.Expect(kept.Items[0].Annotations[serinv1.RevisionAnnotation]).To(Equal(v1))

	id := operateWith(g, ns, name, "undo", map[string]string{serinv1.OperationRevisionAnnotation: v1})
	handled(g, ns, name, id)
	g.Eventually(func() string { return image(g, ns, name+"-primary") }, release, poll).Should(Equal("example.com/app:v1"))
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.LastPromotedSpec).To(Equal(v1))
	g.Expect(c.Status.Phase).To(Equal(serinv1.CanaryPhaseSucceeded))
	g.Consistently(phaseOf(ns, name), "3s", poll).Should(Equal(serinv1.CanaryPhaseSucceeded), "no analysis of the target's unchanged revision")
	g.Eventually(func() []string { return events(g, ns, name, "OperationUndo") }, eventWait, poll).ShouldNot(BeEmpty())
}

// faultShard labels the Canary of the fault-injection test, served by a
// serin binary of its own.
const faultShard = "fault"

// TestCanaryReconciler_PromotionInterrupted kills the controller (a test
// build with the faultinject tag) right after it wrote the primary and
// before its status patch, then aborts: traffic ends on the last promoted
// revision, which is put back into the primary.
func TestCanaryReconciler_PromotionInterrupted(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "interrupted"
	start := serinProcess(t, g, ns, faultShard, "faultinject")

	faulty := start([]string{"SERIN_FAULT_EXIT_AFTER=PromotePrimary"})
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Labels = map[string]string{restartShard: faultShard}
		c.Spec.Analysis.Iterations = 1
	})
	v1 := get(g, ns, name, &serinv1.Canary{}).Status.LastPromotedSpec
	setImage(g, ns, name, "example.com/app:v2")

	exited := make(chan error, 1)
	go func() { exited <- faulty.Wait() }()
	select {
	case err := <-exited:
		g.Expect(err).To(HaveOccurred(), "the fault exits with status 3")
	case <-time.After(release):
		t.Fatal("the controller did not reach the promotion")
	}
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v2"), "the primary was written")
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.Phase).To(Equal(serinv1.CanaryPhasePromoting), "the status said Promoting before the copy")
	g.Expect(c.Status.LastPromotedSpec).To(Equal(v1))

	id := operateWith(g, ns, name, "abort", nil)
	start(nil)
	handled(g, ns, name, id)
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))
	g.Eventually(func() string { return image(g, ns, name+"-primary") }, release, poll).Should(Equal("example.com/app:v1"), "the last promoted revision is back in the primary")
	g.Expect(get(g, ns, name, &corev1.Service{}).Spec.Selector).To(Equal(map[string]string{"app": name + "-primary"}), "traffic is on the primary")
	g.Expect(get(g, ns, name, &serinv1.Canary{}).Status.LastPromotedSpec).To(Equal(v1))
	g.Eventually(func() bool {
		d := get(g, ns, name+"-primary", &appsv1.Deployment{})
		return d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == 2 && d.Status.ReadyReplicas == 2
	}, release, poll).Should(BeTrue(), "the primary rolls back out")
}

// deleteCanary deletes a Canary and waits until it is gone.
func deleteCanary(g Gomega, ns, name string) {
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(k8sClient.Delete(context.Background(), c)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(c), &serinv1.Canary{}))
	}, release, poll).Should(BeTrue())
}

// TestCanaryReconciler_ServiceNotOwned: a Canary whose apex Service name is
// taken by a Service it did not create leaves it alone and is Stalled with a
// message naming it, until the Service is handed over.
func TestCanaryReconciler_ServiceNotOwned(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "squatter"
	theirs := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "storefront"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "someone-else"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	create(t, theirs, newDeployment(ns, name, "example.com/app:v1", 1), newCanary(ns, name, func(c *serinv1.Canary) { c.Spec.Service.Name = "storefront" }))

	g.Eventually(func() string {
		return conditions.GetReason(get(g, ns, name, &serinv1.Canary{}), meta.StalledCondition)
	}, release, poll).Should(Equal(serinv1.NotOwnedReason))
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(conditions.GetMessage(c, meta.StalledCondition)).To(ContainSubstring("Service " + ns + "/storefront exists and was not created by this Canary"))
	svc := get(g, ns, "storefront", &corev1.Service{})
	g.Expect(svc.Spec.Selector).To(Equal(map[string]string{"app": "someone-else"}), "their Service is not changed")
	g.Expect(svc.OwnerReferences).To(BeEmpty())

	// Handed over: the Canary takes it and initialises.
	patch := client.MergeFrom(svc.DeepCopy())
	svc.Annotations = map[string]string{"serin.dev/adopt": "true"}
	g.Expect(k8sClient.Patch(context.Background(), svc, patch)).To(Succeed())
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseInitialized))
	svc = get(g, ns, "storefront", &corev1.Service{})
	g.Expect(svc.Spec.Selector).To(Equal(map[string]string{"app": name + "-primary"}))
	g.Expect(metav1.IsControlledBy(svc, get(g, ns, name, &serinv1.Canary{}))).To(BeTrue())
}

// TestCanaryReconciler_ReleaseLeavesAForeignService: deleting a Canary that
// never got its apex Service (someone else's has the name) leaves that
// Service as it was: no selector change, not marked adoptable.
func TestCanaryReconciler_ReleaseLeavesAForeignService(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "never-apex"
	theirs := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "checkout"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "someone-else"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	create(t, theirs, newDeployment(ns, name, "example.com/app:v1", 1), newCanary(ns, name, func(c *serinv1.Canary) {
		c.Spec.Service.Name = "checkout"
		c.Spec.RevertOnDeletion = true
	}))
	g.Eventually(func() string {
		return conditions.GetReason(get(g, ns, name, &serinv1.Canary{}), meta.StalledCondition)
	}, release, poll).Should(Equal(serinv1.NotOwnedReason))

	deleteCanary(g, ns, name)
	svc := get(g, ns, "checkout", &corev1.Service{})
	g.Expect(svc.Spec.Selector).To(Equal(map[string]string{"app": "someone-else"}))
	g.Expect(svc.Annotations).NotTo(HaveKey("serin.dev/adopt"))
}

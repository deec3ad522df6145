package workload_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
	"github.com/serin-dev/serin/pkg/workload"
)

const (
	// rolloutTimeout bounds waiting for the controllers, the scheduler and
	// kwok to act on a change, on a shared two-core machine.
	rolloutTimeout = 90 * time.Second
	poll           = 200 * time.Millisecond
)

// TestIntegration runs the workload operations against a real control
// plane: kube-controller-manager rolls out Deployments and DaemonSets and
// runs the autoscalers, kwok makes their pods ready on two fake nodes.
func TestIntegration(t *testing.T) {
	// Fail rather than skip without the binaries, so that a misconfigured
	// CI cannot pass by running nothing.
	if _, err := testenv.BinDir(); err != nil {
		t.Fatal(err)
	}
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.Full, Nodes: 2, CRDPaths: []string{"../../artifacts/crds"}})
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1beta1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{c: c, w: workload.New(c, c, workload.Options{})}

	t.Run("Deployment", func(t *testing.T) { t.Parallel(); h.testDeployment(t) })
	t.Run("DaemonSet", func(t *testing.T) { t.Parallel(); h.testDaemonSet(t) })
	t.Run("Autoscaler", func(t *testing.T) { t.Parallel(); h.testAutoscaler(t) })
	t.Run("InvalidTargets", func(t *testing.T) { t.Parallel(); h.testInvalidTargets(t) })
}

type harness struct {
	c client.Client
	w *workload.Workloads
}

// testDeployment follows a Deployment through initialisation, a config
// change and its promotion, and the revert.
func (h *harness) testDeployment(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := h.namespace(t)

	h.create(t, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo-config", Labels: map[string]string{"app": "podinfo"}},
		Data:       map[string]string{"greeting": "hello"},
	})
	h.create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo-secret"},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"password": []byte("s3cret")},
	})
	h.create(t, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo-static", Annotations: map[string]string{workload.ConfigTrackingAnnotation: workload.ConfigTrackingDisabled}},
		Data:       map[string]string{"static": "1"},
	})
	selfSelector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}}
	target := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: "podinfo",
			Labels:      map[string]string{"app": "podinfo", "team": "a"},
			Annotations: map[string]string{"example.com/note": "copied"},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(2)),
			Selector: selfSelector,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "podinfo"}},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{
						Name: "init", Image: "busybox",
						Env: []corev1.EnvVar{{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-secret"}, Key: "password",
						}}}},
					}},
					Containers: []corev1.Container{{
						Name: "app", Image: "podinfo:1",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
						Env: []corev1.EnvVar{{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-config"}, Key: "greeting",
						}}}},
						EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-secret"}}}},
					}},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-config"}}}},
						{Name: "static", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-static"}}}},
						{Name: "absent", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: new(true)}}},
					},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: selfSelector,
					}},
				},
			},
		},
	}
	h.create(t, target)
	canary := h.canary(t, ns, "Deployment", "podinfo", nil)

	// The target rolls out before Serin touches anything.
	obs := h.eventually(t, canary, func(o workload.Observation) bool { return o.Canary.Ready })
	g.Expect(obs.TargetFound).To(BeTrue())
	g.Expect(obs.Selector.Key).To(Equal("app"))
	g.Expect(obs.Selector.Value).To(Equal("podinfo"))
	g.Expect(obs.Ports).To(Equal([]corev1.ContainerPort{{Name: "http", ContainerPort: 9898, Protocol: corev1.ProtocolTCP}}))
	g.Expect(obs.TrackedConfigs).To(HaveKey("configmap/podinfo-config"))
	g.Expect(obs.TrackedConfigs).To(HaveKey("secret/podinfo-secret"))
	g.Expect(obs.TrackedConfigs).To(HaveLen(2), "podinfo-static opted out, absent is optional and missing")
	g.Expect(obs.Primary).To(Equal(workload.State{Message: "Deployment podinfo-primary not found"}))
	rev, configs := obs.Revision, obs.TrackedConfigs
	g.Expect(rev).NotTo(BeEmpty())

	// Initialisation creates the primary and the config copies.
	g.Expect(h.w.EnsurePrimary(ctx, canary)).To(Succeed())
	primary := &appsv1.Deployment{}
	h.get(t, ns, "podinfo-primary", primary)
	g.Expect(metav1.IsControlledBy(primary, canary)).To(BeTrue())
	g.Expect(primary.Labels).To(Equal(map[string]string{"app": "podinfo-primary", "team": "a"}))
	g.Expect(primary.Annotations).To(HaveKeyWithValue("example.com/note", "copied"))
	// The Deployment controller writes its own revision annotation on the
	// primary; Serin must not have copied the target's.
	for _, mf := range primary.ManagedFields {
		if mf.Manager == workload.DefaultFieldManager && mf.FieldsV1 != nil {
			g.Expect(string(mf.FieldsV1.Raw)).NotTo(ContainSubstring("deployment.kubernetes.io/revision"))
		}
	}
	g.Expect(*primary.Spec.Replicas).To(Equal(int32(2)))
	g.Expect(primary.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app": "podinfo-primary"}))
	tmpl := primary.Spec.Template
	g.Expect(tmpl.Labels).To(Equal(map[string]string{"app": "podinfo-primary"}))
	g.Expect(tmpl.Annotations).To(HaveKeyWithValue(workload.RevisionAnnotation, rev))
	g.Expect(tmpl.Spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels).To(Equal(map[string]string{"app": "podinfo-primary"}))
	g.Expect(tmpl.Spec.InitContainers[0].Env[0].ValueFrom.SecretKeyRef.Name).To(Equal("podinfo-secret-primary"))
	g.Expect(tmpl.Spec.Containers[0].Env[0].ValueFrom.ConfigMapKeyRef.Name).To(Equal("podinfo-config-primary"))
	g.Expect(tmpl.Spec.Containers[0].EnvFrom[0].SecretRef.Name).To(Equal("podinfo-secret-primary"))
	g.Expect(tmpl.Spec.Volumes[0].ConfigMap.Name).To(Equal("podinfo-config-primary"))
	g.Expect(tmpl.Spec.Volumes[1].ConfigMap.Name).To(Equal("podinfo-static"), "opted out: the original")
	g.Expect(tmpl.Spec.Volumes[2].ConfigMap.Name).To(Equal("absent"), "optional and missing: the original")

	cmCopy, secretCopy := &corev1.ConfigMap{}, &corev1.Secret{}
	h.get(t, ns, "podinfo-config-primary", cmCopy)
	h.get(t, ns, "podinfo-secret-primary", secretCopy)
	g.Expect(cmCopy.Data).To(Equal(map[string]string{"greeting": "hello"}))
	g.Expect(cmCopy.Labels).To(Equal(map[string]string{"app": "podinfo"}))
	g.Expect(metav1.IsControlledBy(cmCopy, canary)).To(BeTrue())
	g.Expect(secretCopy.Type).To(Equal(corev1.SecretTypeOpaque))
	g.Expect(secretCopy.Data).To(Equal(map[string][]byte{"password": []byte("s3cret")}))
	g.Expect(metav1.IsControlledBy(secretCopy, canary)).To(BeTrue())
	g.Expect(apierrors.IsNotFound(h.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "podinfo-static-primary"}, &corev1.ConfigMap{}))).To(BeTrue())

	obs = h.eventually(t, canary, func(o workload.Observation) bool { return o.Primary.Ready })
	g.Expect(obs.Revision).To(Equal(rev))

	// Nothing changed: no write, neither while initialising nor later.
	primaryObjects := []named{
		{&appsv1.Deployment{}, "podinfo-primary"},
		{&corev1.ConfigMap{}, "podinfo-config-primary"},
		{&corev1.Secret{}, "podinfo-secret-primary"},
	}
	versions := h.versions(t, ns, primaryObjects...)
	g.Expect(h.w.EnsurePrimary(ctx, canary)).To(Succeed())
	g.Expect(h.versions(t, ns, primaryObjects...)).To(Equal(versions))

	// The primary serves: the target goes to zero, its revision stays.
	g.Expect(h.w.ScaleTargetToZero(ctx, canary)).To(Succeed())
	g.Expect(h.w.ScaleTargetToZero(ctx, canary)).To(Succeed(), "idempotent")
	h.get(t, ns, "podinfo", target)
	g.Expect(*target.Spec.Replicas).To(BeZero())
	g.Eventually(func(g Gomega) {
		g.Expect(h.c.Get(ctx, client.ObjectKeyFromObject(target), target)).To(Succeed())
		g.Expect(target.Status.Replicas).To(BeZero())
	}).WithTimeout(rolloutTimeout).WithPolling(poll).Should(Succeed())
	obs = h.observe(t, canary)
	g.Expect(obs.Canary).To(Equal(workload.State{Exists: true, Message: "scaled to zero"}))
	g.Expect(obs.Primary.Ready).To(BeTrue())
	g.Expect(obs.Revision).To(Equal(rev), "scaling is no new revision")

	canary.Status.LastPromotedSpec = rev
	g.Expect(h.w.Promote(ctx, canary, rev)).To(Succeed())
	g.Expect(h.w.EnsurePrimary(ctx, canary)).To(Succeed())
	g.Expect(h.versions(t, ns, primaryObjects...)).To(Equal(versions))

	// New config data is a new revision; the copy keeps the promoted data
	// until the promotion.
	cm := &corev1.ConfigMap{}
	h.get(t, ns, "podinfo-config", cm)
	cm.Data["greeting"] = "hola"
	g.Expect(h.c.Update(ctx, cm)).To(Succeed())
	obs = h.observe(t, canary)
	g.Expect(obs.Revision).NotTo(Equal(rev))
	g.Expect(obs.TrackedConfigs["configmap/podinfo-config"]).NotTo(Equal(configs["configmap/podinfo-config"]))
	g.Expect(obs.TrackedConfigs["secret/podinfo-secret"]).To(Equal(configs["secret/podinfo-secret"]))
	newRev := obs.Revision
	g.Expect(h.w.EnsurePrimary(ctx, canary)).To(Succeed())
	h.get(t, ns, "podinfo-config-primary", cmCopy)
	g.Expect(cmCopy.Data).To(Equal(map[string]string{"greeting": "hello"}), "EnsurePrimary does not promote")

	g.Expect(h.w.ScaleCanaryUp(ctx, canary)).To(Succeed())
	h.get(t, ns, "podinfo", target)
	g.Expect(*target.Spec.Replicas).To(Equal(int32(2)), "as many as the primary")
	h.eventually(t, canary, func(o workload.Observation) bool { return o.Canary.Ready })

	// Only the analysed revision is promoted: a target that moved on is
	// refused before anything is written.
	err := h.w.Promote(ctx, canary, rev)
	g.Expect(errors.Is(err, workload.ErrRevisionChanged)).To(BeTrue(), "%v", err)
	h.get(t, ns, "podinfo-config-primary", cmCopy)
	g.Expect(cmCopy.Data).To(Equal(map[string]string{"greeting": "hello"}), "a refused promotion writes nothing")
	g.Expect(h.kept(t, canary)).To(BeEmpty())

	g.Expect(h.w.Promote(ctx, canary, newRev)).To(Succeed())
	h.get(t, ns, "podinfo-config-primary", cmCopy)
	g.Expect(cmCopy.Data).To(Equal(map[string]string{"greeting": "hola"}))
	h.get(t, ns, "podinfo-secret-primary", secretCopy)
	g.Expect(secretCopy.ResourceVersion).To(Equal(versions[2]), "unchanged Secret: no write")
	h.get(t, ns, "podinfo-primary", primary)
	g.Expect(primary.Spec.Template.Annotations).To(HaveKeyWithValue(workload.RevisionAnnotation, newRev), "the primary's pods roll onto the new data")
	h.eventually(t, canary, func(o workload.Observation) bool { return o.Primary.Ready && o.Primary.Revision == newRev })

	// What the primary ran before is kept, Secret copies apart, and can be
	// restored: the pod template and the config copies' content.
	kept := h.kept(t, canary)
	g.Expect(kept).To(HaveLen(1))
	g.Expect(kept[0].Revision).To(Equal(int64(1)))
	g.Expect(kept[0].Annotations).To(HaveKeyWithValue(workload.RevisionAnnotation, rev))
	g.Expect(metav1.IsControlledBy(&kept[0], canary)).To(BeTrue())
	g.Expect(string(kept[0].Data.Raw)).NotTo(ContainSubstring("s3cret"), "Secret data stays out of the ControllerRevision")
	keptSecret := &corev1.Secret{}
	h.get(t, ns, kept[0].Name, keptSecret)
	g.Expect(metav1.IsControlledBy(keptSecret, canary)).To(BeTrue())
	var keptContent struct {
		Template corev1.PodTemplateSpec `json:"template"`
	}
	g.Expect(json.Unmarshal(kept[0].Data.Raw, &keptContent)).To(Succeed())
	g.Expect(keptContent.Template.Spec.Containers[0].Image).To(Equal("podinfo:1"), "the kept revision holds the template the primary ran")
	g.Expect(h.w.Promote(ctx, canary, newRev)).To(Succeed())
	g.Expect(h.kept(t, canary)).To(HaveLen(1), "promoting the same revision again keeps nothing more")

	g.Expect(h.w.Restore(ctx, canary, rev)).To(Succeed())
	h.get(t, ns, "podinfo-config-primary", cmCopy)
	g.Expect(cmCopy.Data).To(Equal(map[string]string{"greeting": "hello"}))
	h.get(t, ns, "podinfo-primary", primary)
	g.Expect(primary.Spec.Template.Annotations).To(HaveKeyWithValue(workload.RevisionAnnotation, rev))
	h.eventually(t, canary, func(o workload.Observation) bool { return o.Primary.Ready && o.Primary.Revision == rev })
	g.Expect(h.w.Restore(ctx, canary, rev)).To(Succeed(), "idempotent")
	err = h.w.Restore(ctx, canary, "0123456789abcdef")
	g.Expect(errors.Is(err, workload.ErrRevisionNotKept)).To(BeTrue(), "%v", err)

	// Promoting again brings the new revision back.
	g.Expect(h.w.Promote(ctx, canary, newRev)).To(Succeed())
	h.eventually(t, canary, func(o workload.Observation) bool { return o.Primary.Ready && o.Primary.Revision == newRev })
	canary.Status.LastPromotedSpec = newRev

	// Revert: the target takes over at the primary's scale, Serin's
	// objects go, the user's stay.
	g.Expect(h.w.ScaleTargetToZero(ctx, canary)).To(Succeed())
	g.Expect(h.w.Revert(ctx, canary)).To(Succeed())
	h.get(t, ns, "podinfo", target)
	g.Expect(*target.Spec.Replicas).To(Equal(int32(2)))
	for _, r := range primaryObjects {
		g.Eventually(func() bool {
			return apierrors.IsNotFound(h.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: r.name}, r.obj))
		}).WithTimeout(rolloutTimeout).WithPolling(poll).Should(BeTrue(), "%s deleted", r.name)
	}
	h.get(t, ns, "podinfo-config", &corev1.ConfigMap{})
	h.get(t, ns, "podinfo-secret", &corev1.Secret{})
	h.eventually(t, canary, func(o workload.Observation) bool { return o.Canary.Ready && !o.Primary.Exists })
	g.Expect(h.w.Revert(ctx, canary)).To(Succeed(), "idempotent")
}

// testDaemonSet scales a DaemonSet to zero with a nodeSelector while its
// primary keeps running on every node.
func (h *harness) testDaemonSet(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := h.namespace(t)
	labels := map[string]string{"app.kubernetes.io/name": "agent"}
	target := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "agent:1"}}},
			},
		},
	}
	h.create(t, target)
	canary := h.canary(t, ns, "DaemonSet", "agent", nil)
	obs := h.eventually(t, canary, func(o workload.Observation) bool { return o.Canary.Ready })
	rev := obs.Revision

	g.Expect(h.w.EnsurePrimary(ctx, canary)).To(Succeed())
	primary := &appsv1.DaemonSet{}
	h.get(t, ns, "agent-primary", primary)
	g.Expect(primary.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app.kubernetes.io/name": "agent-primary"}))
	g.Expect(metav1.IsControlledBy(primary, canary)).To(BeTrue())
	h.eventually(t, canary, func(o workload.Observation) bool { return o.Primary.Ready })
	h.get(t, ns, "agent-primary", primary)
	g.Expect(primary.Status.DesiredNumberScheduled).To(Equal(int32(2)), "one pod per kwok node")

	g.Expect(h.w.ScaleTargetToZero(ctx, canary)).To(Succeed())
	h.get(t, ns, "agent", target)
	g.Expect(target.Spec.Template.Spec.NodeSelector).To(Equal(map[string]string{workload.ScaleToZeroNodeSelector: "true"}))
	g.Eventually(func(g Gomega) {
		g.Expect(h.c.Get(ctx, client.ObjectKeyFromObject(target), target)).To(Succeed())
		g.Expect(target.Status.ObservedGeneration).To(Equal(target.Generation))
		g.Expect(target.Status.DesiredNumberScheduled).To(BeZero())
		g.Expect(target.Status.CurrentNumberScheduled).To(BeZero())
	}).WithTimeout(rolloutTimeout).WithPolling(poll).Should(Succeed())
	obs = h.observe(t, canary)
	g.Expect(obs.Canary).To(Equal(workload.State{Exists: true, Message: "scaled to zero"}))
	g.Expect(obs.Primary.Ready).To(BeTrue(), "the primary keeps running")
	g.Expect(obs.Revision).To(Equal(rev), "the scale-to-zero nodeSelector is no new revision")

	// Promoting the scaled-down target changes nothing in the primary: the
	// nodeSelector is not copied.
	versions := h.versions(t, ns, named{&appsv1.DaemonSet{}, "agent-primary"})
	g.Expect(h.w.Promote(ctx, canary, rev)).To(Succeed())
	g.Expect(h.versions(t, ns, named{&appsv1.DaemonSet{}, "agent-primary"})).To(Equal(versions))
	h.get(t, ns, "agent-primary", primary)
	g.Expect(primary.Spec.Template.Spec.NodeSelector).To(BeEmpty())
	g.Expect(primary.Status.DesiredNumberScheduled).To(Equal(int32(2)))

	g.Expect(h.w.ScaleCanaryUp(ctx, canary)).To(Succeed())
	h.get(t, ns, "agent", target)
	g.Expect(target.Spec.Template.Spec.NodeSelector).To(BeEmpty())
	obs = h.eventually(t, canary, func(o workload.Observation) bool { return o.Canary.Ready })
	g.Expect(obs.Revision).To(Equal(rev))
	h.get(t, ns, "agent", target)
	g.Expect(target.Status.DesiredNumberScheduled).To(Equal(int32(2)))
}

// testAutoscaler copies the target's autoscaler for the primary and leaves
// the primary's replica count to it.
func (h *harness) testAutoscaler(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := h.namespace(t)
	labels := map[string]string{"app": "web"}
	h.create(t, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1"}}},
			},
		},
	})
	h.create(t, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    new(int32(2)),
			MaxReplicas:    4,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: new(int32(80))},
			}}},
		},
	})
	canary := h.canary(t, ns, "Deployment", "web", &v1beta1.AutoscalerReference{
		Name:                  "web",
		PrimaryScalerReplicas: &v1beta1.ScalerReplicas{MinReplicas: new(int32(3)), MaxReplicas: new(int32(6))},
	})
	h.eventually(t, canary, func(o workload.Observation) bool { return o.Canary.Ready })

	g.Expect(h.w.EnsurePrimary(ctx, canary)).To(Succeed())
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	h.get(t, ns, "web-primary", hpa)
	g.Expect(hpa.Spec.ScaleTargetRef).To(Equal(autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web-primary"}))
	g.Expect(*hpa.Spec.MinReplicas).To(Equal(int32(3)))
	g.Expect(hpa.Spec.MaxReplicas).To(Equal(int32(6)))
	g.Expect(hpa.Spec.Metrics).To(HaveLen(1))
	g.Expect(metav1.IsControlledBy(hpa, canary)).To(BeTrue())
	h.get(t, ns, "web", hpa)
	g.Expect(hpa.Spec.ScaleTargetRef.Name).To(Equal("web"), "the target's autoscaler is left alone")

	// The primary starts at the target's count; the real HPA controller
	// then raises it to the overridden minimum.
	primary := &appsv1.Deployment{}
	g.Eventually(func(g Gomega) {
		g.Expect(h.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-primary"}, primary)).To(Succeed())
		g.Expect(*primary.Spec.Replicas).To(Equal(int32(3)))
	}).WithTimeout(rolloutTimeout).WithPolling(poll).Should(Succeed())
	h.eventually(t, canary, func(o workload.Observation) bool { return o.Primary.Ready })

	// The autoscaler's change is no reason to write, nor to reset it.
	primaryObjects := []named{{&appsv1.Deployment{}, "web-primary"}, {&autoscalingv2.HorizontalPodAutoscaler{}, "web-primary"}}
	versions := h.versions(t, ns, primaryObjects...)
	g.Expect(h.w.EnsurePrimary(ctx, canary)).To(Succeed())
	g.Expect(h.w.Promote(ctx, canary, h.observe(t, canary).Revision)).To(Succeed())
	g.Expect(h.versions(t, ns, primaryObjects...)).To(Equal(versions))

	// A promotion with a change keeps the autoscaler's count.
	target := &appsv1.Deployment{}
	h.get(t, ns, "web", target)
	target.Spec.Template.Spec.Containers[0].Image = "web:2"
	g.Expect(h.c.Update(ctx, target)).To(Succeed())
	g.Expect(h.w.Promote(ctx, canary, h.observe(t, canary).Revision)).To(Succeed())
	h.get(t, ns, "web-primary", primary)
	g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(Equal("web:2"))
	g.Expect(*primary.Spec.Replicas).To(Equal(int32(3)))

	// Scaled up from zero, the target starts at its autoscaler's minimum.
	g.Expect(h.w.ScaleTargetToZero(ctx, canary)).To(Succeed())
	g.Expect(h.w.ScaleCanaryUp(ctx, canary)).To(Succeed())
	h.get(t, ns, "web", target)
	g.Expect(*target.Spec.Replicas).To(Equal(int32(2)))

	// Revert deletes the primary's autoscaler with the primary.
	g.Expect(h.w.Revert(ctx, canary)).To(Succeed())
	g.Expect(apierrors.IsNotFound(h.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-primary"}, &autoscalingv2.HorizontalPodAutoscaler{}))).To(BeTrue())
	h.get(t, ns, "web", hpa)
}

// testInvalidTargets covers the errors the reconciler reports as Stalled.
func (h *harness) testInvalidTargets(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := h.namespace(t)
	deploy := func(name string, labels map[string]string) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: new(int32(1)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
				},
			},
		}
	}

	h.create(t, deploy("unlabelled", map[string]string{"component": "x"}))
	canary := h.canary(t, ns, "Deployment", "unlabelled", nil)
	_, err := h.w.Observe(ctx, canary)
	g.Expect(errors.Is(err, workload.ErrInvalid)).To(BeTrue(), "got %v", err)
	err = h.w.EnsurePrimary(ctx, canary)
	g.Expect(errors.Is(err, workload.ErrInvalid)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(Equal(fmt.Sprintf("target Deployment %s/unlabelled: invalid canary setup: spec.selector.matchLabels has none of the selector labels app, name, app.kubernetes.io/name", ns)))

	// A primary name taken by someone else's object is not taken over.
	h.create(t, deploy("taken", map[string]string{"app": "taken"}))
	h.create(t, deploy("taken-primary", map[string]string{"app": "other"}))
	canary = h.canary(t, ns, "Deployment", "taken", nil)
	err = h.w.EnsurePrimary(ctx, canary)
	g.Expect(errors.Is(err, apply.ErrNotOwned)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("Deployment " + ns + "/taken-primary exists and was not created by this Canary"))
	g.Expect(h.w.Revert(ctx, canary)).To(Succeed())
	h.get(t, ns, "taken-primary", &appsv1.Deployment{})

	// A missing required config is an error (not ErrInvalid: it may be
	// created next).
	d := deploy("needs-config", map[string]string{"app": "needs-config"})
	d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}}}}
	h.create(t, d)
	canary = h.canary(t, ns, "Deployment", "needs-config", nil)
	_, err = h.w.Observe(ctx, canary)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "got %v", err)
	g.Expect(errors.Is(err, workload.ErrInvalid)).To(BeFalse())
	g.Expect(err.Error()).To(HavePrefix(fmt.Sprintf("target Deployment %s/needs-config: reading ConfigMap missing used by the pod template:", ns)))
}

// namespace creates a namespace for one test and waits for its default
// ServiceAccount, without which no pod is admitted.
func (h *harness) namespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("wl-%d", rand.Int64N(1<<40))
	h.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	NewWithT(t).Eventually(func() error {
		return h.c.Get(t.Context(), client.ObjectKey{Namespace: name, Name: "default"}, &corev1.ServiceAccount{})
	}).WithTimeout(rolloutTimeout).WithPolling(poll).Should(Succeed())
	return name
}

func (h *harness) create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := h.c.Create(t.Context(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func (h *harness) get(t *testing.T, ns, name string, obj client.Object) {
	t.Helper()
	if err := h.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("reading %T %s/%s: %v", obj, ns, name, err)
	}
}

// canary creates a Canary, the owner of what EnsurePrimary creates.
func (h *harness) canary(t *testing.T, ns, kind, name string, autoscaler *v1beta1.AutoscalerReference) *v1beta1.Canary {
	t.Helper()
	c := &v1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1beta1.CanarySpec{
			TargetRef:     v1beta1.TargetReference{APIVersion: "apps/v1", Kind: kind, Name: name},
			AutoscalerRef: autoscaler,
			Service:       v1beta1.CanaryService{Port: 9898},
			Analysis:      v1beta1.CanaryAnalysis{Interval: "1m", Iterations: 1},
		},
	}
	h.create(t, c)
	return c
}

// kept lists the ControllerRevisions that keep the Canary's revisions.
func (h *harness) kept(t *testing.T, canary *v1beta1.Canary) []appsv1.ControllerRevision {
	t.Helper()
	var list appsv1.ControllerRevisionList
	if err := h.c.List(t.Context(), &list, client.InNamespace(canary.Namespace), client.MatchingLabels{workload.KeptRevisionLabel: canary.Name}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func (h *harness) observe(t *testing.T, canary *v1beta1.Canary) workload.Observation {
	t.Helper()
	obs, err := h.w.Observe(t.Context(), canary)
	if err != nil {
		t.Fatalf("observing: %v", err)
	}
	return obs
}

// eventually observes until cond holds and returns that observation.
func (h *harness) eventually(t *testing.T, canary *v1beta1.Canary, cond func(workload.Observation) bool) workload.Observation {
	t.Helper()
	var obs workload.Observation
	NewWithT(t).Eventually(func() (bool, error) {
		var err error
		obs, err = h.w.Observe(t.Context(), canary)
		return err == nil && cond(obs), err
	}).WithTimeout(rolloutTimeout).WithPolling(poll).Should(BeTrue(), func() string { return fmt.Sprintf("last observation: %+v", obs) })
	return obs
}

// named is an object to read into, and its name.
type named struct {
	obj  client.Object
	name string
}

// versions reads the resourceVersions of objects, to prove that a call
// wrote nothing.
func (h *harness) versions(t *testing.T, ns string, objects ...named) []string {
	t.Helper()
	var out []string
	for _, o := range objects {
		h.get(t, ns, o.name, o.obj)
		out = append(out, o.obj.GetResourceVersion())
	}
	return out
}

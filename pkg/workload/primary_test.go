package workload

import (
	"encoding/json"
	"errors"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestPrimaryPodTemplate(t *testing.T) {
	g := NewWithT(t)
	in := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      map[string]string{"app": "podinfo", "version": "1"},
			Annotations: map[string]string{"prometheus.io/scrape": "true"},
		},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{ScaleToZeroNodeSelector: "true"},
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: "zone",
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}},
			}},
			Volumes: []corev1.Volume{
				{Name: "a", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "tracked"}}}},
				{Name: "b", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "opted-out"}}}},
			},
			Containers: []corev1.Container{{Name: "app", Image: "podinfo:1"}},
		},
	}
	before := in.DeepCopy()
	out := primaryPodTemplate(in, "app", "podinfo", map[configRef]bool{{configMapKind, "tracked"}: true}, "rev1")

	g.Expect(out.Labels).To(Equal(map[string]string{"app": "podinfo-primary", "version": "1"}))
	g.Expect(out.Annotations).To(Equal(map[string]string{"prometheus.io/scrape": "true", RevisionAnnotation: "rev1"}))
	g.Expect(out.Spec.NodeSelector).To(BeNil(), "the primary never carries the scale-to-zero nodeSelector")
	g.Expect(out.Spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels).To(Equal(map[string]string{"app": "podinfo-primary"}))
	g.Expect(out.Spec.Volumes[0].ConfigMap.Name).To(Equal("tracked-primary"))
	g.Expect(out.Spec.Volumes[1].ConfigMap.Name).To(Equal("opted-out"))
	g.Expect(out.Spec.Containers).To(Equal(in.Spec.Containers))
	g.Expect(&in).To(Equal(before), "input must not change")
}

func TestPrimaryReplicas(t *testing.T) {
	tests := []struct {
		name         string
		target, live *int32
		autoscaled   bool
		want         int32
	}{
		{name: "new primary takes the target's count", target: new(int32(3)), want: 3},
		{name: "promotion takes the target's count", target: new(int32(3)), live: new(int32(5)), want: 3},
		{name: "a target at zero leaves the primary's count", target: new(int32(0)), live: new(int32(5)), want: 5},
		{name: "new primary of a target at zero", target: new(int32(0)), want: 1},
		{name: "autoscaler owns a running primary", target: new(int32(3)), live: new(int32(7)), autoscaled: true, want: 7},
		{name: "new autoscaled primary starts at the target's count", target: new(int32(3)), autoscaled: true, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(*primaryReplicas(tt.target, tt.live, tt.autoscaled)).To(Equal(tt.want))
		})
	}
}

func TestCanaryReplicaCount(t *testing.T) {
	tests := []struct {
		name                        string
		target, primary, hpaMinimum *int32
		autoscaled                  bool
		want                        int32
	}{
		{name: "the primary's count", target: new(int32(0)), primary: new(int32(4)), want: 4},
		{name: "back to the primary's count from another one", target: new(int32(2)), primary: new(int32(4)), want: 4},
		{name: "no primary", target: new(int32(0)), want: 1},
		{name: "no primary keeps a running target", target: new(int32(3)), want: 3},
		{name: "primary at zero", target: new(int32(0)), primary: new(int32(0)), want: 1},
		{name: "autoscaler minimum", target: new(int32(0)), primary: new(int32(4)), hpaMinimum: new(int32(2)), autoscaled: true, want: 2},
		{name: "autoscaler without minimum", target: new(int32(0)), autoscaled: true, want: 1},
		{name: "autoscaler owns a running target", target: new(int32(6)), primary: new(int32(4)), hpaMinimum: new(int32(2)), autoscaled: true, want: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(canaryReplicaCount(tt.target, tt.primary, tt.hpaMinimum, tt.autoscaled)).To(Equal(tt.want))
		})
	}
}

func TestDeploymentPrimary(t *testing.T) {
	g := NewWithT(t)
	target := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test", ResourceVersion: "9", Generation: 3},
		Spec: appsv1.DeploymentSpec{
			Replicas:                new(int32(3)),
			Selector:                &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}},
			Strategy:                appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: new(intstr.FromInt32(2))}},
			MinReadySeconds:         5,
			RevisionHistoryLimit:    new(int32(4)),
			ProgressDeadlineSeconds: new(int32(120)),
			Paused:                  true,
		},
		Status: appsv1.DeploymentStatus{Replicas: 3},
	}
	parts := primaryParts{
		meta:     metav1.ObjectMeta{Name: "podinfo-primary", Namespace: "test"},
		selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo-primary"}},
		template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "podinfo-primary"}}},
		replicas: new(int32(5)),
	}
	got := deploymentTarget{}.primary(target, parts).(*appsv1.Deployment)
	g.Expect(got).To(Equal(&appsv1.Deployment{
		ObjectMeta: parts.meta,
		Spec: appsv1.DeploymentSpec{
			Replicas:                new(int32(5)),
			Selector:                parts.selector,
			Template:                parts.template,
			Strategy:                target.Spec.Strategy,
			MinReadySeconds:         5,
			RevisionHistoryLimit:    new(int32(4)),
			ProgressDeadlineSeconds: new(int32(120)),
		},
	}))
	g.Expect(target.Spec.Paused).To(BeTrue(), "target must not change")
}

func TestDaemonSetPrimary(t *testing.T) {
	g := NewWithT(t)
	target := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "test"},
		Spec: appsv1.DaemonSetSpec{
			Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			UpdateStrategy:       appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType},
			MinReadySeconds:      3,
			RevisionHistoryLimit: new(int32(2)),
		},
	}
	parts := primaryParts{
		meta:     metav1.ObjectMeta{Name: "agent-primary", Namespace: "test"},
		selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent-primary"}},
		template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent-primary"}}},
		replicas: new(int32(5)),
	}
	got := daemonSetTarget{}.primary(target, parts).(*appsv1.DaemonSet)
	g.Expect(got).To(Equal(&appsv1.DaemonSet{
		ObjectMeta: parts.meta,
		Spec: appsv1.DaemonSetSpec{
			Selector:             parts.selector,
			Template:             parts.template,
			UpdateStrategy:       target.Spec.UpdateStrategy,
			MinReadySeconds:      3,
			RevisionHistoryLimit: new(int32(2)),
		},
	}))
}

func TestScaling(t *testing.T) {
	g := NewWithT(t)

	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: new(int32(3))}}
	zero := mergePatched(t, d, deploymentTarget{}.scaledToZero(d))
	g.Expect(*zero.Spec.Replicas).To(BeZero())
	g.Expect(*d.Spec.Replicas).To(Equal(int32(3)), "input must not change")
	g.Expect(deploymentTarget{}.scaledToZero(zero)).To(BeNil(), "nothing to write")
	g.Expect(*mergePatched(t, zero, deploymentTarget{}.scaledTo(zero, 4)).Spec.Replicas).To(Equal(int32(4)))
	g.Expect(deploymentTarget{}.scaledTo(d, 3)).To(BeNil(), "nothing to write")
	g.Expect(deploymentTarget{}.scaledTo(&appsv1.Deployment{}, 1)).To(BeNil(), "unset replicas are 1")

	ds := &appsv1.DaemonSet{}
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"pool": "web"}
	ds.Spec.Template.Spec.Containers = []corev1.Container{{Name: "web", Image: "web:1"}}
	stopped := mergePatched(t, ds, daemonSetTarget{}.scaledToZero(ds))
	g.Expect(stopped.Spec.Template.Spec.NodeSelector).To(Equal(map[string]string{"pool": "web", ScaleToZeroNodeSelector: "true"}))
	g.Expect(stopped.Spec.Template.Spec.Containers).To(Equal(ds.Spec.Template.Spec.Containers), "the rest of the template stays")
	g.Expect(ds.Spec.Template.Spec.NodeSelector).To(HaveLen(1), "input must not change")
	g.Expect(daemonSetTarget{}.scaledToZero(stopped)).To(BeNil(), "nothing to write")
	started := mergePatched(t, stopped, daemonSetTarget{}.scaledTo(stopped, 7))
	g.Expect(started.Spec.Template.Spec.NodeSelector).To(Equal(map[string]string{"pool": "web"}))
	g.Expect(daemonSetTarget{}.scaledTo(started, 7)).To(BeNil(), "nothing to write")

	bare := &appsv1.DaemonSet{}
	bareStopped := mergePatched(t, bare, daemonSetTarget{}.scaledToZero(bare))
	roundTrip := mergePatched(t, bareStopped, daemonSetTarget{}.scaledTo(bareStopped, 1))
	g.Expect(roundTrip.Spec.Template.Spec.NodeSelector).To(BeEmpty(), "back to no nodeSelector at all")
}

// mergePatched applies a JSON merge patch to a copy of obj, as the API
// server does.
func mergePatched[T any, PT interface{ *T }](t *testing.T, obj PT, patch []byte) PT {
	t.Helper()
	if patch == nil {
		t.Fatal("no patch to apply")
	}
	original, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := jsonpatch.MergePatch(original, patch)
	if err != nil {
		t.Fatalf("applying %s: %v", patch, err)
	}
	out := PT(new(T))
	if err := json.Unmarshal(patched, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPrimaryAutoscaler(t *testing.T) {
	src := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{
			Name: "podinfo", Namespace: "test", ResourceVersion: "3",
			Labels:      map[string]string{"team": "a"},
			Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: "{}"},
		},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			MinReplicas:    new(int32(2)),
			MaxReplicas:    4,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: new(int32(80))},
			}}},
		},
	}
	tests := []struct {
		name     string
		override *v1beta1.ScalerReplicas
		min, max int32
	}{
		{name: "copied bounds", min: 2, max: 4},
		{name: "both overridden", override: &v1beta1.ScalerReplicas{MinReplicas: new(int32(3)), MaxReplicas: new(int32(6))}, min: 3, max: 6},
		{name: "max overridden", override: &v1beta1.ScalerReplicas{MaxReplicas: new(int32(8))}, min: 2, max: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			canary := testCanary()
			canary.Spec.AutoscalerRef = &v1beta1.AutoscalerReference{Name: "podinfo", PrimaryScalerReplicas: tt.override}
			got := primaryAutoscaler(src, canary, "Deployment", Options{}.withDefaults())
			g.Expect(got.ObjectMeta).To(Equal(metav1.ObjectMeta{
				Name: "podinfo-primary", Namespace: "test",
				Labels:          map[string]string{"team": "a"},
				OwnerReferences: []metav1.OwnerReference{ownerRef(canary)},
			}))
			g.Expect(got.Spec.ScaleTargetRef).To(Equal(autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo-primary"}))
			g.Expect(*got.Spec.MinReplicas).To(Equal(tt.min))
			g.Expect(got.Spec.MaxReplicas).To(Equal(tt.max))
			g.Expect(got.Spec.Metrics).To(Equal(src.Spec.Metrics))
			g.Expect(src.Spec.ScaleTargetRef.Name).To(Equal("podinfo"), "input must not change")
			g.Expect(*src.Spec.MinReplicas).To(Equal(int32(2)), "input must not change")
		})
	}
}

func TestTargetOf(t *testing.T) {
	tests := []struct {
		apiVersion, kind string
		want             target
	}{
		{kind: "", want: deploymentTarget{}},
		{apiVersion: "apps/v1", kind: "Deployment", want: deploymentTarget{}},
		{apiVersion: "apps/v1", kind: "DaemonSet", want: daemonSetTarget{}},
		{apiVersion: "apps/v1", kind: "StatefulSet"},
		{apiVersion: "apps/v1beta2", kind: "Deployment"},
	}
	for _, tt := range tests {
		t.Run(tt.apiVersion+" "+tt.kind, func(t *testing.T) {
			g := NewWithT(t)
			c := testCanary()
			c.Spec.TargetRef.APIVersion, c.Spec.TargetRef.Kind = tt.apiVersion, tt.kind
			got, err := targetOf(c)
			if tt.want == nil {
				g.Expect(errors.Is(err, ErrInvalid)).To(BeTrue(), "got %v", err)
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

// TestScaleWithoutPrimary covers a Canary deleted (or scaled up) before its
// primary exists: a running target keeps its count, a stopped one gets a
// pod.
func TestScaleWithoutPrimary(t *testing.T) {
	g := NewWithT(t)
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}},
		},
	}
	w, c := fakeWorkloads(t, deploy)
	ctx := t.Context()
	g.Expect(w.Revert(ctx, testCanary())).To(Succeed())
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(deploy), deploy)).To(Succeed())
	g.Expect(*deploy.Spec.Replicas).To(Equal(int32(3)))

	g.Expect(w.ScaleTargetToZero(ctx, testCanary())).To(Succeed())
	g.Expect(w.ScaleCanaryUp(ctx, testCanary())).To(Succeed())
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(deploy), deploy)).To(Succeed())
	g.Expect(*deploy.Spec.Replicas).To(Equal(int32(1)))
}

package workload

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestSelectorLabel(t *testing.T) {
	tests := []struct {
		name      string
		sel       *metav1.LabelSelector
		names     []string
		key, val  string
		wantError bool
	}{
		{
			name:  "app",
			sel:   &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo", "tier": "web"}},
			names: DefaultSelectorLabels,
			key:   "app", val: "podinfo",
		},
		{
			name:  "app.kubernetes.io/name",
			sel:   &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "podinfo"}},
			names: DefaultSelectorLabels,
			key:   "app.kubernetes.io/name", val: "podinfo",
		},
		{
			name:  "the order of the list wins over the selector",
			sel:   &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "a", "name": "b", "app": "c"}},
			names: DefaultSelectorLabels,
			key:   "app", val: "c",
		},
		{
			name:  "custom list",
			sel:   &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo", "component": "api"}},
			names: []string{"component"},
			key:   "component", val: "api",
		},
		{
			name:      "custom list without a match",
			sel:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}},
			names:     []string{"component"},
			wantError: true,
		},
		{
			name: "matchExpressions do not count",
			sel: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"podinfo"}},
			}},
			names:     DefaultSelectorLabels,
			wantError: true,
		},
		{name: "no selector", names: DefaultSelectorLabels, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			key, val, err := selectorLabel(tt.sel, tt.names)
			if tt.wantError {
				g.Expect(errors.Is(err, ErrInvalid)).To(BeTrue(), "error %v should wrap ErrInvalid", err)
				g.Expect(err.Error()).To(ContainSubstring("spec.selector.matchLabels has none of the selector labels"))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(key).To(Equal(tt.key))
			g.Expect(val).To(Equal(tt.val))
		})
	}
}

func TestPrimarySelector(t *testing.T) {
	tests := []struct {
		name string
		in   *metav1.LabelSelector
		want *metav1.LabelSelector
	}{
		{name: "nil", in: nil, want: nil},
		{
			name: "matchLabels: only the selector label is rewritten",
			in:   &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo", "tier": "web"}},
			want: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo-primary", "tier": "web"}},
		},
		{
			name: "matchLabels selecting other pods stay",
			in:   &metav1.LabelSelector{MatchLabels: map[string]string{"app": "redis"}},
			want: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "redis"}},
		},
		{
			name: "matchExpressions on the selector label",
			in: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"redis", "podinfo"}},
				{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"podinfo"}},
			}},
			want: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"redis", "podinfo-primary"}},
				{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"podinfo"}},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var before *metav1.LabelSelector
			if tt.in != nil {
				before = tt.in.DeepCopy()
			}
			g.Expect(primarySelector(tt.in, "app", "podinfo")).To(Equal(tt.want))
			g.Expect(tt.in).To(Equal(before), "input must not change")
		})
	}
}

func TestRewritePodSelectors(t *testing.T) {
	g := NewWithT(t)
	self := func() *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "podinfo"}}
	}
	other := func() *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "cache"}}
	}
	primary := &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "podinfo-primary"}}
	spec := corev1.PodSpec{
		Affinity: &corev1.Affinity{
			PodAffinity: &corev1.PodAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
					{LabelSelector: other(), TopologyKey: "zone"},
					{LabelSelector: self(), TopologyKey: "zone"},
				},
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
					{Weight: 1, PodAffinityTerm: corev1.PodAffinityTerm{LabelSelector: self(), TopologyKey: "zone"}},
				},
			},
			PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
					{LabelSelector: self(), TopologyKey: "kubernetes.io/hostname"},
				},
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
					{Weight: 1, PodAffinityTerm: corev1.PodAffinityTerm{LabelSelector: self(), TopologyKey: "kubernetes.io/hostname"}},
					{Weight: 1, PodAffinityTerm: corev1.PodAffinityTerm{LabelSelector: other(), TopologyKey: "kubernetes.io/hostname"}},
				},
			},
		},
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
			{MaxSkew: 1, TopologyKey: "zone", LabelSelector: self()},
			{MaxSkew: 1, TopologyKey: "zone", LabelSelector: other()},
			{MaxSkew: 1, TopologyKey: "zone"},
		},
	}
	rewritePodSelectors(&spec, "app.kubernetes.io/name", "podinfo")

	pa, anti := spec.Affinity.PodAffinity, spec.Affinity.PodAntiAffinity
	g.Expect(pa.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector).To(Equal(other()))
	g.Expect(pa.RequiredDuringSchedulingIgnoredDuringExecution[1].LabelSelector).To(Equal(primary))
	g.Expect(pa.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.LabelSelector).To(Equal(primary))
	g.Expect(anti.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector).To(Equal(primary))
	g.Expect(anti.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.LabelSelector).To(Equal(primary))
	g.Expect(anti.PreferredDuringSchedulingIgnoredDuringExecution[1].PodAffinityTerm.LabelSelector).To(Equal(other()))
	g.Expect(spec.TopologySpreadConstraints[0].LabelSelector).To(Equal(primary))
	g.Expect(spec.TopologySpreadConstraints[1].LabelSelector).To(Equal(other()))
	g.Expect(spec.TopologySpreadConstraints[2].LabelSelector).To(BeNil())
}

func testCanary() *v1beta1.Canary {
	return &v1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test", UID: types.UID("canary-uid")},
		Spec:       v1beta1.CanarySpec{TargetRef: v1beta1.TargetReference{Kind: "Deployment", Name: "podinfo"}},
	}
}

func TestPrimaryMeta(t *testing.T) {
	target := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{
		Name:      "podinfo",
		Namespace: "test",
		Labels: map[string]string{
			"app":                       "podinfo",
			"app.kubernetes.io/part-of": "shop",
			"team":                      "a",
		},
		Annotations: map[string]string{
			corev1.LastAppliedConfigAnnotation:         "{}",
			"deployment.kubernetes.io/revision":        "3",
			"deprecated.daemonset.template.generation": "2",
			"example.com/owner":                        "team-a",
			"note":                                     "x",
		},
	}}
	tests := []struct {
		name            string
		opts            Options
		wantLabels      map[string]string
		wantAnnotations map[string]string
	}{
		{
			name:            "defaults copy all but the controllers' annotations",
			wantLabels:      map[string]string{"app": "podinfo-primary", "app.kubernetes.io/part-of": "shop", "team": "a"},
			wantAnnotations: map[string]string{"example.com/owner": "team-a", "note": "x"},
		},
		{
			name: "prefixes",
			opts: Options{
				IncludeLabelPrefixes:      []string{"app.kubernetes.io/", "team"},
				IncludeAnnotationPrefixes: []string{"example.com/", "deployment.kubernetes.io/"},
			},
			wantLabels:      map[string]string{"app.kubernetes.io/part-of": "shop", "team": "a"},
			wantAnnotations: map[string]string{"example.com/owner": "team-a"},
		},
		{
			name: "no match",
			opts: Options{
				IncludeLabelPrefixes:      []string{"none/"},
				IncludeAnnotationPrefixes: []string{"none/"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			m := primaryMeta(target, testCanary(), "app", "podinfo", tt.opts.withDefaults())
			g.Expect(m.Name).To(Equal("podinfo-primary"))
			g.Expect(m.Namespace).To(Equal("test"))
			g.Expect(m.Labels).To(Equal(tt.wantLabels))
			g.Expect(m.Annotations).To(Equal(tt.wantAnnotations))
			g.Expect(m.OwnerReferences).To(Equal([]metav1.OwnerReference{{
				APIVersion: "serin.dev/v1beta1", Kind: "Canary", Name: "podinfo", UID: "canary-uid",
				Controller: new(true), BlockOwnerDeletion: new(true),
			}}))
			g.Expect(target.Labels["app"]).To(Equal("podinfo"), "target must not change")
		})
	}
}

package workload

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func baseTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "podinfo"}},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"pool": "web"},
			Containers:   []corev1.Container{{Name: "app", Image: "podinfo:1"}},
		},
	}
}

func TestRevision(t *testing.T) {
	configs := map[string]string{"configmap/settings": "aaaa", "secret/creds": "bbbb"}
	base := revision(new(baseTemplate()), configs)
	tests := []struct {
		name     string
		template func(*corev1.PodTemplateSpec)
		configs  map[string]string
		same     bool
	}{
		{name: "same template and configs", configs: configs, same: true},
		{
			name:     "scale-to-zero nodeSelector",
			template: func(t *corev1.PodTemplateSpec) { t.Spec.NodeSelector[ScaleToZeroNodeSelector] = "true" },
			configs:  configs, same: true,
		},
		{
			name:     "image",
			template: func(t *corev1.PodTemplateSpec) { t.Spec.Containers[0].Image = "podinfo:2" },
			configs:  configs,
		},
		{
			name: "template annotation (kubectl rollout restart)",
			template: func(t *corev1.PodTemplateSpec) {
				t.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": "now"}
			},
			configs: configs,
		},
		{
			name:     "another nodeSelector",
			template: func(t *corev1.PodTemplateSpec) { t.Spec.NodeSelector["pool"] = "batch" },
			configs:  configs,
		},
		{name: "config content", configs: map[string]string{"configmap/settings": "cccc", "secret/creds": "bbbb"}},
		{name: "config dropped", configs: map[string]string{"configmap/settings": "aaaa"}},
		{name: "no configs", configs: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			tmpl := baseTemplate()
			if tt.template != nil {
				tt.template(&tmpl)
			}
			before := tmpl.DeepCopy()
			got := revision(&tmpl, tt.configs)
			g.Expect(got).To(MatchRegexp("^[0-9a-f]{16}$"))
			if tt.same {
				g.Expect(got).To(Equal(base))
			} else {
				g.Expect(got).NotTo(Equal(base))
			}
			g.Expect(&tmpl).To(Equal(before), "input must not change")
		})
	}
}

func TestConfigHash(t *testing.T) {
	g := NewWithT(t)
	a := configHash(configMap("a", map[string]string{"k": "1"}, nil))
	g.Expect(configHash(configMap("b", map[string]string{"k": "1"}, map[string]string{"x": "y"}))).To(Equal(a), "metadata is not content")
	g.Expect(configHash(configMap("a", map[string]string{"k": "2"}, nil))).NotTo(Equal(a))
	g.Expect(configHash(&corev1.ConfigMap{BinaryData: map[string][]byte{"k": []byte("1")}})).NotTo(Equal(a))

	s := secret("s", map[string]string{"k": "1"})
	h := configHash(s)
	s.Type = corev1.SecretTypeBasicAuth
	g.Expect(configHash(s)).NotTo(Equal(h), "type is content")
}

// TestSecretHashIsKeyed: status.trackedConfigs is readable by anyone who
// can read the Canary, who often cannot read Secrets. A plain hash of a
// Secret's data lets them test guesses of a weak password offline; the
// hash is keyed by the Secret's UID, which such a reader does not see.
func TestSecretHashIsKeyed(t *testing.T) {
	g := NewWithT(t)
	s := secret("creds", map[string]string{"password": "hunter2"})
	s.UID = "0b6c4c8e-3f7a-4f57-9d2e-6f0f6c1d2a11"
	h := configHash(s)

	g.Expect(h).NotTo(Equal(hashOf([]any{s.Type, s.Data})), "the unkeyed hash of the data")
	g.Expect(h).NotTo(Equal(hashOf(s.Data)))
	g.Expect(configHash(s.DeepCopy())).To(Equal(h), "stable for the same Secret")

	other := s.DeepCopy()
	other.UID = "5d1f6a0e-8c2b-4d3e-a1f9-2b7c3e4d5f60"
	g.Expect(configHash(other)).NotTo(Equal(h), "the same data in another Secret hashes apart")

	changed := s.DeepCopy()
	changed.Data["password"] = []byte("hunter3")
	g.Expect(configHash(changed)).NotTo(Equal(h), "content still changes the hash")
	g.Expect(h).To(HaveLen(16))

	g.Expect(sameConfigContent(s, other)).To(BeTrue(), "content compares without the key")
	g.Expect(sameConfigContent(s, changed)).To(BeFalse())
	g.Expect(sameConfigContent(configMap("a", map[string]string{"k": "1"}, nil), configMap("b", map[string]string{"k": "1"}, nil))).To(BeTrue())
}

func TestAppliedHash(t *testing.T) {
	g := NewWithT(t)
	obj := func(replicas int32, image string) *appsv1.Deployment {
		d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &replicas}}
		d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "web", Image: image}}
		return d
	}
	replicas := []string{"spec", "replicas"}
	base := appliedHash(obj(2, "a"))
	g.Expect(appliedHash(obj(2, "a"))).To(Equal(base))
	g.Expect(appliedHash(obj(3, "a"))).NotTo(Equal(base))
	g.Expect(appliedHash(obj(3, "a"), replicas)).To(Equal(appliedHash(obj(2, "a"), replicas)))
	g.Expect(appliedHash(obj(2, "b"), replicas)).NotTo(Equal(appliedHash(obj(2, "a"), replicas)))

	in := obj(2, "a")
	appliedHash(in, replicas)
	g.Expect(in).To(Equal(obj(2, "a")), "input must not change")
}

// TestObserveRevision covers the revision as Observe computes it from what
// it reads: the target's template and the content of its tracked configs.
func TestObserveRevision(t *testing.T) {
	g := NewWithT(t)
	tmpl := baseTemplate()
	tmpl.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
	}
	tmpl.Spec.Volumes = []corev1.Volume{
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		{Name: "static", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "static"}}}},
	}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}},
			Template: tmpl,
		},
	}
	w, c := fakeWorkloads(t, deploy,
		configMap("settings", map[string]string{"k": "1"}, nil),
		configMap("static", map[string]string{"k": "1"}, map[string]string{ConfigTrackingAnnotation: ConfigTrackingDisabled}),
		secret("creds", map[string]string{"password": "1"}),
	)
	ctx := t.Context()
	observe := func() Observation {
		t.Helper()
		obs, err := w.Observe(ctx, testCanary())
		g.Expect(err).NotTo(HaveOccurred())
		return obs
	}
	update := func(obj client.Object, change func()) {
		t.Helper()
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		change()
		g.Expect(c.Update(ctx, obj)).To(Succeed())
	}

	first := observe()
	g.Expect(first.TargetFound).To(BeTrue())
	g.Expect(first.Selector.Key).To(Equal("app"))
	g.Expect(first.Selector.Value).To(Equal("podinfo"))
	g.Expect(first.TrackedConfigs).To(HaveKey("configmap/settings"))
	g.Expect(first.TrackedConfigs).To(HaveKey("secret/creds"))
	g.Expect(first.TrackedConfigs).To(HaveLen(2), "static opted out")
	g.Expect(first.Primary).To(Equal(State{Message: "Deployment podinfo-primary not found"}))
	rev := first.Revision
	g.Expect(observe().Revision).To(Equal(rev), "stable")

	update(deploy, func() { deploy.Spec.Replicas = new(int32(0)) })
	g.Expect(observe().Revision).To(Equal(rev), "scaling is no new revision")

	static := &corev1.ConfigMap{}
	static.Name, static.Namespace = "static", "test"
	update(static, func() { static.Data["k"] = "2" })
	g.Expect(observe().Revision).To(Equal(rev), "an opted-out config is not tracked")

	settings := &corev1.ConfigMap{}
	settings.Name, settings.Namespace = "settings", "test"
	update(settings, func() { settings.Data["k"] = "2" })
	changed := observe()
	g.Expect(changed.Revision).NotTo(Equal(rev), "ConfigMap data is part of the revision")
	g.Expect(changed.TrackedConfigs["configmap/settings"]).NotTo(Equal(first.TrackedConfigs["configmap/settings"]))
	g.Expect(changed.TrackedConfigs["secret/creds"]).To(Equal(first.TrackedConfigs["secret/creds"]))

	update(settings, func() { settings.Data["k"] = "1" })
	g.Expect(observe().Revision).To(Equal(rev), "the revision is a function of the content")

	creds := &corev1.Secret{}
	creds.Name, creds.Namespace = "creds", "test"
	update(creds, func() { creds.Data["password"] = []byte("2") })
	g.Expect(observe().Revision).NotTo(Equal(rev), "Secret data is part of the revision")
}

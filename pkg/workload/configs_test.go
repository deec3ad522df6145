package workload

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// podSpecWithEveryConfigRef references configs in every way a pod can:
// cm-N are ConfigMaps, s-N Secrets.
func podSpecWithEveryConfigRef() corev1.PodSpec {
	optional := new(true)
	return corev1.PodSpec{
		Volumes: []corev1.Volume{
			{Name: "v1", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-volume"}}}},
			{Name: "v2", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s-volume"}}},
			{Name: "v3", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-projected"}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s-projected"}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{}},
			}}}},
			{Name: "v4", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "v5", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-optional"}, Optional: optional}}},
		},
		InitContainers: []corev1.Container{{
			Name: "init",
			Env: []corev1.EnvVar{
				{Name: "A", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s-init-env"}, Key: "k"}}},
			},
			EnvFrom: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-init-envfrom"}}},
			},
		}},
		Containers: []corev1.Container{{
			Name: "app",
			Env: []corev1.EnvVar{
				{Name: "PLAIN", Value: "x"},
				{Name: "B", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-env"}, Key: "k"}}},
				{Name: "C", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				// Also used by a volume, and there not optional.
				{Name: "D", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-volume"}, Key: "k", Optional: optional}}},
			},
			EnvFrom: []corev1.EnvFromSource{
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s-envfrom"}}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s-optional"}, Optional: optional}},
			},
		}},
	}
}

func TestConfigRefs(t *testing.T) {
	g := NewWithT(t)
	spec := podSpecWithEveryConfigRef()
	g.Expect(configRefs(&spec)).To(Equal(map[configRef]bool{
		{configMapKind, "cm-volume"}:       false,
		{configMapKind, "cm-projected"}:    false,
		{configMapKind, "cm-optional"}:     true,
		{configMapKind, "cm-init-envfrom"}: false,
		{configMapKind, "cm-env"}:          false,
		{secretKind, "s-volume"}:           false,
		{secretKind, "s-projected"}:        false,
		{secretKind, "s-init-env"}:         false,
		{secretKind, "s-envfrom"}:          false,
		{secretKind, "s-optional"}:         true,
	}))
}

func TestRewriteConfigRefs(t *testing.T) {
	tests := []struct {
		name    string
		tracked map[configRef]bool
		// renamed lists the references expected to point at copies.
		renamed map[string]bool
	}{
		{
			name: "every kind of reference",
			tracked: map[configRef]bool{
				{configMapKind, "cm-volume"}: true, {configMapKind, "cm-projected"}: true,
				{configMapKind, "cm-init-envfrom"}: true, {configMapKind, "cm-env"}: true,
				{secretKind, "s-volume"}: true, {secretKind, "s-projected"}: true,
				{secretKind, "s-init-env"}: true, {secretKind, "s-envfrom"}: true,
			},
			renamed: map[string]bool{
				"cm-volume": true, "cm-projected": true, "cm-init-envfrom": true, "cm-env": true,
				"s-volume": true, "s-projected": true, "s-init-env": true, "s-envfrom": true,
			},
		},
		{
			// Opted-out configs and missing optional ones are not tracked.
			name:    "untracked references stay",
			tracked: map[configRef]bool{{secretKind, "s-envfrom"}: true},
			renamed: map[string]bool{"s-envfrom": true},
		},
		{
			// A ConfigMap and a Secret may share a name.
			name:    "the kind must match",
			tracked: map[configRef]bool{{secretKind, "cm-env"}: true},
			renamed: map[string]bool{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			spec := podSpecWithEveryConfigRef()
			rewriteConfigRefs(&spec, tt.tracked)
			var got []string
			forEachConfigRef(&spec, func(_ configKind, name *string, _ *bool) { got = append(got, *name) })

			var want []string
			orig := podSpecWithEveryConfigRef()
			forEachConfigRef(&orig, func(_ configKind, name *string, _ *bool) {
				if tt.renamed[*name] {
					want = append(want, *name+"-primary")
				} else {
					want = append(want, *name)
				}
			})
			g.Expect(got).To(Equal(want))
		})
	}
}

func TestConfigCopy(t *testing.T) {
	g := NewWithT(t)
	canary := testCanary()
	meta := metav1.ObjectMeta{
		Name: "settings", Namespace: "test", UID: "u", ResourceVersion: "7",
		Labels:      map[string]string{"app": "podinfo"},
		Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: `{"data":"secret in clear"}`},
	}
	cm := configCopy(&corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"a": "1"}, BinaryData: map[string][]byte{"b": {2}}}, canary)
	g.Expect(cm).To(Equal(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: "settings-primary", Namespace: "test",
			Labels:          map[string]string{"app": "podinfo"},
			OwnerReferences: []metav1.OwnerReference{ownerRef(canary)},
		},
		Data:       map[string]string{"a": "1"},
		BinaryData: map[string][]byte{"b": {2}},
	}))
	s := configCopy(&corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}}, canary)
	g.Expect(s).To(Equal(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: "settings-primary", Namespace: "test",
			Labels:          map[string]string{"app": "podinfo"},
			OwnerReferences: []metav1.OwnerReference{ownerRef(canary)},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")},
	}))
}

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1beta1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeWorkloads reads objs through controller-runtime's fake client; the
// pure parts around readConfigs and Observe need no API server.
func fakeWorkloads(t *testing.T, objs ...client.Object) (*Workloads, client.Client) {
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).Build()
	return New(c, c, Options{}), c
}

func configMap(name string, data map[string]string, annotations map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "test", Annotations: annotations}, Data: data}
}

func secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "test"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestReadConfigs(t *testing.T) {
	optedOut := map[string]string{ConfigTrackingAnnotation: ConfigTrackingDisabled}
	existing := []client.Object{
		configMap("cm-volume", map[string]string{"k": "1"}, nil),
		configMap("cm-projected", map[string]string{"k": "1"}, nil),
		configMap("cm-init-envfrom", map[string]string{"k": "1"}, nil),
		configMap("cm-env", map[string]string{"k": "1"}, optedOut),
		secret("s-volume", map[string]string{"k": "1"}),
		secret("s-projected", map[string]string{"k": "1"}),
		secret("s-init-env", map[string]string{"k": "1"}),
		secret("s-envfrom", map[string]string{"k": "1"}),
		secret("s-optional", map[string]string{"k": "1"}),
		// cm-optional does not exist.
	}
	// Flagger's annotation opts out too.
	existing[1].SetAnnotations(map[string]string{FlaggerConfigTrackingAnnotation: ConfigTrackingDisabled})
	t.Run("tracked configs, sorted, without opted-out (either annotation) and missing optional ones", func(t *testing.T) {
		g := NewWithT(t)
		w, _ := fakeWorkloads(t, existing...)
		spec := podSpecWithEveryConfigRef()
		configs, err := w.readConfigs(t.Context(), "test", &spec)
		g.Expect(err).NotTo(HaveOccurred())
		var keys []string
		for _, c := range configs {
			keys = append(keys, c.ref.String())
			g.Expect(c.hash).To(Equal(configHash(c.obj)))
		}
		g.Expect(keys).To(Equal([]string{
			"configmap/cm-init-envfrom", "configmap/cm-volume",
			"secret/s-envfrom", "secret/s-init-env", "secret/s-optional", "secret/s-projected", "secret/s-volume",
		}))
	})
	t.Run("a missing required config is an error", func(t *testing.T) {
		g := NewWithT(t)
		w, _ := fakeWorkloads(t, existing[1:]...)
		spec := podSpecWithEveryConfigRef()
		_, err := w.readConfigs(t.Context(), "test", &spec)
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "got %v", err)
		g.Expect(err.Error()).To(ContainSubstring("reading ConfigMap cm-volume used by the pod template"))
	})
}

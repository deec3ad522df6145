package workload

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/naming"
)

// Config tracking: the primary must keep running the config content that
// was promoted with it, while the user edits the ConfigMaps and Secrets the
// target uses. So each config the target uses gets a <name>-primary copy
// that only changes on promotion, the primary's pod template refers to the
// copies, and the configs' content is part of the target's revision.

// configKind is how status.trackedConfigs spells a config's kind.
type configKind string

const (
	configMapKind configKind = "configmap"
	secretKind    configKind = "secret"
)

// configRef names a ConfigMap or Secret in the pod's namespace.
type configRef struct {
	kind configKind
	name string
}

// String is the key of the config in status.trackedConfigs.
func (r configRef) String() string { return string(r.kind) + "/" + r.name }

// forEachConfigRef calls fn with every reference to a ConfigMap or Secret in
// spec: volumes, projected volume sources, and env and envFrom of containers
// and init containers. name points into spec, so fn can rewrite it.
func forEachConfigRef(spec *corev1.PodSpec, fn func(kind configKind, name *string, optional *bool)) {
	for i := range spec.Volumes {
		v := &spec.Volumes[i].VolumeSource
		if cm := v.ConfigMap; cm != nil {
			fn(configMapKind, &cm.Name, cm.Optional)
		}
		if s := v.Secret; s != nil {
			fn(secretKind, &s.SecretName, s.Optional)
		}
		if p := v.Projected; p != nil {
			for j := range p.Sources {
				src := &p.Sources[j]
				if cm := src.ConfigMap; cm != nil {
					fn(configMapKind, &cm.Name, cm.Optional)
				}
				if s := src.Secret; s != nil {
					fn(secretKind, &s.Name, s.Optional)
				}
			}
		}
	}
	containers := func(cs []corev1.Container) {
		for i := range cs {
			c := &cs[i]
			for j := range c.EnvFrom {
				e := &c.EnvFrom[j]
				if cm := e.ConfigMapRef; cm != nil {
					fn(configMapKind, &cm.Name, cm.Optional)
				}
				if s := e.SecretRef; s != nil {
					fn(secretKind, &s.Name, s.Optional)
				}
			}
			for j := range c.Env {
				from := c.Env[j].ValueFrom
				if from == nil {
					continue
				}
				if cm := from.ConfigMapKeyRef; cm != nil {
					fn(configMapKind, &cm.Name, cm.Optional)
				}
				if s := from.SecretKeyRef; s != nil {
					fn(secretKind, &s.Name, s.Optional)
				}
			}
		}
	}
	containers(spec.InitContainers)
	containers(spec.Containers)
}

// configRefs lists the configs spec uses, each with whether it may be
// missing, which is only the case if every reference to it is optional.
func configRefs(spec *corev1.PodSpec) map[configRef]bool {
	refs := map[configRef]bool{}
	forEachConfigRef(spec, func(kind configKind, name *string, optional *bool) {
		r := configRef{kind: kind, name: *name}
		opt := ptr.Deref(optional, false)
		if prev, seen := refs[r]; seen {
			opt = opt && prev
		}
		refs[r] = opt
	})
	return refs
}

// rewriteConfigRefs points spec's references to tracked configs at their
// copies. Other references, to configs that opted out or to optional ones
// that do not exist, stay as they are.
func rewriteConfigRefs(spec *corev1.PodSpec, tracked map[configRef]bool) {
	forEachConfigRef(spec, func(kind configKind, name *string, _ *bool) {
		if tracked[configRef{kind: kind, name: *name}] {
			*name = naming.PrimaryName(*name)
		}
	})
}

// trackingDisabled reports a config that opted out of tracking, by Serin's
// annotation or by Flagger's.
func trackingDisabled(obj metav1.Object) bool {
	a := obj.GetAnnotations()
	return a[ConfigTrackingAnnotation] == ConfigTrackingDisabled || a[FlaggerConfigTrackingAnnotation] == ConfigTrackingDisabled
}

// config is a tracked config as read from the cluster.
type config struct {
	ref  configRef
	obj  client.Object // *corev1.ConfigMap or *corev1.Secret, as ref.kind says
	hash string
}

// newObject returns an empty object of the config's kind, to read into.
func (c config) newObject() client.Object { return newConfigObject(c.ref.kind) }

func newConfigObject(kind configKind) client.Object {
	if kind == configMapKind {
		return &corev1.ConfigMap{}
	}
	return &corev1.Secret{}
}

// readConfigs reads the configs spec uses and returns those that are
// tracked, sorted by kind and name. A missing config is an error unless
// every reference to it is optional.
func (w *Workloads) readConfigs(ctx context.Context, ns string, spec *corev1.PodSpec) ([]config, error) {
	refs := configRefs(spec)
	keys := slices.SortedFunc(maps.Keys(refs), func(a, b configRef) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.name, b.name))
	})
	var configs []config
	for _, r := range keys {
		obj := newConfigObject(r.kind)
		err := w.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: r.name}, obj)
		if apierrors.IsNotFound(err) && refs[r] {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s %s used by the pod template: %w", w.kindOf(obj), r.name, err)
		}
		if trackingDisabled(obj) {
			continue
		}
		configs = append(configs, config{ref: r, obj: obj, hash: configHash(obj)})
	}
	return configs, nil
}

// configHashes maps each config to its content hash, as in
// status.trackedConfigs.
func configHashes(configs []config) map[string]string {
	if len(configs) == 0 {
		return nil
	}
	out := make(map[string]string, len(configs))
	for _, c := range configs {
		out[c.ref.String()] = c.hash
	}
	return out
}

// trackedRefs is the set of configs whose references rewriteConfigRefs
// rewrites.
func trackedRefs(configs []config) map[configRef]bool {
	out := make(map[configRef]bool, len(configs))
	for _, c := range configs {
		out[c.ref] = true
	}
	return out
}

// configCopy is the primary's copy of a tracked config: same content, type
// and labels, controlled by the Canary. Annotations are not copied: on a
// Secret applied with kubectl, the last-applied one holds the data in
// clear.
func configCopy(obj client.Object, canary *v1beta1.Canary) client.Object {
	meta := metav1.ObjectMeta{
		Name:            naming.PrimaryName(obj.GetName()),
		Namespace:       obj.GetNamespace(),
		Labels:          maps.Clone(obj.GetLabels()),
		OwnerReferences: []metav1.OwnerReference{ownerRef(canary)},
	}
	if cm, ok := obj.(*corev1.ConfigMap); ok {
		return &corev1.ConfigMap{ObjectMeta: meta, Data: maps.Clone(cm.Data), BinaryData: maps.Clone(cm.BinaryData)}
	}
	s := obj.(*corev1.Secret)
	return &corev1.Secret{ObjectMeta: meta, Type: s.Type, Data: maps.Clone(s.Data)}
}

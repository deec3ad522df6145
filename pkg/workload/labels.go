package workload

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/naming"
)

// selectorLabel returns the first of names that sel matches on, and its
// value. The primary's pods are told apart from the target's by that label
// alone, so a target without one cannot have a primary.
func selectorLabel(sel *metav1.LabelSelector, names []string) (key, value string, err error) {
	if sel != nil {
		for _, n := range names {
			if v := sel.MatchLabels[n]; v != "" {
				return n, v, nil
			}
		}
	}
	return "", "", fmt.Errorf("%w: spec.selector.matchLabels has none of the selector labels %s", ErrInvalid, strings.Join(names, ", "))
}

// primaryLabels returns a copy of labels where key, if set to value, is set
// to the primary's value instead.
func primaryLabels(labels map[string]string, key, value string) map[string]string {
	return swapLabel(labels, key, value, naming.PrimaryName(value))
}

// primarySelector returns a copy of sel that selects the primary's pods
// where sel selects the target's: key=value becomes key=<value>-primary, in
// matchLabels and in matchExpressions.
func primarySelector(sel *metav1.LabelSelector, key, value string) *metav1.LabelSelector {
	return swapSelector(sel, key, value, naming.PrimaryName(value))
}

// rewritePodSelectors points spec's pod (anti-)affinity terms and topology
// spread constraints that select the target's pods at the primary's pods
// instead: the primary spreads over its own pods, not over the target's
// (which are scaled to zero most of the time).
func rewritePodSelectors(spec *corev1.PodSpec, key, value string) {
	swapPodSelectors(spec, key, value, naming.PrimaryName(value))
}

// swapLabel returns a copy of labels where key, if set to from, is set to
// to.
func swapLabel(labels map[string]string, key, from, to string) map[string]string {
	out := maps.Clone(labels)
	if out[key] == from {
		out[key] = to
	}
	return out
}

// swapSelector returns a copy of sel where key=from becomes key=to, in
// matchLabels and in matchExpressions.
func swapSelector(sel *metav1.LabelSelector, key, from, to string) *metav1.LabelSelector {
	if sel == nil {
		return nil
	}
	out := sel.DeepCopy()
	out.MatchLabels = swapLabel(out.MatchLabels, key, from, to)
	for i, e := range out.MatchExpressions {
		if e.Key != key {
			continue
		}
		for j, v := range e.Values {
			if v == from {
				out.MatchExpressions[i].Values[j] = to
			}
		}
	}
	return out
}

// swapPodSelectors applies swapSelector to spec's pod (anti-)affinity terms
// and topology spread constraints.
func swapPodSelectors(spec *corev1.PodSpec, key, from, to string) {
	if a := spec.Affinity; a != nil {
		if pa := a.PodAffinity; pa != nil {
			swapAffinityTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, key, from, to)
		}
		if pa := a.PodAntiAffinity; pa != nil {
			swapAffinityTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, key, from, to)
		}
	}
	for i := range spec.TopologySpreadConstraints {
		c := &spec.TopologySpreadConstraints[i]
		c.LabelSelector = swapSelector(c.LabelSelector, key, from, to)
	}
}

func swapAffinityTerms(required []corev1.PodAffinityTerm, preferred []corev1.WeightedPodAffinityTerm, key, from, to string) {
	for i := range required {
		required[i].LabelSelector = swapSelector(required[i].LabelSelector, key, from, to)
	}
	for i := range preferred {
		t := &preferred[i].PodAffinityTerm
		t.LabelSelector = swapSelector(t.LabelSelector, key, from, to)
	}
}

// filterPrefixes returns the entries of m whose key starts with one of
// prefixes ("*" matches all) and that drop, if set, does not reject.
func filterPrefixes(m map[string]string, prefixes []string, drop func(string) bool) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if drop != nil && drop(k) {
			continue
		}
		if slices.ContainsFunc(prefixes, func(p string) bool { return p == "*" || strings.HasPrefix(k, p) }) {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// controllerAnnotation reports annotations that kubectl and the workload
// controllers keep on the target. On the primary they would be wrong: the
// Deployment controller would read the target's revision number, and
// kubectl apply would see the target's manifest as the primary's.
func controllerAnnotation(key string) bool {
	return key == corev1.LastAppliedConfigAnnotation ||
		strings.HasPrefix(key, "deployment.kubernetes.io/") ||
		key == "deprecated.daemonset.template.generation"
}

// primaryMeta is the metadata of the primary: named after the target,
// labelled and annotated like it as far as the options allow, and
// controlled by the Canary so that it is garbage-collected with it.
func primaryMeta(tgt metav1.Object, canary *v1beta1.Canary, key, value string, opts Options) metav1.ObjectMeta {
	labels := filterPrefixes(tgt.GetLabels(), opts.IncludeLabelPrefixes, nil)
	return metav1.ObjectMeta{
		Name:            naming.PrimaryName(tgt.GetName()),
		Namespace:       tgt.GetNamespace(),
		Labels:          primaryLabels(labels, key, value),
		Annotations:     filterPrefixes(tgt.GetAnnotations(), opts.IncludeAnnotationPrefixes, controllerAnnotation),
		OwnerReferences: []metav1.OwnerReference{ownerRef(canary)},
	}
}

// ownerRef makes the Canary the controller of an object.
func ownerRef(canary *v1beta1.Canary) metav1.OwnerReference {
	return *metav1.NewControllerRef(canary, v1beta1.GroupVersion.WithKind(v1beta1.CanaryKind))
}

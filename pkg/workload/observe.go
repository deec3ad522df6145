package workload

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/naming"
)

// Observation is what the reconciler needs to know about a Canary's
// workloads to decide the next step.
type Observation struct {
	// TargetFound is false when the target does not exist; Revision,
	// TrackedConfigs, Selector and Ports are empty then.
	TargetFound bool
	// TargetGeneration is the target's metadata.generation.
	TargetGeneration int64
	// Revision identifies the target's pod template together with the
	// content of the configs it uses that Serin tracks. Scaling the target
	// does not change it.
	Revision string
	// TrackedConfigs maps each tracked config ("configmap/<name>",
	// "secret/<name>") to a hash of its content, for
	// status.trackedConfigs.
	TrackedConfigs map[string]string
	// Selector is the target's selector label and its value; the primary's
	// pods carry the value with naming.PrimarySuffix.
	Selector naming.Selector
	// Ports are the container ports of the target's pod template, for
	// service.portDiscovery.
	Ports []corev1.ContainerPort
	// Primary is <target>-primary; Canary is the target itself.
	Primary, Canary State
	// Flags are the changed flags of a flag rollout's target, for
	// status.flags (pkg/flagrelease); workloads have none.
	Flags []v1beta1.FlagChange
}

// Observe reads the target, the primary and the configs the target uses.
// A missing target is reported in the Observation, not as an error; a
// required config that is missing is an error.
func (w *Workloads) Observe(ctx context.Context, canary *v1beta1.Canary) (Observation, error) {
	var obs Observation
	t, err := targetOf(canary)
	if err != nil {
		return obs, err
	}
	ns, name := canary.Namespace, canary.Spec.TargetRef.Name
	primary, err := w.getWorkload(ctx, t, ns, naming.PrimaryName(name))
	if err != nil {
		return obs, err
	}
	obs.Primary = stateOf(t, primary, naming.PrimaryName(name), canary.Spec.Analysis.PrimaryReadyThreshold)

	tgt, err := w.getWorkload(ctx, t, ns, name)
	if err != nil {
		return obs, err
	}
	obs.Canary = stateOf(t, tgt, name, canary.Spec.Analysis.CanaryReadyThreshold)
	if tgt == nil {
		return obs, nil
	}
	obs.Canary.ScaledUp = t.scaledToZero(tgt) != nil
	if obs.Canary.ScaledUp && idle(canary.Status.Phase) {
		// The release engine scales such a target back to zero and warns
		// about whoever scaled it: only if the API server agrees, not on
		// a cached copy from before Serin's own scale-down.
		fresh := t.newObject()
		if err := w.history.Get(ctx, client.ObjectKeyFromObject(tgt), fresh); err != nil {
			return obs, fmt.Errorf("reading %s: %w", describe(t.kind(), ns, name), err)
		}
		tgt = fresh
		obs.Canary = stateOf(t, tgt, name, canary.Spec.Analysis.CanaryReadyThreshold)
		obs.Canary.ScaledUp = t.scaledToZero(tgt) != nil
		obs.Canary.ScaledBy = scaledBy(tgt)
	}
	obs.TargetFound = true
	obs.TargetGeneration = tgt.GetGeneration()
	obs.Selector.Key, obs.Selector.Value, err = selectorLabel(t.selector(tgt), w.opts.SelectorLabels)
	if err != nil {
		return obs, fmt.Errorf("target %s: %w", describe(t.kind(), ns, name), err)
	}
	tmpl := t.podTemplate(tgt)
	for _, c := range tmpl.Spec.Containers {
		obs.Ports = append(obs.Ports, c.Ports...)
	}
	configs, err := w.readConfigs(ctx, ns, &tmpl.Spec)
	if err != nil {
		return obs, fmt.Errorf("target %s: %w", describe(t.kind(), ns, name), err)
	}
	obs.TrackedConfigs = configHashes(configs)
	obs.Revision = revision(tmpl, obs.TrackedConfigs)
	return obs, nil
}

// idle reports the phases in which no release runs and the target is
// scaled to zero.
func idle(p v1beta1.CanaryPhase) bool {
	return p == v1beta1.CanaryPhaseInitialized || p == v1beta1.CanaryPhaseSucceeded || p == v1beta1.CanaryPhaseFailed
}

// scaledBy names the field managers other than Serin that own obj's
// replica count.
func scaledBy(obj client.Object) string {
	managers := apply.FieldManagers(obj.GetManagedFields(), "f:spec", "f:replicas")
	return strings.Join(slices.DeleteFunc(managers, func(m string) bool { return m == apply.FieldManager }), ", ")
}

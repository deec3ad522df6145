package workload

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/naming"
)

// EnsurePrimary creates <target>-primary, the copies of the tracked configs
// and the primary's autoscaler where they are missing. While the Canary is
// initialising (no promoted revision yet) it also brings existing ones up to
// date with the target, so the primary starts from the target's latest
// spec.
func (w *Workloads) EnsurePrimary(ctx context.Context, canary *v1beta1.Canary) error {
	return w.syncPrimary(ctx, canary, canary.Status.LastPromotedSpec == "", "")
}

// Promote copies the target's pod template and the current content of its
// tracked configs into the primary and its config copies, and updates the
// primary's autoscaler, provided the target is at revision rev, the one
// that was analysed; otherwise it writes nothing and returns
// ErrRevisionChanged. What the primary ran before is kept first (see
// history.go).
func (w *Workloads) Promote(ctx context.Context, canary *v1beta1.Canary, rev string) error {
	return w.syncPrimary(ctx, canary, true, rev)
}

// syncPrimary applies the primary and its companions, creating missing ones
// and, if update is set, updating existing ones. Configs go first so that
// new primary pods find them; the autoscaler goes last, once its scale
// target exists. A promotion names the revision it promotes (rev); nothing
// is written when the target holds another one.
func (w *Workloads) syncPrimary(ctx context.Context, canary *v1beta1.Canary, update bool, rev string) error {
	t, tgt, err := w.requireTarget(ctx, canary)
	if err != nil {
		return err
	}
	ns, name := canary.Namespace, canary.Spec.TargetRef.Name
	key, value, err := selectorLabel(t.selector(tgt), w.opts.SelectorLabels)
	if err != nil {
		return fmt.Errorf("target %s: %w", describe(t.kind(), ns, name), err)
	}
	tmpl := t.podTemplate(tgt)
	configs, err := w.readConfigs(ctx, ns, &tmpl.Spec)
	if err != nil {
		return fmt.Errorf("target %s: %w", describe(t.kind(), ns, name), err)
	}
	current := revision(tmpl, configHashes(configs))
	primary, err := w.getWorkload(ctx, t, ns, naming.PrimaryName(name))
	if err != nil {
		return err
	}
	if rev != "" {
		if current != rev {
			return fmt.Errorf("%w: %s holds revision %s, not the analysed %s", ErrRevisionChanged, describe(t.kind(), ns, name), current, rev)
		}
		if primary != nil && t.podTemplate(primary).Annotations[RevisionAnnotation] != current {
			if err := w.keep(ctx, canary, t, primary); err != nil {
				return err
			}
		}
	}
	for _, c := range configs {
		desired := configCopy(c.obj, canary)
		live, err := w.getOptional(ctx, c.newObject(), ns, desired.GetName())
		if err != nil {
			return err
		}
		if err := w.applyOwned(ctx, canary, desired, live, update); err != nil {
			return err
		}
	}

	autoscaled := canary.Spec.AutoscalerRef != nil
	desired := t.primary(tgt, primaryParts{
		meta:     primaryMeta(tgt, canary, key, value, w.opts),
		selector: primarySelector(t.selector(tgt), key, value),
		template: primaryPodTemplate(*tmpl, key, value, trackedRefs(configs), current),
		replicas: primaryReplicas(t.replicas(tgt), replicasOf(t, primary), autoscaled),
	})
	var unhashed [][]string
	if autoscaled {
		// The autoscaler owns the count of a running primary; a change
		// it makes is no reason to write.
		unhashed = append(unhashed, []string{"spec", "replicas"})
	}
	if err := w.applyOwned(ctx, canary, desired, primary, update, unhashed...); err != nil {
		return err
	}

	if !autoscaled {
		return nil
	}
	src, err := w.targetAutoscaler(ctx, canary)
	if err != nil {
		return err
	}
	desiredHPA := primaryAutoscaler(src, canary, t.kind(), w.opts)
	liveHPA, err := w.getOptional(ctx, &autoscalingv2.HorizontalPodAutoscaler{}, ns, desiredHPA.Name)
	if err != nil {
		return err
	}
	return w.applyOwned(ctx, canary, desiredHPA, liveHPA, update)
}

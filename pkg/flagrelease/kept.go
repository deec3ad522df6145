package flagrelease

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/naming"
	"github.com/serin-dev/serin/pkg/workload"
)

// keptFlags is what a flag rollout's ControllerRevision holds: the
// primary's data as it was under one promoted revision.
type keptFlags struct {
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
}

// keptRevisions lists the ControllerRevisions the Canary controls, oldest
// first.
func (r *Releaser) keptRevisions(ctx context.Context, c *serinv1.Canary) ([]appsv1.ControllerRevision, error) {
	var list appsv1.ControllerRevisionList
	if err := r.History.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingLabels{serinv1.KeptRevisionLabel: c.Name}); err != nil {
		return nil, fmt.Errorf("listing the kept revisions of %s: %w", c.Name, err)
	}
	out := slices.DeleteFunc(list.Items, func(cr appsv1.ControllerRevision) bool { return !metav1.IsControlledBy(&cr, c) })
	slices.SortFunc(out, func(a, b appsv1.ControllerRevision) int { return cmp.Compare(a.Revision, b.Revision) })
	return out, nil
}

// keep records the primary's data under its promoted revision before a
// split or a promotion overwrites it, and prunes the kept revisions to the
// Canary's limit. A primary that serves a split holds no promoted document
// to keep: it was kept before the first split was written.
func (r *Releaser) keep(ctx context.Context, c *serinv1.Canary, primary *corev1.ConfigMap) error {
	rev := primary.Annotations[serinv1.RevisionAnnotation]
	if rev == "" || primary.Annotations[SplitAnnotation] != "" {
		return nil
	}
	kept, err := r.keptRevisions(ctx, c)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(kept, func(cr appsv1.ControllerRevision) bool { return cr.Annotations[serinv1.RevisionAnnotation] == rev }) {
		return nil
	}
	data, err := json.Marshal(keptFlags{Data: primary.Data, BinaryData: primary.BinaryData})
	if err != nil {
		return err
	}
	next := int64(1)
	if len(kept) > 0 {
		next = kept[len(kept)-1].Revision + 1
	}
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       c.Namespace,
			Name:            naming.KeptRevisionName(primary.Name, rev),
			Labels:          map[string]string{serinv1.KeptRevisionLabel: c.Name},
			Annotations:     map[string]string{serinv1.RevisionAnnotation: rev},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(c, serinv1.GroupVersion.WithKind(serinv1.CanaryKind))},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: next,
	}
	if err := r.Client.Create(ctx, cr); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("keeping revision %s of %s: %w", rev, primary.Name, err)
	}
	kept = append(kept, *cr)
	limit := int(ptr.Deref(c.Spec.RevisionHistoryLimit, workload.DefaultRevisionHistoryLimit))
	a := &apply.Applier{Reader: r.History, Client: r.Client}
	for _, old := range kept[:max(0, len(kept)-limit)] {
		if err := a.DeleteRead(ctx, c, &old, "ControllerRevision "+old.Name); err != nil {
			return err
		}
	}
	return nil
}

// kept reads the kept revision rev.
func (r *Releaser) kept(ctx context.Context, c *serinv1.Canary, rev string) (keptFlags, error) {
	list, err := r.keptRevisions(ctx, c)
	if err != nil {
		return keptFlags{}, err
	}
	i := slices.IndexFunc(list, func(cr appsv1.ControllerRevision) bool { return cr.Annotations[serinv1.RevisionAnnotation] == rev })
	if i < 0 {
		return keptFlags{}, fmt.Errorf("%w: %s has no kept revision %s", workload.ErrRevisionNotKept, c.Spec.TargetRef.Name, rev)
	}
	var k keptFlags
	if err := json.Unmarshal(list[i].Data.Raw, &k); err != nil {
		return keptFlags{}, fmt.Errorf("reading kept revision %s: %w", list[i].Name, err)
	}
	k.Data = maps.Clone(k.Data)
	return k, nil
}

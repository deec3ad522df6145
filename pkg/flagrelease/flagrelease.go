// Package flagrelease is the Kubernetes edge of a flag rollout: a Canary
// whose target is a ConfigMap of flagd flag definitions. It keeps
// <target>-primary, the copy flagd serves, and writes into it what
// pkg/flags computes: at weight w the changed flags evaluate like their new
// definition for w% of the evaluation contexts and like the promoted one
// for the rest. It offers the reconciler's workload operations, so the
// stepped analysis drives a flag change as it drives a pod template.
//
// The promoted document is what the primary held before the rollout began.
// Before the first split is written it is kept as an apps/v1
// ControllerRevision <target>-primary-<revision>, as workload primaries
// keep theirs, so that a rollback, a restart or kubectl serin undo can put
// it back whatever the primary holds at the time.
//
// The primary's annotations say what it holds: serin.dev/revision the
// promoted revision, and serin.dev/flag-split "<revision>/<weight>" while a
// split of a new revision is written.
package flagrelease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/flags"
	"github.com/serin-dev/serin/pkg/naming"
	"github.com/serin-dev/serin/pkg/workload"
)

// SplitAnnotation is on the primary while it serves a split: the revision
// rolled out and its weight, "<revision>/<weight>".
const SplitAnnotation = "serin.dev/flag-split"

// Releaser reads the target and writes the primary of flag rollouts.
type Releaser struct {
	// Reader reads ConfigMaps (the controller keeps them out of its cache,
	// so these reads reach the API server).
	Reader client.Reader
	// Client writes.
	Client client.Client
	// History reads the kept revisions.
	History client.Reader
}

// document is a ConfigMap's flag definitions.
type document struct {
	cm  *corev1.ConfigMap
	raw string
	doc *flags.Document
}

// parse reads the flag definitions under key. A missing key, JSON that does
// not parse and a definition flagd would refuse are workload.ErrInvalid:
// only the user can fix them.
func parse(cm *corev1.ConfigMap, key string) (document, error) {
	raw, ok := cm.Data[key]
	if !ok {
		return document{}, fmt.Errorf("%w: ConfigMap %s/%s has no key %q with flag definitions (spec.flags.key)", workload.ErrInvalid, cm.Namespace, cm.Name, key)
	}
	doc, err := flags.Parse([]byte(raw))
	if err != nil {
		return document{}, fmt.Errorf("%w: ConfigMap %s/%s, key %s: %v", workload.ErrInvalid, cm.Namespace, cm.Name, key, err)
	}
	return document{cm: cm, raw: raw, doc: doc}, nil
}

func (r *Releaser) get(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := r.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", ns, name, err)
	}
	return cm, nil
}

// target reads and parses the target; nil when it does not exist.
func (r *Releaser) target(ctx context.Context, c *serinv1.Canary) (*document, error) {
	cm, err := r.get(ctx, c.Namespace, c.Spec.TargetRef.Name)
	if err != nil || cm == nil {
		return nil, err
	}
	d, err := parse(cm, c.Spec.FlagsKey())
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// primary reads the primary, refusing one the Canary does not control;
// nil when it does not exist.
func (r *Releaser) primary(ctx context.Context, c *serinv1.Canary) (*corev1.ConfigMap, error) {
	name := naming.PrimaryName(c.Spec.TargetRef.Name)
	cm, err := r.get(ctx, c.Namespace, name)
	if err != nil || cm == nil {
		return nil, err
	}
	if !apply.Controlled(cm, c.UID) {
		return nil, fmt.Errorf("%w: ConfigMap %s/%s exists and was not created by this Canary; delete it so that Serin can create the copy flagd serves", apply.ErrNotOwned, c.Namespace, name)
	}
	return cm, nil
}

func (r *Releaser) requirePrimary(ctx context.Context, c *serinv1.Canary) (*corev1.ConfigMap, error) {
	cm, err := r.primary(ctx, c)
	if err == nil && cm == nil {
		err = fmt.Errorf("ConfigMap %s/%s not found", c.Namespace, naming.PrimaryName(c.Spec.TargetRef.Name))
	}
	return cm, err
}

// Observe reads the target and the primary. The target's revision is that
// of its flag definitions (flags.Revision): formatting, metadata and
// unused evaluators do not make a new one. Neither side has pods, so both
// are ready once they exist.
func (r *Releaser) Observe(ctx context.Context, c *serinv1.Canary) (workload.Observation, error) {
	var obs workload.Observation
	primary, err := r.primary(ctx, c)
	if err != nil {
		return obs, err
	}
	if primary != nil {
		obs.Primary = workload.State{Exists: true, Ready: true, Revision: primary.Annotations[serinv1.RevisionAnnotation]}
	} else {
		obs.Primary.Message = fmt.Sprintf("ConfigMap %s/%s not found", c.Namespace, naming.PrimaryName(c.Spec.TargetRef.Name))
	}
	tgt, err := r.target(ctx, c)
	if err != nil {
		return obs, err
	}
	if tgt == nil {
		obs.Canary.Message = fmt.Sprintf("ConfigMap %s/%s not found", c.Namespace, c.Spec.TargetRef.Name)
		return obs, nil
	}
	obs.TargetFound = true
	obs.TargetGeneration = tgt.cm.Generation
	obs.Revision = flags.Revision(tgt.doc)
	obs.Canary = workload.State{Exists: true, Ready: true}
	// The target is a tracked config: its changes reach the Canary through
	// the same index as a workload's ConfigMaps.
	obs.TrackedConfigs = map[string]string{"configmap/" + tgt.cm.Name: obs.Revision}
	if primary != nil && obs.Revision != obs.Primary.Revision {
		if obs.Flags, err = r.changes(ctx, c, primary, tgt); err != nil {
			return obs, err
		}
	}
	return obs, nil
}

// changes describes the target's changed flags against the promoted
// document: the primary's own while it serves no split, else the kept one.
// Names too long for the status are left out.
func (r *Releaser) changes(ctx context.Context, c *serinv1.Canary, primary *corev1.ConfigMap, tgt *document) ([]serinv1.FlagChange, error) {
	data := primary.Data
	if primary.Annotations[SplitAnnotation] != "" {
		kept, err := r.kept(ctx, c, primary.Annotations[serinv1.RevisionAnnotation])
		if err != nil {
			return nil, err
		}
		data = kept.Data
	}
	old, err := parse(&corev1.ConfigMap{ObjectMeta: primary.ObjectMeta, Data: data}, c.Spec.FlagsKey())
	if err != nil {
		return nil, err
	}
	var out []serinv1.FlagChange
	for _, ch := range flags.Changes(old.doc, tgt.doc) {
		if len(out) == serinv1.MaxFlagChanges {
			break
		}
		if len(ch.Key) > maxStatusName || len(ch.OldVariant) > maxStatusName || len(ch.NewVariant) > maxStatusName {
			continue
		}
		out = append(out, serinv1.FlagChange{Key: ch.Key, OldVariant: ch.OldVariant, NewVariant: ch.NewVariant})
	}
	return out, nil
}

// maxStatusName is the longest flag key or variant name status.flags holds.
const maxStatusName = 253

// EnsurePrimary creates the primary as a copy of the target, which is the
// promoted revision from then on.
func (r *Releaser) EnsurePrimary(ctx context.Context, c *serinv1.Canary) error {
	primary, err := r.primary(ctx, c)
	if err != nil || primary != nil {
		return err
	}
	tgt, err := r.target(ctx, c)
	if err != nil {
		return err
	}
	if tgt == nil {
		return fmt.Errorf("ConfigMap %s/%s not found", c.Namespace, c.Spec.TargetRef.Name)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       c.Namespace,
			Name:            naming.PrimaryName(c.Spec.TargetRef.Name),
			Labels:          maps.Clone(tgt.cm.Labels),
			Annotations:     map[string]string{serinv1.RevisionAnnotation: flags.Revision(tgt.doc)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(c, serinv1.GroupVersion.WithKind(serinv1.CanaryKind))},
		},
		Data:       maps.Clone(tgt.cm.Data),
		BinaryData: maps.Clone(tgt.cm.BinaryData),
	}
	if err := r.Client.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return nil
}

// SetWeight writes the split of the target's revision rev at weight into
// the primary: the changed flags evaluate like the target's definitions
// for weight% of the evaluation contexts and like the promoted ones for
// the rest; the other keys stay the promoted ones. Weight 0 writes the
// promoted document back. A split is written only for rev: a target that
// moved on since it was observed is workload.ErrRevisionChanged. What is
// written parses as flagd would parse it, or nothing is written.
func (r *Releaser) SetWeight(ctx context.Context, c *serinv1.Canary, rev string, weight int) error {
	primary, err := r.requirePrimary(ctx, c)
	if err != nil {
		return err
	}
	promoted := primary.Annotations[serinv1.RevisionAnnotation]
	if weight == 0 {
		if primary.Annotations[SplitAnnotation] == "" {
			return nil
		}
		kept, err := r.kept(ctx, c, promoted)
		if err != nil {
			return err
		}
		return r.write(ctx, primary, kept.Data, kept.BinaryData, promoted, "")
	}
	if promoted == rev {
		// Promoted already (skipAnalysis, or a retried step): nothing to
		// split.
		return nil
	}
	split := rev + "/" + strconv.Itoa(weight)
	if primary.Annotations[SplitAnnotation] == split {
		return nil
	}
	tgt, err := r.target(ctx, c)
	if err != nil {
		return err
	}
	if tgt == nil || flags.Revision(tgt.doc) != rev {
		return fmt.Errorf("%w: ConfigMap %s/%s no longer holds revision %s", workload.ErrRevisionChanged, c.Namespace, c.Spec.TargetRef.Name, rev)
	}
	if err := r.keep(ctx, c, primary); err != nil {
		return err
	}
	kept, err := r.kept(ctx, c, promoted)
	if err != nil {
		return err
	}
	old, err := parse(&corev1.ConfigMap{ObjectMeta: primary.ObjectMeta, Data: kept.Data}, c.Spec.FlagsKey())
	if err != nil {
		return fmt.Errorf("the promoted revision %s: %w", promoted, err)
	}
	out, err := flags.Rollout(old.doc, tgt.doc, weight)
	if err != nil {
		return fmt.Errorf("%w: rolling out ConfigMap %s/%s at weight %d: %v", workload.ErrInvalid, c.Namespace, c.Spec.TargetRef.Name, weight, err)
	}
	if _, err := flags.Parse(out); err != nil {
		return fmt.Errorf("%w: the split of ConfigMap %s/%s at weight %d would not parse, so it was not written: %v", workload.ErrInvalid, c.Namespace, c.Spec.TargetRef.Name, weight, err)
	}
	data := maps.Clone(kept.Data)
	data[c.Spec.FlagsKey()] = string(out)
	return r.write(ctx, primary, data, kept.BinaryData, promoted, split)
}

// Promote copies the target into the primary, provided the target still
// holds rev, the analysed revision; the promoted document it replaces is
// kept first.
func (r *Releaser) Promote(ctx context.Context, c *serinv1.Canary, rev string) error {
	tgt, err := r.target(ctx, c)
	if err != nil {
		return err
	}
	if tgt == nil || flags.Revision(tgt.doc) != rev {
		return fmt.Errorf("%w: ConfigMap %s/%s no longer holds the analysed revision %s", workload.ErrRevisionChanged, c.Namespace, c.Spec.TargetRef.Name, rev)
	}
	primary, err := r.requirePrimary(ctx, c)
	if err != nil {
		return err
	}
	if primary.Annotations[serinv1.RevisionAnnotation] == rev && primary.Annotations[SplitAnnotation] == "" {
		return nil
	}
	if err := r.keep(ctx, c, primary); err != nil {
		return err
	}
	return r.write(ctx, primary, tgt.cm.Data, tgt.cm.BinaryData, rev, "")
}

// Restore puts the kept revision rev back into the primary.
func (r *Releaser) Restore(ctx context.Context, c *serinv1.Canary, rev string) error {
	primary, err := r.requirePrimary(ctx, c)
	if err != nil {
		return err
	}
	if primary.Annotations[serinv1.RevisionAnnotation] == rev && primary.Annotations[SplitAnnotation] == "" {
		return nil
	}
	kept, err := r.kept(ctx, c, rev)
	if err != nil {
		return err
	}
	return r.write(ctx, primary, kept.Data, kept.BinaryData, rev, "")
}

// RestoreTarget writes the promoted flag definitions back into the
// target when it holds others (revertOnDeletion), so that flagd reading
// the target again serves what was analysed. Only the flags key is
// written: the rest of the target is the user's.
func (r *Releaser) RestoreTarget(ctx context.Context, c *serinv1.Canary) ([]string, error) {
	tgt, err := r.target(ctx, c)
	if err != nil || tgt == nil {
		return nil, err
	}
	promoted := c.Status.LastPromotedSpec
	if promoted == "" || flags.Revision(tgt.doc) == promoted {
		return nil, nil
	}
	kept, err := r.kept(ctx, c, promoted)
	if errors.Is(err, workload.ErrRevisionNotKept) {
		// Never split, so never kept: the primary holds it as it is.
		primary, perr := r.requirePrimary(ctx, c)
		if perr != nil {
			return nil, perr
		}
		if primary.Annotations[serinv1.RevisionAnnotation] != promoted || primary.Annotations[SplitAnnotation] != "" {
			return nil, err
		}
		kept = keptFlags{Data: primary.Data}
	} else if err != nil {
		return nil, err
	}
	key := c.Spec.FlagsKey()
	body, err := json.Marshal(map[string]any{"data": map[string]string{key: kept.Data[key]}})
	if err != nil {
		return nil, err
	}
	if err := r.Client.Patch(ctx, tgt.cm, client.RawPatch(types.MergePatchType, body)); err != nil {
		return nil, fmt.Errorf("restoring ConfigMap %s/%s: %w", c.Namespace, c.Spec.TargetRef.Name, err)
	}
	return []string{"configmap/" + tgt.cm.Name + " (" + key + ")"}, nil
}

// Revert deletes the primary; flagd should read the target again.
func (r *Releaser) Revert(ctx context.Context, c *serinv1.Canary) error {
	a := &apply.Applier{Reader: r.Reader, Client: r.Client}
	return a.Delete(ctx, c, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: naming.PrimaryName(c.Spec.TargetRef.Name)}})
}

// ScaleTargetToZero does nothing: a ConfigMap has no pods.
func (r *Releaser) ScaleTargetToZero(context.Context, *serinv1.Canary) error { return nil }

// ScaleCanaryUp does nothing: a ConfigMap has no pods.
func (r *Releaser) ScaleCanaryUp(context.Context, *serinv1.Canary) error { return nil }

// write replaces the primary's data and records what it holds, in one
// patch that carries the primary's resourceVersion: a primary changed since
// it was read is read again by the retry rather than overwritten blind.
func (r *Releaser) write(ctx context.Context, primary *corev1.ConfigMap, data map[string]string, binary map[string][]byte, promoted, split string) error {
	annotations := map[string]any{serinv1.RevisionAnnotation: promoted, SplitAnnotation: nil}
	if split != "" {
		annotations[SplitAnnotation] = split
	}
	body, err := json.Marshal(map[string]any{
		"metadata":   map[string]any{"resourceVersion": primary.ResourceVersion, "annotations": annotations},
		"data":       apply.MapPatch(data, primary.Data),
		"binaryData": apply.MapPatch(binary, primary.BinaryData),
	})
	if err != nil {
		return err
	}
	if err := r.Client.Patch(ctx, primary, client.RawPatch(types.MergePatchType, body)); err != nil {
		return fmt.Errorf("writing ConfigMap %s/%s: %w", primary.Namespace, primary.Name, err)
	}
	return nil
}

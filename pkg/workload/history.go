package workload

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/naming"
)

// Kept revisions: before a promotion overwrites the primary, what it ran is
// kept as an apps/v1 ControllerRevision (the kind StatefulSets and
// DaemonSets keep their history in), so that a rollback after a promotion
// that was cut short, or kubectl serin undo, can put it back. The
// ControllerRevision holds the pod template and the ConfigMap copies it
// reads; the Secret copies it reads go into a Secret of the same name, so
// that their data stays behind Secret permissions.

const (
	// KeptRevisionLabel names the Canary whose primary ran a kept revision.
	KeptRevisionLabel = v1beta1.KeptRevisionLabel

	// DefaultRevisionHistoryLimit is how many revisions are kept when the
	// Canary does not set revisionHistoryLimit.
	DefaultRevisionHistoryLimit = 3

	// keptSecretsKey is the key of the kept Secret copies in the kept
	// revision's Secret.
	keptSecretsKey = "secrets.json"
)

// ErrRevisionNotKept is returned by Restore when the revision asked for is
// not among the kept ones.
var ErrRevisionNotKept = fmt.Errorf("%w: revision not kept", ErrInvalid)

// keptRevision is what a ControllerRevision holds of a revision the
// primary ran.
type keptRevision struct {
	Template   corev1.PodTemplateSpec       `json:"template"`
	ConfigMaps map[string]keptConfigMap     `json:"configMaps,omitempty"`
	Secrets    map[string]map[string][]byte `json:"-"`
}

type keptConfigMap struct {
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
}

// keptRevisions lists the ControllerRevisions the Canary controls, oldest
// first.
func (w *Workloads) keptRevisions(ctx context.Context, canary *v1beta1.Canary) ([]appsv1.ControllerRevision, error) {
	var list appsv1.ControllerRevisionList
	if err := w.history.List(ctx, &list, client.InNamespace(canary.Namespace), client.MatchingLabels{KeptRevisionLabel: canary.Name}); err != nil {
		return nil, fmt.Errorf("listing the kept revisions of %s: %w", canary.Name, err)
	}
	var out []appsv1.ControllerRevision
	for _, cr := range list.Items {
		if metav1.IsControlledBy(&cr, canary) {
			out = append(out, cr)
		}
	}
	slices.SortFunc(out, func(a, b appsv1.ControllerRevision) int { return cmp.Compare(a.Revision, b.Revision) })
	return out, nil
}

// keep records what the primary runs now before a promotion overwrites it,
// and prunes the kept revisions to the Canary's limit. Keeping a revision
// that is kept already does nothing, so a promotion retried after a crash
// keeps the state from before its first attempt.
func (w *Workloads) keep(ctx context.Context, canary *v1beta1.Canary, t target, primary client.Object) error {
	tmpl := t.podTemplate(primary)
	rev := tmpl.Annotations[RevisionAnnotation]
	if rev == "" {
		return nil
	}
	kept, err := w.keptRevisions(ctx, canary)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(kept, func(cr appsv1.ControllerRevision) bool { return cr.Annotations[RevisionAnnotation] == rev }) {
		return nil
	}
	content, err := w.snapshot(ctx, canary, tmpl)
	if err != nil {
		return err
	}
	data, err := json.Marshal(content)
	if err != nil {
		return err
	}
	meta := metav1.ObjectMeta{
		Namespace:       canary.Namespace,
		Name:            naming.KeptRevisionName(primary.GetName(), rev),
		Labels:          map[string]string{KeptRevisionLabel: canary.Name},
		Annotations:     map[string]string{RevisionAnnotation: rev},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(canary, v1beta1.GroupVersion.WithKind("Canary"))},
	}
	// The Secret goes first: a ControllerRevision is only listed as kept
	// once everything it needs exists.
	if len(content.Secrets) > 0 {
		raw, err := json.Marshal(content.Secrets)
		if err != nil {
			return err
		}
		secret := &corev1.Secret{ObjectMeta: *meta.DeepCopy(), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{keptSecretsKey: raw}}
		if err := w.client.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("keeping revision %s of %s: %w", rev, primary.GetName(), err)
		}
	}
	next := int64(1)
	if len(kept) > 0 {
		next = kept[len(kept)-1].Revision + 1
	}
	cr := &appsv1.ControllerRevision{ObjectMeta: meta, Data: runtime.RawExtension{Raw: data}, Revision: next}
	if err := w.client.Create(ctx, cr); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("keeping revision %s of %s: %w", rev, primary.GetName(), err)
	}
	kept = append(kept, *cr)
	limit := int(ptr.Deref(canary.Spec.RevisionHistoryLimit, DefaultRevisionHistoryLimit))
	for _, old := range kept[:max(0, len(kept)-limit)] {
		if err := w.deleteKept(ctx, canary, &old); err != nil {
			return err
		}
	}
	return nil
}

// snapshot reads the ConfigMap and Secret copies that tmpl refers to; the
// originals it reads (tracking disabled) are the user's, not a revision's.
func (w *Workloads) snapshot(ctx context.Context, canary *v1beta1.Canary, tmpl *corev1.PodTemplateSpec) (keptRevision, error) {
	content := keptRevision{Template: *tmpl.DeepCopy()}
	for ref := range configRefs(&tmpl.Spec) {
		obj, err := w.getOptional(ctx, newConfigObject(ref.kind), canary.Namespace, ref.name)
		if err != nil {
			return content, err
		}
		if obj == nil || !metav1.IsControlledBy(obj, canary) {
			continue
		}
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			if content.ConfigMaps == nil {
				content.ConfigMaps = map[string]keptConfigMap{}
			}
			content.ConfigMaps[ref.name] = keptConfigMap{Data: o.Data, BinaryData: o.BinaryData}
		case *corev1.Secret:
			if content.Secrets == nil {
				content.Secrets = map[string]map[string][]byte{}
			}
			content.Secrets[ref.name] = o.Data
		}
	}
	return content, nil
}

// deleteKept deletes a kept revision and its Secret.
func (w *Workloads) deleteKept(ctx context.Context, canary *v1beta1.Canary, cr *appsv1.ControllerRevision) error {
	if err := w.deleteOwned(ctx, canary, cr); err != nil {
		return err
	}
	return (&apply.Applier{Reader: w.reader, Client: w.client}).Delete(ctx, canary, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cr.Namespace, Name: cr.Name}})
}

// Restore puts kept revision rev back into the primary: its pod template
// and the content of the config copies it reads. It is the path of a
// rollback after an interrupted promotion and of kubectl serin undo; no
// analysis runs.
func (w *Workloads) Restore(ctx context.Context, canary *v1beta1.Canary, rev string) error {
	t, err := targetOf(canary)
	if err != nil {
		return err
	}
	ns, name := canary.Namespace, naming.PrimaryName(canary.Spec.TargetRef.Name)
	primary, err := w.requireWorkload(ctx, t, ns, name)
	if err != nil {
		return err
	}
	if t.podTemplate(primary).Annotations[RevisionAnnotation] == rev {
		return nil
	}
	kept, err := w.keptRevisions(ctx, canary)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(kept, func(cr appsv1.ControllerRevision) bool { return cr.Annotations[RevisionAnnotation] == rev })
	if i < 0 {
		return fmt.Errorf("%w: %s has no kept revision %s", ErrRevisionNotKept, name, rev)
	}
	var content keptRevision
	if err := json.Unmarshal(kept[i].Data.Raw, &content); err != nil {
		return fmt.Errorf("reading kept revision %s: %w", kept[i].Name, err)
	}
	if err := w.readKeptSecrets(ctx, canary, &kept[i], &content); err != nil {
		return err
	}
	if err := w.restoreConfigs(ctx, canary, content); err != nil {
		return err
	}
	// The applied hash goes too, so that the next promotion writes even the
	// revision it had written.
	hash := map[string]any{"op": "add", "path": "/metadata/annotations/" + strings.ReplaceAll(AppliedHashAnnotation, "/", "~1"), "value": "restored"}
	if primary.GetAnnotations() == nil {
		hash = map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]string{AppliedHashAnnotation: "restored"}}
	}
	if err := w.replaceTemplate(ctx, primary, &content.Template, hash); err != nil {
		return fmt.Errorf("restoring revision %s into %s: %w", rev, name, err)
	}
	return nil
}

// replaceTemplate replaces obj's pod template as a whole with a JSON patch,
// along with the extra patch operations: a merge would keep what the
// template it replaces added.
func (w *Workloads) replaceTemplate(ctx context.Context, obj client.Object, tmpl *corev1.PodTemplateSpec, extra ...map[string]any) error {
	ops := append([]map[string]any{{"op": "replace", "path": "/spec/template", "value": tmpl}}, extra...)
	patch, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	return w.client.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, patch), client.FieldOwner(w.opts.FieldManager))
}

func (w *Workloads) readKeptSecrets(ctx context.Context, canary *v1beta1.Canary, cr *appsv1.ControllerRevision, content *keptRevision) error {
	wanted := false
	for ref := range configRefs(&content.Template.Spec) {
		wanted = wanted || ref.kind == secretKind
	}
	if !wanted {
		return nil
	}
	secret := &corev1.Secret{}
	if err := w.reader.Get(ctx, client.ObjectKey{Namespace: cr.Namespace, Name: cr.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading the Secrets of kept revision %s: %w", cr.Name, err)
	}
	if !metav1.IsControlledBy(secret, canary) {
		return fmt.Errorf("%w: Secret %s/%s is not controlled by Canary %s", ErrInvalid, cr.Namespace, cr.Name, canary.Name)
	}
	return json.Unmarshal(secret.Data[keptSecretsKey], &content.Secrets)
}

// restoreConfigs writes the kept content back into the config copies the
// Canary controls.
func (w *Workloads) restoreConfigs(ctx context.Context, canary *v1beta1.Canary, content keptRevision) error {
	for name, cm := range content.ConfigMaps {
		desired := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: canary.Namespace, Name: name}, Data: cm.Data, BinaryData: cm.BinaryData}
		if err := w.restoreConfig(ctx, canary, &corev1.ConfigMap{}, desired); err != nil {
			return err
		}
	}
	for name, data := range content.Secrets {
		desired := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: canary.Namespace, Name: name}, Data: data}
		if err := w.restoreConfig(ctx, canary, &corev1.Secret{}, desired); err != nil {
			return err
		}
	}
	return nil
}

// restoreConfig replaces the data of a config copy the Canary controls;
// originals, which the primary reads when tracking is off, are left alone.
func (w *Workloads) restoreConfig(ctx context.Context, canary *v1beta1.Canary, live, desired client.Object) error {
	obj, err := w.getOptional(ctx, live, desired.GetNamespace(), desired.GetName())
	if err != nil || obj == nil || !metav1.IsControlledBy(obj, canary) {
		return err
	}
	body, err := dataPatch(desired, obj)
	if err != nil {
		return err
	}
	return w.patch(ctx, obj, body)
}

// dataPatch is the merge patch that gives live, a ConfigMap or Secret, the
// content of want, of the same kind.
func dataPatch(want, live client.Object) ([]byte, error) {
	switch w := want.(type) {
	case *corev1.ConfigMap:
		l := live.(*corev1.ConfigMap)
		return json.Marshal(map[string]any{"data": apply.MapPatch(w.Data, l.Data), "binaryData": apply.MapPatch(w.BinaryData, l.BinaryData)})
	case *corev1.Secret:
		return json.Marshal(map[string]any{"data": apply.MapPatch(w.Data, live.(*corev1.Secret).Data)})
	}
	return nil, fmt.Errorf("%T holds no config data", want)
}

// RestoreTarget gives the target the pod template and the config content of
// the revision the primary runs, so that a Canary deleted mid-analysis hands
// its traffic back to the promoted revision, not to one that was never
// analysed. It returns what it changed ("Deployment/web",
// "configmap/web-config"), nothing when the target already runs it.
func (w *Workloads) RestoreTarget(ctx context.Context, canary *v1beta1.Canary) ([]string, error) {
	t, err := targetOf(canary)
	if err != nil {
		return nil, err
	}
	ns, name := canary.Namespace, canary.Spec.TargetRef.Name
	primary, err := w.requireWorkload(ctx, t, ns, naming.PrimaryName(name))
	if err != nil {
		return nil, err
	}
	tgt, err := w.requireWorkload(ctx, t, ns, name)
	if err != nil {
		return nil, err
	}
	key, value, err := selectorLabel(t.selector(tgt), w.opts.SelectorLabels)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", describe(t.kind(), ns, name), err)
	}
	// The primary's template, turned back into the target's: its own
	// selector value, and the originals of the config copies.
	tmpl := t.podTemplate(primary).DeepCopy()
	tmpl.Labels = swapLabel(tmpl.Labels, key, naming.PrimaryName(value), value)
	swapPodSelectors(&tmpl.Spec, key, naming.PrimaryName(value), value)
	delete(tmpl.Annotations, RevisionAnnotation)
	if len(tmpl.Annotations) == 0 {
		tmpl.Annotations = nil
	}
	var changed []string
	copies := map[configRef]client.Object{}
	for ref := range configRefs(&tmpl.Spec) {
		if !strings.HasSuffix(ref.name, naming.PrimarySuffix) {
			continue
		}
		obj, err := w.getOptional(ctx, newConfigObject(ref.kind), ns, ref.name)
		if err != nil {
			return nil, err
		}
		if obj != nil && metav1.IsControlledBy(obj, canary) {
			copies[ref] = obj
		}
	}
	forEachConfigRef(&tmpl.Spec, func(kind configKind, name *string, _ *bool) {
		if _, ok := copies[configRef{kind: kind, name: *name}]; ok {
			*name = strings.TrimSuffix(*name, naming.PrimarySuffix)
		}
	})
	for ref, cp := range copies {
		orig := configRef{kind: ref.kind, name: strings.TrimSuffix(ref.name, naming.PrimarySuffix)}
		live, err := w.getOptional(ctx, newConfigObject(orig.kind), ns, orig.name)
		if err != nil {
			return nil, err
		}
		if live == nil || sameConfigContent(live, cp) {
			continue
		}
		body, err := dataPatch(cp, live)
		if err != nil {
			return nil, err
		}
		if err := w.patch(ctx, live, body); err != nil {
			return nil, fmt.Errorf("restoring %s: %w", orig, err)
		}
		changed = append(changed, orig.String())
	}
	if !equality.Semantic.DeepEqual(withoutScaleToZero(t.podTemplate(tgt)), tmpl) {
		if err := w.replaceTemplate(ctx, tgt, tmpl); err != nil {
			return nil, fmt.Errorf("restoring %s: %w", describe(t.kind(), ns, name), err)
		}
		changed = append(changed, t.kind()+"/"+name)
	}
	slices.Sort(changed)
	return changed, nil
}

// Package workload reads and writes the workloads of a Canary: the target (a
// Deployment or DaemonSet the user owns), the <target>-primary copy that
// Serin owns and that serves production traffic, the copies of the
// ConfigMaps and Secrets they use, and the primary's HorizontalPodAutoscaler.
//
// Everything that turns one object into another is a pure function, tested
// with tables; the methods of Workloads only read, compare and write. Objects
// Serin owns are written with server-side apply, and only when what would be
// applied differs from what was applied last. The target is only ever
// patched, and only its replica count (Deployment) or one nodeSelector key
// (DaemonSet), so the tools that own it are not fought.
package workload

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/service"
)

const (
	// PrimarySuffix turns the name of the target, of a config or of an
	// autoscaler into the name of its primary copy, and the value of the
	// target's selector label into that of the primary.
	PrimarySuffix = "-primary"

	// ScaleToZeroNodeSelector is the nodeSelector key that scales a
	// DaemonSet to zero: no node carries it, so no pod is scheduled, while
	// the DaemonSet and its history stay in place.
	ScaleToZeroNodeSelector = "serin.dev/scale-to-zero"

	// ConfigTrackingAnnotation set to ConfigTrackingDisabled on a ConfigMap
	// or Secret keeps Serin from copying and hashing it: the primary then
	// uses the original, and changing it starts no release.
	ConfigTrackingAnnotation = "serin.dev/config-tracking"
	ConfigTrackingDisabled   = "disabled"

	// RevisionAnnotation on the primary's pod template names the revision
	// it runs. A change of config data alone changes it too, which is what
	// rolls the primary's pods onto the new data.
	RevisionAnnotation = v1beta1.RevisionAnnotation

	// AppliedHashAnnotation holds the hash of what Serin last applied to an
	// object it owns; an unchanged hash means there is nothing to write.
	AppliedHashAnnotation = "serin.dev/applied-hash"

	// DefaultFieldManager is the server-side apply field manager.
	DefaultFieldManager = "serin"

	// defaultReadyThreshold applies when the Canary sets no ready threshold.
	defaultReadyThreshold = 100
)

// ErrInvalid marks errors that retrying cannot fix until the user changes
// the target or the Canary, such as a selector without any of the selector
// labels or a name taken by an object the Canary does not control. The
// reconciler reports them as Stalled.
var ErrInvalid = errors.New("invalid canary setup")

// ErrRevisionChanged is returned by Promote when the target no longer holds
// the revision to promote: only an analysed revision reaches the primary.
var ErrRevisionChanged = errors.New("the target's revision changed")

// Options tune how primaries are built.
type Options struct {
	// SelectorLabels are the label keys tried, in order, in the target's
	// spec.selector.matchLabels; the first one found is rewritten to
	// <value>-primary in the primary. Default: DefaultSelectorLabels.
	SelectorLabels []string
	// IncludeLabelPrefixes select the target's labels copied to the
	// primary; "*" means all, which is the default.
	IncludeLabelPrefixes []string
	// IncludeAnnotationPrefixes select the target's annotations copied to
	// the primary; "*" means all, which is the default. Annotations that
	// kubectl and the workload controllers keep on the target are never
	// copied (see controllerAnnotation).
	IncludeAnnotationPrefixes []string
	// FieldManager names Serin in server-side apply. Default:
	// DefaultFieldManager.
	FieldManager string
	// HistoryReader reads the kept revisions (ControllerRevisions) around
	// the cache, which does not watch them. Default: the writing client.
	HistoryReader client.Reader
}

// DefaultSelectorLabels are the selector labels Flagger recognises.
var DefaultSelectorLabels = []string{"app", "name", "app.kubernetes.io/name"}

func (o Options) withDefaults() Options {
	if len(o.SelectorLabels) == 0 {
		o.SelectorLabels = DefaultSelectorLabels
	}
	if len(o.IncludeLabelPrefixes) == 0 {
		o.IncludeLabelPrefixes = []string{"*"}
	}
	if len(o.IncludeAnnotationPrefixes) == 0 {
		o.IncludeAnnotationPrefixes = []string{"*"}
	}
	if o.FieldManager == "" {
		o.FieldManager = DefaultFieldManager
	}
	return o
}

// Workloads does the Kubernetes I/O for the workloads of Canaries.
type Workloads struct {
	reader  client.Reader
	client  client.Client
	history client.Reader
	opts    Options
}

// New returns Workloads reading through reader (typically the manager's
// cache-backed client) and writing through c. c's scheme must know apps/v1,
// core/v1, autoscaling/v2 and serin.dev/v1beta1.
func New(reader client.Reader, c client.Client, opts Options) *Workloads {
	w := &Workloads{reader: reader, client: c, history: opts.HistoryReader, opts: opts.withDefaults()}
	if w.history == nil {
		w.history = c
	}
	return w
}

// Observation is what the reconciler needs to know about a Canary's
// workloads to decide the next step.
type Observation struct {
	// TargetFound is false when the target does not exist; Revision,
	// TrackedConfigs, Selector and Ports are empty then.
	TargetFound bool
	// Revision identifies the target's pod template together with the
	// content of the configs it uses that Serin tracks. Scaling the target
	// does not change it.
	Revision string
	// TrackedConfigs maps each tracked config ("configmap/<name>",
	// "secret/<name>") to a hash of its content, for
	// status.trackedConfigs.
	TrackedConfigs map[string]string
	// Selector is the target's selector label and its value; the primary's
	// pods carry the value with PrimarySuffix.
	Selector service.Selector
	// Ports are the container ports of the target's pod template, for
	// service.portDiscovery.
	Ports []corev1.ContainerPort
	// Primary is <target>-primary; Canary is the target itself.
	Primary, Canary State
}

// State is the observed state of one workload. It has the fields of
// analysis.Workload, so that the reconciler converts one into the other.
type State struct {
	Exists bool
	// Ready is true once the workload has rolled out its current spec with
	// enough ready pods; a workload scaled to zero is never ready.
	Ready bool
	// Revision is the serin.dev/revision of its pod template: the revision
	// a primary runs (empty for the target).
	Revision string
	// Message says why the workload is not ready, with the pod counts.
	Message string
	// Pods is how many pods the workload wants and ReadyPods how many of
	// those are available; the engine caps the canary's traffic share by
	// their ratio.
	Pods, ReadyPods int32
}

// PrimaryName returns the name of the primary copy of an object named name,
// and the primary's value of a selector label whose target value is name.
func PrimaryName(name string) string { return name + PrimarySuffix }

// target is the part of the workload handling that depends on the kind of
// the target; deployment.go and daemonset.go implement it. Objects passed in
// are of the implementation's kind.
type target interface {
	kind() string
	newObject() client.Object
	podTemplate(obj client.Object) *corev1.PodTemplateSpec
	selector(obj client.Object) *metav1.LabelSelector
	// replicas is the wanted pod count, nil for kinds without one.
	replicas(obj client.Object) *int32
	// primary assembles the primary from the target and the parts that
	// every kind shares.
	primary(target client.Object, p primaryParts) client.Object
	state(obj client.Object, readyThreshold int) State
	// scaledToZero returns the JSON merge patch that makes obj run no
	// pods, or nil if obj already runs none.
	scaledToZero(obj client.Object) []byte
	// scaledTo returns the JSON merge patch that makes obj run pods again,
	// replicas of them for kinds with a count, or nil if there is nothing
	// to change.
	scaledTo(obj client.Object, replicas int32) []byte
}

// targetOf returns the handler of the Canary's target kind.
func targetOf(canary *v1beta1.Canary) (target, error) {
	ref := canary.Spec.TargetRef
	if ref.APIVersion != "" && ref.APIVersion != "apps/v1" {
		return nil, fmt.Errorf("%w: targetRef.apiVersion %q is not supported, use apps/v1", ErrInvalid, ref.APIVersion)
	}
	switch ref.Kind {
	case "", "Deployment":
		return deploymentTarget{}, nil
	case "DaemonSet":
		return daemonSetTarget{}, nil
	}
	return nil, fmt.Errorf("%w: targetRef.kind %q is not supported, use Deployment or DaemonSet", ErrInvalid, ref.Kind)
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
	primary, err := w.getWorkload(ctx, t, ns, PrimaryName(name))
	if err != nil {
		return obs, err
	}
	obs.Primary = stateOf(t, primary, PrimaryName(name), canary.Spec.Analysis.PrimaryReadyThreshold)

	tgt, err := w.getWorkload(ctx, t, ns, name)
	if err != nil {
		return obs, err
	}
	obs.Canary = stateOf(t, tgt, name, canary.Spec.Analysis.CanaryReadyThreshold)
	if tgt == nil {
		return obs, nil
	}
	obs.TargetFound = true
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

func stateOf(t target, obj client.Object, name string, threshold *int) State {
	if obj == nil {
		return State{Message: describe(t.kind(), "", name) + " not found"}
	}
	st := t.state(obj, ptr.Deref(threshold, defaultReadyThreshold))
	st.Revision = t.podTemplate(obj).Annotations[RevisionAnnotation]
	return st
}

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
	t, err := targetOf(canary)
	if err != nil {
		return err
	}
	ns, name := canary.Namespace, canary.Spec.TargetRef.Name
	tgt, err := w.requireWorkload(ctx, t, ns, name)
	if err != nil {
		return err
	}
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
	primary, err := w.getWorkload(ctx, t, ns, PrimaryName(name))
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

// ScaleTargetToZero stops the target's pods, once the primary serves in
// their place.
func (w *Workloads) ScaleTargetToZero(ctx context.Context, canary *v1beta1.Canary) error {
	t, err := targetOf(canary)
	if err != nil {
		return err
	}
	ns, name := canary.Namespace, canary.Spec.TargetRef.Name
	tgt, err := w.requireWorkload(ctx, t, ns, name)
	if err != nil {
		return err
	}
	if err := w.patch(ctx, tgt, t.scaledToZero(tgt)); err != nil {
		return fmt.Errorf("scaling %s to zero: %w", describe(t.kind(), ns, name), err)
	}
	return nil
}

// ScaleCanaryUp runs the target's pods again so that its new revision can
// be analysed: as many as the primary runs, or the minimum of the target's
// autoscaler when it has one, and at least one.
func (w *Workloads) ScaleCanaryUp(ctx context.Context, canary *v1beta1.Canary) error {
	t, err := targetOf(canary)
	if err != nil {
		return err
	}
	ns, name := canary.Namespace, canary.Spec.TargetRef.Name
	tgt, err := w.requireWorkload(ctx, t, ns, name)
	if err != nil {
		return err
	}
	primary, err := w.getWorkload(ctx, t, ns, PrimaryName(name))
	if err != nil {
		return err
	}
	n, err := w.canaryReplicas(ctx, canary, t, tgt, primary)
	if err != nil {
		return err
	}
	return w.scaleTo(ctx, t, tgt, n)
}

// canaryReplicas reads what canaryReplicaCount needs.
func (w *Workloads) canaryReplicas(ctx context.Context, canary *v1beta1.Canary, t target, tgt, primary client.Object) (int32, error) {
	var autoscalerMin *int32
	if canary.Spec.AutoscalerRef != nil {
		hpa, err := w.targetAutoscaler(ctx, canary)
		if err != nil {
			return 0, err
		}
		autoscalerMin = hpa.Spec.MinReplicas
	}
	return canaryReplicaCount(t.replicas(tgt), replicasOf(t, primary), autoscalerMin, canary.Spec.AutoscalerRef != nil), nil
}

// replicasOf is t.replicas of a workload that may not exist.
func replicasOf(t target, obj client.Object) *int32 {
	if obj == nil {
		return nil
	}
	return t.replicas(obj)
}

// scaleTo patches the target to run replicas pods (see target.scaledTo).
func (w *Workloads) scaleTo(ctx context.Context, t target, tgt client.Object, replicas int32) error {
	if err := w.patch(ctx, tgt, t.scaledTo(tgt, replicas)); err != nil {
		return fmt.Errorf("scaling up %s: %w", describe(t.kind(), tgt.GetNamespace(), tgt.GetName()), err)
	}
	return nil
}

// Revert undoes what Serin did to the workloads, for revertOnDeletion: the
// target runs as many pods as the primary again, and the primary, its
// autoscaler and the config copies are deleted. Garbage collection would
// delete them too, but only once the Canary is gone; deleting them here
// makes the revert complete by the time the finalizer is removed. Objects
// the Canary does not control are left alone.
func (w *Workloads) Revert(ctx context.Context, canary *v1beta1.Canary) error {
	t, err := targetOf(canary)
	if err != nil {
		return err
	}
	ns, name := canary.Namespace, canary.Spec.TargetRef.Name
	primary, err := w.getWorkload(ctx, t, ns, PrimaryName(name))
	if err != nil {
		return err
	}
	tgt, err := w.getWorkload(ctx, t, ns, name)
	if err != nil {
		return err
	}
	if tgt != nil {
		// The target takes over from the primary, at the primary's scale.
		n := ptr.Deref(replicasOf(t, primary), 0)
		if n == 0 {
			if n, err = w.canaryReplicas(ctx, canary, t, tgt, primary); err != nil {
				return err
			}
		}
		if err := w.scaleTo(ctx, t, tgt, n); err != nil {
			return err
		}
	}
	if ref := canary.Spec.AutoscalerRef; ref != nil {
		hpa, err := w.getOptional(ctx, &autoscalingv2.HorizontalPodAutoscaler{}, ns, PrimaryName(ref.Name))
		if err != nil {
			return err
		}
		if err := w.deleteOwned(ctx, canary, hpa); err != nil {
			return err
		}
	}
	if err := w.deleteOwned(ctx, canary, primary); err != nil {
		return err
	}
	return w.deleteConfigCopies(ctx, canary)
}

// targetAutoscaler reads the HorizontalPodAutoscaler of spec.autoscalerRef.
func (w *Workloads) targetAutoscaler(ctx context.Context, canary *v1beta1.Canary) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	ref := canary.Spec.AutoscalerRef
	if (ref.APIVersion != "" && ref.APIVersion != "autoscaling/v2") || (ref.Kind != "" && ref.Kind != "HorizontalPodAutoscaler") {
		return nil, fmt.Errorf("%w: autoscalerRef %s %s is not supported, use autoscaling/v2 HorizontalPodAutoscaler", ErrInvalid, ref.APIVersion, ref.Kind)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := w.reader.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: ref.Name}, hpa); err != nil {
		return nil, fmt.Errorf("reading autoscaler %s: %w", describe("HorizontalPodAutoscaler", canary.Namespace, ref.Name), err)
	}
	return hpa, nil
}

// getWorkload reads a workload of t's kind; a missing one is nil.
func (w *Workloads) getWorkload(ctx context.Context, t target, ns, name string) (client.Object, error) {
	return w.getOptional(ctx, t.newObject(), ns, name)
}

// requireWorkload reads a workload of t's kind that must exist.
func (w *Workloads) requireWorkload(ctx context.Context, t target, ns, name string) (client.Object, error) {
	obj := t.newObject()
	if err := w.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		return nil, fmt.Errorf("reading target %s: %w", describe(t.kind(), ns, name), err)
	}
	return obj, nil
}

// getOptional reads ns/name into obj, returning nil (not a typed nil) if it
// does not exist.
func (w *Workloads) getOptional(ctx context.Context, obj client.Object, ns, name string) (client.Object, error) {
	err := w.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", describe(w.kindOf(obj), ns, name), err)
	}
	return obj, nil
}

// describe names an object in messages: "Deployment default/podinfo".
func describe(kind, ns, name string) string {
	if ns == "" {
		return kind + " " + name
	}
	return kind + " " + ns + "/" + name
}

// StateChanged is false when an update of a Deployment or DaemonSet cannot
// change its State, but for the pod counts in State.Message: a condition's
// timestamps, the count of terminating pods, an updated replica more while
// others are still missing. The message is only read when a deadline
// passes, and the deadline's requeue reads the workload afresh. At 1,000
// Canaries each skipped update is a reconcile saved (make bench).
func StateChanged(old, updated client.Object) bool {
	switch o := old.(type) {
	case *appsv1.Deployment:
		n, ok := updated.(*appsv1.Deployment)
		return !ok || deploymentStateFields(o) != deploymentStateFields(n)
	case *appsv1.DaemonSet:
		n, ok := updated.(*appsv1.DaemonSet)
		return !ok || daemonSetStateFields(o) != daemonSetStateFields(n)
	default:
		return true
	}
}

// deploymentStateFields are what deploymentState decides from, besides the
// spec: whether the status has caught up with the spec, whether every
// wanted replica is updated, whether old replicas remain, and how many
// wanted replicas are available.
func deploymentStateFields(d *appsv1.Deployment) [4]int64 {
	want, st := ptr.Deref(d.Spec.Replicas, 1), d.Status
	return [4]int64{flag(st.ObservedGeneration >= d.Generation), flag(st.UpdatedReplicas >= want), flag(st.Replicas > st.UpdatedReplicas), int64(min(st.AvailableReplicas, want))}
}

// daemonSetStateFields are what daemonSetState decides from, besides the
// spec: whether the status has caught up with the spec, how many pods are
// wanted, whether all of them are updated, and how many are ready.
func daemonSetStateFields(ds *appsv1.DaemonSet) [4]int64 {
	st := ds.Status
	want := st.DesiredNumberScheduled
	return [4]int64{flag(st.ObservedGeneration >= ds.Generation), int64(want), flag(st.UpdatedNumberScheduled >= want), int64(min(st.NumberReady, want))}
}

func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

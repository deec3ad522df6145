// Package controller holds the Canary reconciler: observe the workloads and
// the checks, let pkg/analysis decide, act through the workload and router
// packages, and patch the status.
package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	runtimectrl "github.com/fluxcd/pkg/runtime/controller"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/checks/metrics"
	"github.com/serin-dev/serin/pkg/checks/webhook"
	"github.com/serin-dev/serin/pkg/internal/workpool"
	"github.com/serin-dev/serin/pkg/naming"
	"github.com/serin-dev/serin/pkg/refpolicy"
	"github.com/serin-dev/serin/pkg/router"
	"github.com/serin-dev/serin/pkg/service"
	"github.com/serin-dev/serin/pkg/versions"
	"github.com/serin-dev/serin/pkg/workload"
)

// FieldManager owns the fields Serin writes with server-side apply.
const FieldManager = apply.FieldManager

// routerRetry is how soon a Canary whose router CRDs are missing is looked
// at again.
const routerRetry = time.Minute

// Workloads is the workload I/O the reconciler needs (pkg/workload).
type Workloads interface {
	Observe(ctx context.Context, c *serinv1.Canary) (workload.Observation, error)
	EnsurePrimary(ctx context.Context, c *serinv1.Canary) error
	Promote(ctx context.Context, c *serinv1.Canary, revision string) error
	Restore(ctx context.Context, c *serinv1.Canary, revision string) error
	RestoreTarget(ctx context.Context, c *serinv1.Canary) ([]string, error)
	ScaleTargetToZero(ctx context.Context, c *serinv1.Canary) error
	ScaleCanaryUp(ctx context.Context, c *serinv1.Canary) error
	Revert(ctx context.Context, c *serinv1.Canary) error
}

// FlagRollouts is the I/O of a Canary whose target is a ConfigMap of flag
// definitions (pkg/flagrelease): the workload operations, and the split of
// a revision at a weight, written where a router would route traffic.
type FlagRollouts interface {
	Workloads
	SetWeight(ctx context.Context, c *serinv1.Canary, revision string, weight int) error
}

// CanaryReconciler runs Canary releases.
type CanaryReconciler struct {
	client.Client
	// APIReader reads around the cache (the Canary itself, routers).
	APIReader client.Reader
	events.EventRecorder
	runtimectrl.Metrics

	Workloads    Workloads
	Flags        FlagRollouts
	Services     *service.Applier
	Webhooks     webhook.Caller
	MetricChecks *metrics.Checker
	// checks runs the checks off the reconcile workers.
	checks *checkRuns
	// notifications delivers event webhooks, post-rollout webhooks and
	// alerts off the reconcile workers.
	notifications *workpool.Pool
	// announcements deliver the Events of stored decisions.
	announcements *announcements

	// DefaultProvider is used when spec.provider is empty.
	DefaultProvider serinv1.Provider
	// ErrorLimit is the default consecutive error limit of the checks
	// (--metric-error-limit).
	ErrorLimit int
	// Alerting sends release events to alert providers.
	Alerting Alerting
	// Refs says which namespaces a Canary may take AlertProviders from.
	Refs refpolicy.Policy

	// versions are the Canaries' versions this controller last wrote or
	// read around the cache.
	versions *versions.Tracker
	// writes are the versions of the workloads and Services this
	// controller last wrote or read around the cache, whose watch events
	// need no reconcile.
	writes *versions.Tracker
	// Routers tunes the routers.
	Routers RouterOptions

	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// Reconcile advances one Canary by at most one step.
func (r *CanaryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	start := time.Now()
	obj := &serinv1.Canary{}
	// What is known of a Canary found deleted is forgotten by its key.
	gone := &serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: req.Name}}
	// The cache holds only the Canaries this controller serves (its
	// namespace and label selector shard): a request for another one, as
	// an owned primary's event can bring, is not ours.
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			forgetRelease(req.NamespacedName)
			r.versions.Forget(gone)
			r.checks.forget(req.NamespacedName)
			r.announcements.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// A reconcile triggered by the target's own change can arrive before
	// the cache has seen the last status patch, and deciding from a stale
	// status would repeat a step (call the webhooks again, count a failure
	// twice). Read around the cache unless the cached copy is the version
	// this controller last wrote or read.
	if !r.versions.Current(obj) {
		if err := r.APIReader.Get(ctx, req.NamespacedName, obj); err != nil {
			if apierrors.IsNotFound(err) {
				r.versions.Forget(gone)
			}
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		r.versions.Record(obj)
	}
	patcher, err := newCanaryPatcher(r.Client, r.APIReader, r.versions, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Delivered Events leave the status with a write it needs anyway.
	patcher.beforeStatusWrite = r.announcements.dropDelivered
	phaseBefore := obj.Status.Phase
	// The decision's Events (and the alerts and event webhooks they feed)
	// go out once its status is stored: a decision whose status write is
	// refused did not happen.
	var decided []analysis.Event

	defer func() {
		r.announcements.stage(ctx, obj, decided, r.Now())
		err := patcher.Patch(ctx, obj)
		if err != nil {
			if !obj.DeletionTimestamp.IsZero() {
				err = client.IgnoreNotFound(err)
			}
			retErr = kerrors.NewAggregate([]error{retErr, err})
		} else {
			faultAfterStored(decided)
			r.announce(ctx, obj)
			if obj.Status.Phase != phaseBefore {
				log.FromContext(ctx).Info("phase changed", "from", phaseBefore, "to", obj.Status.Phase,
					"revision", obj.Status.LastAppliedSpec, "promoted", obj.Status.LastPromotedSpec, "weight", obj.Status.CanaryWeight)
			}
		}
		r.Metrics.RecordDuration(ctx, obj, start)
		if retErr == nil && obj.DeletionTimestamp.IsZero() {
			r.recordRelease(obj, phaseBefore)
		}
	}()

	if !obj.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, obj)
	}

	// Only a Canary that must be reverted on deletion needs a finalizer.
	if obj.Spec.RevertOnDeletion != controllerutil.ContainsFinalizer(obj, serinv1.CanaryFinalizer) {
		if obj.Spec.RevertOnDeletion {
			controllerutil.AddFinalizer(obj, serinv1.CanaryFinalizer)
		} else {
			controllerutil.RemoveFinalizer(obj, serinv1.CanaryFinalizer)
		}
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}

	if obj.Spec.Suspend {
		// The state machine is frozen as it is; resuming continues from
		// the same status.
		log.FromContext(ctx).V(1).Info("reconciliation is suspended")
		return ctrl.Result{}, nil
	}
	return r.reconcile(ctx, obj, &decided)
}

// workloads is the I/O of the Canary's target kind.
func (r *CanaryReconciler) workloads(c *serinv1.Canary) Workloads {
	if c.Spec.IsFlagRollout() {
		return r.Flags
	}
	return r.Workloads
}

func (r *CanaryReconciler) provider(c *serinv1.Canary) serinv1.Provider {
	if c.Spec.Provider != "" {
		return c.Spec.Provider
	}
	return r.DefaultProvider
}

// router returns the router of the Canary's provider.
func (r *CanaryReconciler) router(c *serinv1.Canary) (router.Router, error) {
	p := r.provider(c)
	if err := router.Supports(p, analysis.StrategyOf(c.Spec.Analysis)); err != nil {
		return nil, err
	}
	// Routers read uncached (router.Options.Reader says why); the
	// kubernetes router's Services applier looks in the cache first.
	return router.New(p, router.Options{
		Reader:                r.APIReader,
		Client:                r.Client,
		FieldManager:          FieldManager,
		Services:              r.Services,
		NginxAnnotationPrefix: r.Routers.NginxAnnotationPrefix,
		ContourIngressClass:   r.Routers.ContourIngressClass,
	})
}

// RouterOptions tune the routers.
type RouterOptions struct {
	// NginxAnnotationPrefix is the annotation prefix of ingress-nginx.
	NginxAnnotationPrefix string
	// ContourIngressClass is the ingress class of generated HTTPProxies.
	ContourIngressClass string
}

// reconcile advances a Canary that is neither deleted nor suspended: it
// observes the workloads, lets the analysis decide (running the checks it
// asks for), applies the decision's actions and then takes its status. The
// decision's Events go to decided, for Reconcile to announce once the status
// is stored.
func (r *CanaryReconciler) reconcile(ctx context.Context, c *serinv1.Canary, decided *[]analysis.Event) (ctrl.Result, error) {
	// A flag rollout writes its split into the primary, not through a
	// router.
	var rt router.Router
	if !c.Spec.IsFlagRollout() {
		var err error
		if rt, err = r.router(c); err != nil {
			r.stallWithoutRouter(ctx, c, err)
			return ctrl.Result{}, nil
		}
	}

	obs, err := r.workloads(c).Observe(ctx, c)
	if err != nil {
		return r.retry(ctx, c, serinv1.ReconciliationFailedReason, err)
	}
	if !obs.TargetFound {
		err := fmt.Errorf("%s %s/%s not found", c.Spec.TargetRef.Kind, c.Namespace, c.Spec.TargetRef.Name)
		return r.retry(ctx, c, serinv1.TargetNotFoundReason, err)
	}
	noteTarget(c, obs)

	decision, result, done, err := r.decide(ctx, c, obs)
	if done {
		return result, err
	}
	if decision.Invalid != "" {
		r.stallOnInvalidMetric(ctx, c, decision.Invalid)
		return ctrl.Result{RequeueAfter: decision.RequeueAfter}, nil
	}

	route := router.Route{Canary: c, Selector: obs.Selector, Ports: obs.Ports}
	if result, done, err := r.actAll(ctx, c, rt, route, decision.Actions, obs.Revision); done {
		return result, err
	}

	takeDecisionStatus(c, decision, obs)
	*decided = decision.Events
	return ctrl.Result{RequeueAfter: decision.RequeueAfter}, nil
}

// stallWithoutRouter stalls a Canary whose provider has no router, or none
// that can carry its strategy.
func (r *CanaryReconciler) stallWithoutRouter(ctx context.Context, c *serinv1.Canary, err error) {
	reason := serinv1.RouterUnavailableReason
	var unsupported *router.UnsupportedStrategyError
	if errors.As(err, &unsupported) {
		reason = serinv1.UnsupportedStrategyReason
	}
	r.eventf(ctx, c, corev1.EventTypeWarning, reason, "%s", err)
	markStalled(c, reason, err.Error())
}

// stallOnInvalidMetric holds the release where it is until the metric can
// run.
func (r *CanaryReconciler) stallOnInvalidMetric(ctx context.Context, c *serinv1.Canary, message string) {
	r.eventf(ctx, c, corev1.EventTypeWarning, serinv1.InvalidMetricReason, "%s", message)
	markStalled(c, serinv1.InvalidMetricReason, message)
}

// analysisInput is what the analysis decides from: the Canary and what was
// observed of its workloads.
func (r *CanaryReconciler) analysisInput(c *serinv1.Canary, obs workload.Observation) analysis.Input {
	return analysis.Input{
		Spec:     c.Spec,
		Status:   c.Status,
		Now:      r.Now(),
		Revision: obs.Revision,
		Primary:  analysis.Workload(obs.Primary),
		Canary:   analysis.Workload(obs.Canary),
		// Decide records the operation as handled in the status it returns.
		Operation:  analysis.PendingOperation(c),
		ErrorLimit: r.ErrorLimit,
	}
}

// decide lets the analysis decide; when it asks for checks, it decides
// again with their results. done says that the reconcile ends here, with
// result and err: the checks have not answered yet, a metric cannot run, or
// running them failed.
func (r *CanaryReconciler) decide(ctx context.Context, c *serinv1.Canary, obs workload.Observation) (decision analysis.Decision, result ctrl.Result, done bool, err error) {
	in := r.analysisInput(c, obs)
	decision = analysis.Decide(in)
	if decision.Run == nil {
		return decision, ctrl.Result{}, false, nil
	}
	results, ready, err := r.checksOf(ctx, c, obs.Revision, *decision.Run)
	if !ready {
		// Nothing moves until the checks have answered; the end of the run
		// wakes the Canary, and the requeue covers a wake-up lost to a
		// restart.
		return decision, ctrl.Result{RequeueAfter: analysisInterval(c)}, true, nil
	}
	var invalid *metrics.ConfigError
	if errors.As(err, &invalid) {
		// The release holds where it is until the metric can run; the next
		// interval looks again (for example once the template exists).
		r.stallOnInvalidMetric(ctx, c, err.Error())
		return decision, ctrl.Result{RequeueAfter: analysisInterval(c)}, true, nil
	}
	if err != nil {
		result, err = r.retry(ctx, c, serinv1.ReconciliationFailedReason, err)
		return decision, result, true, err
	}
	in.Checks = &results
	decision = analysis.Decide(in)
	if decision.Run != nil {
		return decision, ctrl.Result{}, true, fmt.Errorf("analysis asked for checks twice: %+v", *decision.Run)
	}
	return decision, ctrl.Result{}, false, nil
}

// actAll applies a decision's actions in order. done says that one failed
// and the reconcile ends with result and err.
func (r *CanaryReconciler) actAll(ctx context.Context, c *serinv1.Canary, rt router.Router, route router.Route, actions []analysis.Action, revision string) (result ctrl.Result, done bool, err error) {
	for _, a := range actions {
		if err = r.act(ctx, c, rt, route, a, revision); err != nil {
			result, err = r.actionFailed(ctx, c, a, err)
			return result, true, err
		}
		faultAfter(a.Kind)
	}
	return ctrl.Result{}, false, nil
}

// actionFailed handles the failure of action a.
func (r *CanaryReconciler) actionFailed(ctx context.Context, c *serinv1.Canary, a analysis.Action, err error) (ctrl.Result, error) {
	if errors.Is(err, workload.ErrRevisionChanged) {
		// The target moved on since it was observed: the next reconcile
		// sees the new revision and analyses it.
		log.FromContext(ctx).Info("not promoting: the target changed", "error", err.Error())
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}
	if meta.IsNoMatchError(err) {
		// The router's CRDs are not installed. Nothing was routed, so the
		// primary keeps its traffic; look again later, in case they get
		// installed.
		err = fmt.Errorf("provider %s: its routing CRDs are not installed in the cluster: %w", r.provider(c), err)
		r.eventf(ctx, c, corev1.EventTypeWarning, serinv1.RouterUnavailableReason, "%s", err)
		markStalled(c, serinv1.RouterUnavailableReason, err.Error())
		return ctrl.Result{RequeueAfter: routerRetry}, nil
	}
	return r.retry(ctx, c, serinv1.ReconciliationFailedReason, fmt.Errorf("%s: %w", a.Kind, err))
}

// takeDecisionStatus makes the decision's status the Canary's, once its
// actions are applied. The conditions and the observed generation are not
// the analysis's to set and stay as they were; the tracked configs are those
// observed; the phase conditions then follow the new phase, with the
// decision's message.
func takeDecisionStatus(c *serinv1.Canary, decision analysis.Decision, obs workload.Observation) {
	conditionsBefore := c.Status.Conditions
	observedGeneration := c.Status.ObservedGeneration
	if decision.Status.Phase != c.Status.Phase {
		conditions.Delete(c, serinv1.FieldConflictCondition)
		conditionsBefore = c.Status.Conditions
	}
	for _, e := range decision.Events {
		if e.Reason == analysis.ReasonTargetScaledUp {
			conditions.MarkTrue(c, serinv1.FieldConflictCondition, e.Reason, "%s", e.Message)
			conditionsBefore = c.Status.Conditions
		}
	}
	c.Status = decision.Status
	c.Status.Conditions = conditionsBefore
	c.Status.ObservedGeneration = observedGeneration
	c.Status.TrackedConfigs = obs.TrackedConfigs
	c.Status.ObservedTargetGeneration = obs.TargetGeneration
	c.Status.Flags = obs.Flags
	setPhaseConditions(c, decision.Message)
}

// analysisInterval is the Canary's analysis interval, for requeues outside
// the state machine.
func analysisInterval(c *serinv1.Canary) time.Duration {
	return analysis.Interval(c.Spec)
}

// retry records a runtime problem and returns it, so the work queue retries
// with backoff. The release itself does not move. A problem that only the
// user can fix (workload.ErrInvalid, a Service that is not the Canary's)
// stalls the Canary instead; a change to the Canary or its target triggers
// the next attempt.
func (r *CanaryReconciler) retry(ctx context.Context, c *serinv1.Canary, reason string, err error) (ctrl.Result, error) {
	if errors.Is(err, workload.ErrInvalid) {
		r.eventf(ctx, c, corev1.EventTypeWarning, serinv1.InvalidTargetReason, "%s", err)
		markStalled(c, serinv1.InvalidTargetReason, err.Error())
		return ctrl.Result{}, nil
	}
	if errors.Is(err, service.ErrNotOwned) {
		// Handing the Service over (the annotation, or deleting it) is a
		// change that triggers the next attempt; a long requeue covers a
		// deletion the Service watch does not map to the Canary.
		r.eventf(ctx, c, corev1.EventTypeWarning, serinv1.NotOwnedReason, "%s", err)
		markStalled(c, serinv1.NotOwnedReason, err.Error())
		return ctrl.Result{RequeueAfter: routerRetry}, nil
	}
	markRetrying(c, reason, err.Error())
	r.eventf(ctx, c, corev1.EventTypeWarning, reason, "%s", err)
	return ctrl.Result{}, err
}

func (r *CanaryReconciler) ensureServices(ctx context.Context, c *serinv1.Canary, route router.Route) error {
	apexToCanary := r.provider(c) == serinv1.ProviderKubernetes && router.ApexSelectsCanary(analysis.Traffic{CanaryWeight: c.Status.CanaryWeight})
	for _, role := range []service.Role{service.RolePrimary, service.RoleCanary, service.RoleApex} {
		desired := service.Desired(c, role, route.Selector, apexToCanary, route.Ports)
		if role == service.RoleApex {
			r.noteSelectorConflict(ctx, c, desired)
		}
		if _, err := r.Services.Apply(ctx, desired); err != nil {
			return err
		}
	}
	return nil
}

// noteSelectorConflict warns when another field manager rewrote the
// selector of the Canary's apex Service, which the Apply that follows sets
// back: a GitOps tool that holds the Service in Git sends the traffic to
// the wrong pods until then, at each of its syncs.
func (r *CanaryReconciler) noteSelectorConflict(ctx context.Context, c *serinv1.Canary, desired *corev1ac.ServiceApplyConfiguration) {
	live := &corev1.Service{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: *desired.Name}, live); err != nil {
		return
	}
	if !metav1.IsControlledBy(live, c) || maps.Equal(live.Spec.Selector, desired.Spec.Selector) {
		return
	}
	managers := slices.DeleteFunc(apply.FieldManagers(live.ManagedFields, "f:spec", "f:selector"), func(m string) bool { return m == FieldManager })
	if len(managers) == 0 {
		return
	}
	message := fmt.Sprintf("the selector of Service %s was set to %v by field manager %s, and is set back to %v: "+
		"Serin generates this Service, so leave it out of Git, or have the GitOps tool ignore it: Argo CD ignoreDifferences on /spec/selector "+
		"with the RespectIgnoreDifferences=true sync option, or for Flux the kustomize.toolkit.fluxcd.io/ssa: IfNotPresent annotation on it",
		live.Name, live.Spec.Selector, strings.Join(managers, ", "), desired.Spec.Selector)
	r.eventf(ctx, c, corev1.EventTypeWarning, serinv1.ApexSelectorChangedReason, "%s", message)
	conditions.MarkTrue(c, serinv1.FieldConflictCondition, serinv1.ApexSelectorChangedReason, "%s", message)
}

// act applies one action of a decision.
func (r *CanaryReconciler) act(ctx context.Context, c *serinv1.Canary, rt router.Router, route router.Route, a analysis.Action, revision string) error {
	switch a.Kind {
	case analysis.EnsurePrimary:
		return r.workloads(c).EnsurePrimary(ctx, c)
	case analysis.EnsureServices:
		if c.Spec.IsFlagRollout() {
			return nil
		}
		return r.ensureServices(ctx, c, route)
	case analysis.PromotePrimary:
		return r.workloads(c).Promote(ctx, c, a.Revision)
	case analysis.RestorePrimary:
		return r.workloads(c).Restore(ctx, c, a.Revision)
	case analysis.ScaleTargetToZero, analysis.ScaleCanaryDown:
		return r.workloads(c).ScaleTargetToZero(ctx, c)
	case analysis.ScaleCanaryUp:
		return r.workloads(c).ScaleCanaryUp(ctx, c)
	case analysis.SetTraffic:
		if c.Spec.IsFlagRollout() {
			return r.Flags.SetWeight(ctx, c, revision, a.Traffic.CanaryWeight)
		}
		return setAndVerify(ctx, rt, route, *a.Traffic)
	case analysis.RunPostRollout:
		r.runPostRollout(ctx, c, revision)
		return nil
	default:
		return fmt.Errorf("unknown action %q", a.Kind)
	}
}

// setAndVerify applies a split and reads it back, so a router that did not
// carry the weight (another controller rewrote it, a webhook mutated it)
// stops the release instead of judging the canary on traffic it never got.
func setAndVerify(ctx context.Context, rt router.Router, route router.Route, t analysis.Traffic) error {
	got, err := rt.SetRoutes(ctx, route, t)
	if err != nil {
		return err
	}
	if got.CanaryWeight != t.CanaryWeight {
		return fmt.Errorf("the routing objects carry canary weight %d after setting %d", got.CanaryWeight, t.CanaryWeight)
	}
	return nil
}

// finalize reverts a Canary with revertOnDeletion. A target that holds a
// revision that was never promoted gets the promoted one back first. The
// target is scaled back up; once it is ready the apex Service selects it,
// and only then are the primary and the other generated objects removed, so
// traffic always has pods to go to. A target that is not ready within the
// progress deadline gets the traffic anyway, with a Warning, so that the
// deletion never hangs.
func (r *CanaryReconciler) finalize(ctx context.Context, c *serinv1.Canary) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(c, serinv1.CanaryFinalizer) {
		return ctrl.Result{}, nil
	}
	if c.Status.Phase != serinv1.CanaryPhaseTerminating {
		c.Status.Phase = serinv1.CanaryPhaseTerminating
		c.Status.LastTransitionTime = metaNow(r.Now())
		r.eventf(ctx, c, corev1.EventTypeNormal, string(serinv1.CanaryPhaseTerminating), "Reverting %s before deletion", c.Spec.TargetRef.Name)
	}
	obs, err := r.workloads(c).Observe(ctx, c)
	waited := r.Now().Sub(c.Status.LastTransitionTime.Time)
	switch {
	case err == nil && obs.TargetFound:
		if promoted := c.Status.LastPromotedSpec; promoted != "" && obs.Revision != promoted && obs.Primary.Exists {
			changed, err := r.workloads(c).RestoreTarget(ctx, c)
			if err != nil {
				return r.retry(ctx, c, serinv1.ReconciliationFailedReason, fmt.Errorf("restoring the promoted revision into %s: %w", c.Spec.TargetRef.Name, err))
			}
			if len(changed) > 0 {
				r.eventf(ctx, c, corev1.EventTypeWarning, "RestoredTarget",
					"%s held revision %s, which was never promoted: restored %s to the promoted revision %s before handing traffic back; the source of the target (Git) still holds the unanalysed one",
					c.Spec.TargetRef.Name, obs.Revision, strings.Join(changed, ", "), promoted)
			}
		}
		if !obs.Canary.Ready {
			if err := r.workloads(c).ScaleCanaryUp(ctx, c); err != nil {
				return r.retry(ctx, c, serinv1.ReconciliationFailedReason, fmt.Errorf("scaling %s back up: %w", c.Spec.TargetRef.Name, err))
			}
			if left := analysis.ProgressDeadline(c.Spec) - waited; left > 0 {
				// The target's rollout triggers the next reconcile; the
				// requeue bounds the wait should no event come.
				return ctrl.Result{RequeueAfter: min(10*time.Second, left)}, nil
			}
			r.eventf(ctx, c, corev1.EventTypeWarning, analysis.ReasonDeadlineExceeded,
				"%s is not ready %s after the deletion (%s), past the progress deadline: the apex Service selects it anyway, and the primary and the generated objects are removed",
				c.Spec.TargetRef.Name, waited.Round(time.Second), obs.Canary.Message)
		}
		if err := r.releaseServices(ctx, c, &obs.Selector); err != nil {
			return r.retry(ctx, c, serinv1.ReconciliationFailedReason, err)
		}
	case err != nil && !errors.Is(err, workload.ErrInvalid):
		return r.retry(ctx, c, serinv1.ReconciliationFailedReason, err)
	default:
		// Without a usable target there is nothing to hand traffic back
		// to; the generated objects still go, so the deletion never hangs.
		if err := r.releaseServices(ctx, c, nil); err != nil {
			return r.retry(ctx, c, serinv1.ReconciliationFailedReason, err)
		}
	}
	// The apex Service selects the target now, so the routing objects can
	// go before the primary does. A Canary whose provider cannot route
	// its strategy never wrote any.
	if rt, err := r.router(c); err == nil && !c.Spec.IsFlagRollout() {
		if err := rt.Revert(ctx, router.Route{Canary: c, Selector: obs.Selector, Ports: obs.Ports}); err != nil {
			return r.retry(ctx, c, serinv1.ReconciliationFailedReason, fmt.Errorf("reverting the routing of %s: %w", c.Name, err))
		}
	}
	if err := r.workloads(c).Revert(ctx, c); err != nil {
		return r.retry(ctx, c, serinv1.ReconciliationFailedReason, fmt.Errorf("reverting %s: %w", c.Spec.TargetRef.Name, err))
	}
	c.Status.Phase = serinv1.CanaryPhaseTerminated
	c.Status.LastTransitionTime = metaNow(r.Now())
	r.eventf(ctx, c, corev1.EventTypeNormal, string(serinv1.CanaryPhaseTerminated), "%s reverted", c.Spec.TargetRef.Name)
	controllerutil.RemoveFinalizer(c, serinv1.CanaryFinalizer)
	return ctrl.Result{}, nil
}

// releaseServices hands the apex Service back to the target; a flag
// rollout has no Services.
func (r *CanaryReconciler) releaseServices(ctx context.Context, c *serinv1.Canary, selector *naming.Selector) error {
	if c.Spec.IsFlagRollout() {
		return nil
	}
	return r.Services.Release(ctx, c, selector)
}

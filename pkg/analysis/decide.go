package analysis

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// defaultInterval applies when the analysis interval cannot be parsed; the
// CRD schema rejects such values, so this only guards old objects.
const defaultInterval = time.Minute

// finaliseDelay separates Finalising from Succeeded so both are observable.
const finaliseDelay = time.Second

// copyDelay is how soon the reconcile after entering Promoting copies the
// revision into the primary.
const copyDelay = time.Millisecond

// Decide returns the next step of a release. When it needs webhook or metric
// results it returns a Decision with only Run set; the caller runs those
// checks and calls Decide again with Input.Checks.
func Decide(in Input) Decision {
	d := &decider{in: in, next: *in.Status.DeepCopy()}
	if in.Spec.Suspend {
		// Suspended: nothing moves; resuming continues from this status.
		return d.done(0)
	}
	if in.Primary.Ready || in.Status.LastPromotedSpec != "" {
		// The Services move traffic to the primary: they are created only
		// once it serves, so an existing apex Service keeps its endpoints
		// meanwhile; afterwards every decision keeps them as they should be.
		d.act(EnsureServices)
	}
	if in.Operation != nil {
		if dec, ok := d.operate(*in.Operation); ok {
			return dec
		}
	}
	if d.next.Paused {
		// Paused: no checks, no steps, no deadline until resume or abort.
		return d.done(0)
	}
	if in.Status.LastPromotedSpec == "" {
		return d.inInitializing()
	}
	switch in.Status.Phase {
	case serinv1.CanaryPhaseWaiting:
		return d.inWaiting()
	case serinv1.CanaryPhaseProgressing:
		return d.inProgressing()
	case serinv1.CanaryPhaseWaitingPromotion:
		return d.inWaitingPromotion()
	case serinv1.CanaryPhasePromoting:
		return d.inPromoting()
	case serinv1.CanaryPhaseFinalising:
		return d.inFinalising()
	case serinv1.CanaryPhaseTerminating, serinv1.CanaryPhaseTerminated:
		// Deletion is the reconciler's finalizer, not a release step.
		return d.done(0)
	default:
		return d.inIdle()
	}
}

type decider struct {
	in       Input
	next     serinv1.CanaryStatus
	actions  []Action
	events   []Event
	strategy Strategy
	// judged is the verdict of the checks this decision judged, if any;
	// done records it in status.history.
	judged *verdict
}

func (d *decider) now() metav1.Time { return metav1.NewTime(d.in.Now) }

func (d *decider) setPhase(p serinv1.CanaryPhase) {
	if d.next.Phase != p {
		d.next.Phase = p
		d.next.LastTransitionTime = d.now()
	}
}

func (d *decider) act(kind ActionKind) { d.actions = append(d.actions, Action{Kind: kind}) }

func (d *decider) route(t Traffic) {
	d.actions = append(d.actions, Action{Kind: SetTraffic, Traffic: &t})
}

func (d *decider) event(reason, format string, args ...any) {
	d.events = append(d.events, Event{Reason: reason, Message: fmt.Sprintf(format, args...)})
}

func (d *decider) warn(reason, format string, args ...any) {
	d.events = append(d.events, Event{Warning: true, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// warnIntervalClamped says, as a release or the initialisation starts,
// that an interval under MinInterval runs at MinInterval.
func (d *decider) warnIntervalClamped() {
	if IntervalClamped(d.in.Spec) {
		d.warn(ReasonIntervalClamped, "analysis.interval %s is shorter than %s: the analysis runs every %s", d.in.Spec.Analysis.Interval, MinInterval, MinInterval)
	}
}

func (d *decider) done(requeue time.Duration) Decision {
	st := d.next
	if d.judged != nil {
		st.History = d.withRecord(d.judged)
	}
	return Decision{Status: st, Actions: d.actions, Events: d.events, RequeueAfter: requeue, Message: d.message()}
}

func (d *decider) target() string { return d.in.Spec.TargetRef.Name }

func (d *decider) interval() time.Duration { return Interval(d.in.Spec) }

func (d *decider) deadline() time.Duration { return ProgressDeadline(d.in.Spec) }

func (d *decider) threshold() int {
	if t := d.in.Spec.Analysis.Threshold; t > 0 {
		return t
	}
	return 1
}

func (d *decider) untilDue() time.Duration { return UntilNextStep(d.in.Spec, d.next, d.in.Now) }

func (d *decider) untilDeadline() time.Duration {
	return UntilDeadline(d.in.Spec, d.next, d.in.Now)
}

func (d *decider) hasHooks(t serinv1.HookType) bool {
	for _, h := range d.in.Spec.Analysis.Webhooks {
		if h.Type == t || (h.Type == "" && t == serinv1.RolloutHook) {
			return true
		}
	}
	return false
}

// hasAnalysisChecks is true when the rollout stage has anything to check.
func (d *decider) hasAnalysisChecks() bool {
	return d.hasHooks(serinv1.RolloutHook) || len(d.in.Spec.Analysis.Metrics) > 0
}

// gate returns hook type t for a CheckRequest if the Canary has such hooks.
func (d *decider) gate(t serinv1.HookType) serinv1.HookType {
	if d.hasHooks(t) {
		return t
	}
	return ""
}

// checks returns the observations of req, or false when they must run
// first.
func (d *decider) checks(req CheckRequest) (CheckResults, bool) {
	if req == (CheckRequest{}) {
		return CheckResults{}, true
	}
	if d.in.Checks == nil {
		return CheckResults{}, false
	}
	return *d.in.Checks, true
}

func run(req CheckRequest) Decision { return Decision{Run: &req} }

// capped limits a canary weight to the share of canary pods that are ready.
func (d *decider) capped(w int) int {
	c := d.in.Canary
	if c.Pods > 0 && c.ReadyPods < c.Pods {
		return w * int(c.ReadyPods) / int(c.Pods)
	}
	return w
}

// analysisTraffic is the routing while the canary is analysed at weight w.
func (d *decider) analysisTraffic(w int) Traffic {
	t := Traffic{CanaryWeight: w}
	switch d.strategyOf() {
	case StrategyABTesting:
		t.MatchToCanary = true
	case StrategyBlueGreen:
		if d.in.Spec.Analysis.Mirror {
			t = d.mirrorTraffic()
		}
	}
	return t
}

// mirrorTraffic copies analysis.mirrorWeight percent of the requests (all
// without it) to the canary; only the primary's answers reach the clients.
func (d *decider) mirrorTraffic() Traffic {
	w := d.in.Spec.Analysis.MirrorWeight
	if w == 0 {
		w = 100
	}
	return Traffic{Mirror: true, MirrorWeight: w}
}

func (d *decider) strategyOf() Strategy {
	if d.strategy == "" {
		d.strategy = StrategyOf(d.in.Spec.Analysis)
	}
	return d.strategy
}

// inInitializing handles a Canary whose primary has never served
// (Initializing, or Failed before it served): it creates the primary and,
// once it serves, hands it the traffic, scales the target to zero and enters
// Initialized.
func (d *decider) inInitializing() Decision {
	if d.next.Phase == "" {
		d.setPhase(serinv1.CanaryPhaseInitializing)
		d.event(ReasonInitializing, "Initializing: creating %s-primary from %s", d.target(), d.target())
		d.warnIntervalClamped()
	}
	d.act(EnsurePrimary)
	if !d.in.Primary.Ready {
		left := d.untilDeadline()
		if left <= 0 && d.next.Phase != serinv1.CanaryPhaseFailed {
			d.setPhase(serinv1.CanaryPhaseFailed)
			d.warn(ReasonDeadlineExceeded, "%s-primary not ready within %s: %s", d.target(), d.deadline(), d.in.Primary.Message)
		}
		return d.done(max(left, 0))
	}
	d.route(Traffic{})
	d.act(ScaleTargetToZero)
	d.next.LastAppliedSpec = d.in.Revision
	d.next.LastPromotedSpec = d.in.Revision
	d.next.CanaryWeight, d.next.Iterations, d.next.FailedChecks = 0, 0, 0
	d.setPhase(serinv1.CanaryPhaseInitialized)
	d.event(ReasonInitialized, "Initialization done: %s-primary serves %s", d.target(), d.target())
	return d.done(0)
}

// inIdle handles the idle phases, Initialized, Succeeded and Failed: it
// starts a release (confirmRollout) when the target has a revision that is
// neither the analysed nor the promoted one.
func (d *decider) inIdle() Decision {
	switch d.in.Revision {
	case d.next.LastAppliedSpec:
		if d.in.Canary.ScaledUp {
			return d.scaleTargetBackDown()
		}
		return d.done(0)
	case d.next.LastPromotedSpec:
		return d.revertedToPromoted()
	}
	return d.confirmRollout()
}

// scaleTargetBackDown scales the target to zero again when something other
// than a release scaled it up, typically a GitOps tool re-applying the
// replica count from Git, and says who did and how to stop it.
func (d *decider) scaleTargetBackDown() Decision {
	d.act(ScaleTargetToZero)
	by := "another field manager"
	if m := d.in.Canary.ScaledBy; m != "" {
		by = "field manager " + m
	}
	d.warn(ReasonTargetScaledUp, "%s was scaled up to %d pods by %s while no release runs, and is scaled back to 0: the primary serves. "+
		"Remove spec.replicas from the target in Git, or have the GitOps tool leave it: Argo CD ignoreDifferences on /spec/replicas "+
		"with the RespectIgnoreDifferences=true sync option, or for a Flux HelmRelease a driftDetection.ignore rule for /spec/replicas",
		d.target(), d.in.Canary.Pods, by)
	return d.done(0)
}

// revertedToPromoted ends any release: the target is back at the revision the
// primary runs, so there is nothing to analyse.
func (d *decider) revertedToPromoted() Decision {
	if d.next.CanaryWeight > 0 || d.next.Phase != serinv1.CanaryPhaseSucceeded && d.next.Phase != serinv1.CanaryPhaseInitialized {
		d.route(Traffic{})
	}
	d.act(ScaleCanaryDown)
	d.next.LastAppliedSpec = d.in.Revision
	d.next.CanaryWeight = 0
	if d.next.Phase != serinv1.CanaryPhaseInitialized {
		d.setPhase(serinv1.CanaryPhaseSucceeded)
	}
	d.event(ReasonRevertedToPromoted, "%s is back at the promoted revision; no analysis", d.target())
	return d.done(0)
}

// confirmRollout puts a new revision behind the confirm-rollout gate: it
// enters Waiting while the gate is closed and Progressing once it is open
// (or there is none), and with skipAnalysis Promoting, without analysis.
func (d *decider) confirmRollout() Decision {
	if d.in.Spec.SkipAnalysis {
		d.event(ReasonSkippedAnalysis, "New revision of %s: skipAnalysis is set, promoting without checks", d.target())
		return d.enterPromotingUntested()
	}
	if g := d.gate(serinv1.ConfirmRolloutHook); g != "" {
		res, ok := d.checks(CheckRequest{Gate: g})
		if !ok {
			return run(CheckRequest{Gate: g})
		}
		d.next.LastIterationTime = d.now()
		if !d.judge(CheckRequest{Gate: g}, res).gateOpen {
			if d.next.Phase != serinv1.CanaryPhaseWaiting {
				d.setPhase(serinv1.CanaryPhaseWaiting)
				d.event(ReasonWaitingApproval, "New revision of %s is waiting for the confirm-rollout gate", d.target())
			}
			return d.done(d.interval())
		}
	}
	return d.enterProgressing()
}

// heldByGateBefore reports whether the previous interval already held this
// revision at this weight behind a closed gate: the wait was announced then,
// and announcing it at every interval would flood the alert channels.
func (d *decider) heldByGateBefore() bool {
	h := d.in.Status.History
	if len(h) == 0 {
		return false
	}
	last := h[len(h)-1]
	return last.Revision == d.next.LastAppliedSpec && last.Weight == d.next.CanaryWeight &&
		last.Action == "hold" && strings.Contains(" "+last.Checks+" ", "=closed ")
}

// enterProgressing starts the analysis of the target's revision: the canary
// scales up with no traffic yet.
func (d *decider) enterProgressing() Decision {
	d.resetFor(d.in.Revision)
	d.setPhase(serinv1.CanaryPhaseProgressing)
	d.act(ScaleCanaryUp)
	d.route(Traffic{})
	d.event(ReasonNewRevision, "New revision of %s detected: scaling it up and starting the analysis", d.target())
	d.warnIntervalClamped()
	return d.done(d.interval())
}

// enterPromotingUntested enters Promoting for a revision that never ran as a
// canary. Traffic stays on the primary, which rolls the revision out.
func (d *decider) enterPromotingUntested() Decision {
	d.resetFor(d.in.Revision)
	d.setPhase(serinv1.CanaryPhasePromoting)
	return d.done(copyDelay)
}

// skipRemaining promotes the revision under analysis at once: skipAnalysis
// was set during its analysis, as Flagger allows.
func (d *decider) skipRemaining() Decision {
	d.event(ReasonSkippedAnalysis, "skipAnalysis is set: promoting %s without the rest of its analysis", d.target())
	return d.enterPromoting()
}

// resetFor starts the counters of a release of revision rev.
func (d *decider) resetFor(rev string) {
	d.next.LastAppliedSpec = rev
	d.next.Iterations, d.next.FailedChecks, d.next.CanaryWeight = 0, 0, 0
	d.next.Metrics, d.next.Webhooks, d.next.InconclusiveSince = nil, nil, nil
	d.next.AnalysisRouted = false
	d.next.LastIterationTime = d.now()
	if d.strategyOf() == StrategyCanary || d.needsRouting() {
		// The first weight step, like the routing step of an A/B or
		// mirroring analysis, judges nothing that needs traffic (only the
		// pre-rollout checks run), so it is due as soon as the canary is
		// ready, not an interval from now.
		d.next.LastIterationTime = metav1.NewTime(d.in.Now.Add(-d.interval()))
	}
}

// inWaiting handles Waiting: the confirm-rollout gate is asked again every
// interval.
func (d *decider) inWaiting() Decision {
	if d.in.Revision == d.next.LastPromotedSpec {
		return d.revertedToPromoted()
	}
	if d.in.Spec.SkipAnalysis {
		return d.confirmRollout()
	}
	if left := d.untilDue(); left > 0 {
		return d.done(left)
	}
	return d.confirmRollout()
}

// restart handles a new revision during the analysis: traffic goes back to
// the primary and the analysis starts again from step 0.
func (d *decider) restart() Decision {
	if d.in.Revision == d.next.LastPromotedSpec {
		return d.revertedToPromoted()
	}
	d.route(Traffic{})
	d.act(ScaleCanaryUp)
	d.resetFor(d.in.Revision)
	d.setPhase(serinv1.CanaryPhaseProgressing)
	d.event(ReasonRestarted, "New revision of %s during the analysis: traffic back to the primary, restarting from step 0", d.target())
	return d.done(d.interval())
}

// rollback sends all traffic to the primary, then scales the canary down.
// The primary is touched only when a promotion was under way: it goes back
// to the last promoted revision.
func (d *decider) rollback(format string, args ...any) Decision {
	d.route(Traffic{})
	d.restorePrimary()
	d.act(ScaleCanaryDown)
	d.act(RunPostRollout)
	d.next.CanaryWeight = 0
	d.setPhase(serinv1.CanaryPhaseFailed)
	d.warn(ReasonRolledBack, "Rolling back %s: %s", d.target(), fmt.Sprintf(format, args...))
	return d.done(0)
}

// waitReady holds the release while a workload is not ready, and rolls back
// when that lasts past the progress deadline. It returns false when both are
// ready.
func (d *decider) waitReady() (Decision, bool) {
	var notReady []string
	if !d.in.Canary.Ready {
		notReady = append(notReady, fmt.Sprintf("canary %s: %s", d.target(), d.in.Canary.Message))
	}
	if !d.in.Primary.Ready {
		notReady = append(notReady, fmt.Sprintf("%s-primary: %s", d.target(), d.in.Primary.Message))
	}
	if len(notReady) == 0 {
		return Decision{}, false
	}
	left := d.untilDeadline()
	if left <= 0 {
		d.next.LastIterationTime = d.now()
		return d.rollback("not ready within the progress deadline of %s (%s)", d.deadline(), strings.Join(notReady, "; ")), true
	}
	// Readiness arrives as watch events of the workloads; the requeue
	// only enforces the deadline.
	return d.done(left), true
}

// inProgressing handles Progressing: once both workloads are ready, one
// step of the analysis per interval (canaryStep or iterationStep).
func (d *decider) inProgressing() Decision {
	if d.in.Revision != d.next.LastAppliedSpec {
		return d.restart()
	}
	if d.next.FailedChecks >= d.threshold() {
		return d.rollback("%d failed checks reached the threshold of %d", d.next.FailedChecks, d.threshold())
	}
	if dec, waiting := d.waitReady(); waiting {
		return dec
	}
	if d.in.Spec.SkipAnalysis {
		return d.skipRemaining()
	}
	if left := d.untilDue(); left > 0 {
		return d.done(left)
	}
	if d.strategyOf() == StrategyCanary {
		return d.canaryStep()
	}
	return d.iterationStep()
}

// stepChecks runs req, judges what it observed and applies the outcomes
// shared by every strategy. It returns whether the requested gate is open,
// or the Decision that ends the step: a step advances only when every
// check gave a verdict and every verdict passed.
func (d *decider) stepChecks(req CheckRequest) (bool, *Decision) {
	res, ok := d.checks(req)
	if !ok {
		dec := run(req)
		return false, &dec
	}
	v := d.judge(req, res)
	if v.invalid != nil {
		// Nothing is counted or recorded: the next interval judges again,
		// once the user fixed the metric.
		return false, &Decision{Status: d.in.Status, Invalid: v.invalid.Error(), RequeueAfter: d.interval(), Message: v.invalid.Error()}
	}
	d.judged = &v
	d.next.LastIterationTime = d.now()
	if v.rollback {
		dec := d.rollback("a rollback webhook asked for it")
		return false, &dec
	}
	if len(v.inconclusive) == 0 {
		d.next.InconclusiveSince = nil
	} else if d.next.InconclusiveSince == nil {
		since := d.now()
		d.next.InconclusiveSince = &since
	}
	if len(v.failures) > 0 {
		d.next.FailedChecks += len(v.failures)
		d.warn(ReasonChecksFailed, "%d failed checks (%d of %d): %s", len(v.failures), d.next.FailedChecks, d.threshold(), strings.Join(v.failures, "; "))
		if d.next.FailedChecks >= d.threshold() {
			dec := d.rollback("%d failed checks reached the threshold of %d", d.next.FailedChecks, d.threshold())
			return false, &dec
		}
		dec := d.done(d.interval())
		return false, &dec
	}
	if len(v.inconclusive) > 0 {
		held := d.in.Now.Sub(d.next.InconclusiveSince.Time)
		if held >= d.deadline() {
			dec := d.rollback("no verdict from %s for %s, the progress deadline", strings.Join(v.inconclusive, ", "), held.Round(time.Second))
			return false, &dec
		}
		d.warn(ReasonNoVerdict, "Holding %s at %s: no verdict from %s; no data or no answer is not a pass", d.target(), d.position(), strings.Join(v.inconclusive, ", "))
		dec := d.done(d.interval())
		return false, &dec
	}
	return v.gateOpen, nil
}

// position is where the release stands, for messages.
func (d *decider) position() string {
	if d.strategyOf() == StrategyCanary {
		return fmt.Sprintf("weight %d", d.next.CanaryWeight)
	}
	return fmt.Sprintf("iteration %d", d.next.Iterations)
}

// canaryStep raises the canary weight by one step once the checks pass
// (raiseWeight), and promotes after the checks at maxWeight pass.
func (d *decider) canaryStep() Decision {
	weight, maxWeight := d.next.CanaryWeight, MaxWeight(d.in.Spec.Analysis)
	req := CheckRequest{Rollback: d.hasHooks(serinv1.RollbackHook)}
	if weight == 0 && d.next.Iterations == 0 {
		// No traffic has reached the canary yet: only the pre-rollout
		// checks can judge it.
		req.PreRollout = d.hasHooks(serinv1.PreRolloutHook)
	} else {
		req.Analysis = d.hasAnalysisChecks()
	}
	if weight < maxWeight {
		req.Gate = d.gate(serinv1.ConfirmTrafficIncreaseHook)
	} else {
		req.Gate = d.gate(serinv1.ConfirmPromotionHook)
	}
	gateOpen, stop := d.stepChecks(req)
	if stop != nil {
		return *stop
	}
	if !gateOpen {
		if weight >= maxWeight {
			return d.enterWaitingPromotion()
		}
		if !d.heldByGateBefore() {
			d.event(ReasonWaitingApproval, "Holding %s at weight %d: waiting for the confirm-traffic-increase gate", d.target(), weight)
		}
		return d.done(d.interval())
	}
	if weight >= maxWeight {
		return d.enterPromoting()
	}
	return d.raiseWeight()
}

// raiseWeight moves the canary to the next weight step, capped to the share
// of its pods that are ready.
func (d *decider) raiseWeight() Decision {
	weight := d.next.CanaryWeight
	if weight == 0 && d.in.Spec.Analysis.Mirror && !d.next.AnalysisRouted {
		// As in Flagger, a canary release with mirror set mirrors for one
		// step before it shifts weight: the canary sees real requests
		// while only the primary answers them, and the next step's checks
		// judge that.
		d.next.AnalysisRouted = true
		d.next.Iterations++
		d.route(d.mirrorTraffic())
		d.event(ReasonAdvanced, "Mirroring the traffic of %s to the canary before shifting any weight to it", d.target())
		return d.done(d.interval())
	}
	scheduled := NextWeight(d.in.Spec.Analysis, weight)
	next := d.capped(scheduled)
	d.next.CanaryWeightCap = 0
	if next < scheduled {
		d.next.CanaryWeightCap = scheduled
	}
	if next <= weight {
		d.event(ReasonWeightCapped, "Holding %s at weight %d: %d of %d canary pods are ready", d.target(), weight, d.in.Canary.ReadyPods, d.in.Canary.Pods)
		return d.done(d.interval())
	}
	d.next.CanaryWeight = next
	d.next.Iterations++
	d.route(d.analysisTraffic(next))
	if next < scheduled {
		d.event(ReasonWeightCapped, "Advancing %s canary weight to %d instead of %d: %d of %d canary pods are ready", d.target(), next, scheduled, d.in.Canary.ReadyPods, d.in.Canary.Pods)
	} else {
		d.event(ReasonAdvanced, "Advancing %s canary weight to %d", d.target(), next)
	}
	return d.done(d.interval())
}

// needsRouting is true for an A/B or mirroring analysis whose routing is
// not in place yet: its iterations judge traffic that only that routing
// sends to the canary.
func (d *decider) needsRouting() bool {
	return d.strategyOf() != StrategyCanary && d.analysisTraffic(0) != Traffic{} && !d.next.AnalysisRouted
}

// routeAnalysis is the first step of an A/B or mirroring analysis: after
// the pre-rollout checks, matching requests (or mirrored copies) go to the
// canary; the first iteration judges them an interval later.
func (d *decider) routeAnalysis() Decision {
	req := CheckRequest{Rollback: d.hasHooks(serinv1.RollbackHook), PreRollout: d.hasHooks(serinv1.PreRolloutHook)}
	if _, stop := d.stepChecks(req); stop != nil {
		return *stop
	}
	d.route(d.analysisTraffic(0))
	d.next.AnalysisRouted = true
	d.event(ReasonAdvanced, "Routing the analysis traffic of %s to the canary", d.target())
	return d.done(d.interval())
}

// iterationStep runs one blue/green or A/B iteration; after the last one
// it promotes behind the confirm-promotion gate.
func (d *decider) iterationStep() Decision {
	if d.needsRouting() {
		return d.routeAnalysis()
	}
	total := d.in.Spec.Analysis.Iterations
	req := CheckRequest{Rollback: d.hasHooks(serinv1.RollbackHook)}
	if d.next.Iterations < total {
		req.PreRollout = d.next.Iterations == 0 && d.hasHooks(serinv1.PreRolloutHook) && !d.next.AnalysisRouted
		req.Analysis = d.hasAnalysisChecks()
	}
	// The last iteration asks the confirm-promotion gate along with its
	// checks, so a passed analysis promotes at once, not an interval later.
	if d.next.Iterations+1 >= total {
		req.Gate = d.gate(serinv1.ConfirmPromotionHook)
	}
	gateOpen, stop := d.stepChecks(req)
	if stop != nil {
		return *stop
	}
	if d.next.Iterations < total {
		dec := d.passIteration()
		if d.next.Iterations < total {
			return dec
		}
	}
	if !gateOpen {
		return d.enterWaitingPromotion()
	}
	return d.enterPromoting()
}

// passIteration counts one passed blue/green or A/B iteration.
func (d *decider) passIteration() Decision {
	if d.needsRouting() {
		// A promote operation skipped the routing step.
		d.route(d.analysisTraffic(0))
		d.next.AnalysisRouted = true
	}
	d.next.Iterations++
	d.event(ReasonAdvanced, "Iteration %d of %d of %s passed", d.next.Iterations, d.in.Spec.Analysis.Iterations, d.target())
	return d.done(d.interval())
}

// enterWaitingPromotion enters WaitingPromotion: the analysis passed and the
// confirm-promotion gate is closed.
func (d *decider) enterWaitingPromotion() Decision {
	if d.next.Phase != serinv1.CanaryPhaseWaitingPromotion {
		d.setPhase(serinv1.CanaryPhaseWaitingPromotion)
		d.event(ReasonWaitingPromotion, "%s passed the analysis and waits for the confirm-promotion gate", d.target())
	}
	return d.done(d.interval())
}

// inWaitingPromotion handles WaitingPromotion: the confirm-promotion gate is
// asked every interval, and the revision promoted once it opens.
func (d *decider) inWaitingPromotion() Decision {
	if d.in.Revision != d.next.LastAppliedSpec {
		return d.restart()
	}
	if dec, waiting := d.waitReady(); waiting {
		return dec
	}
	if d.in.Spec.SkipAnalysis {
		return d.skipRemaining()
	}
	if left := d.untilDue(); left > 0 {
		return d.done(left)
	}
	req := CheckRequest{Gate: d.gate(serinv1.ConfirmPromotionHook), Rollback: d.hasHooks(serinv1.RollbackHook)}
	gateOpen, stop := d.stepChecks(req)
	if stop != nil {
		return *stop
	}
	if !gateOpen {
		return d.done(d.interval())
	}
	return d.enterPromoting()
}

// enterPromoting enters Promoting for the analysed revision. The copy into the
// primary waits for the next reconcile: the status that says Promoting is
// written first, so a crash between the two writes repeats the copy instead
// of forgetting it.
func (d *decider) enterPromoting() Decision {
	d.next.LastIterationTime = d.now()
	d.setPhase(serinv1.CanaryPhasePromoting)
	d.event(ReasonPromoting, "Copying %s into %s-primary", d.target(), d.target())
	return d.done(copyDelay)
}

// restorePrimary puts the last promoted revision back into a primary that
// a promotion had started to overwrite.
func (d *decider) restorePrimary() {
	if rev := d.in.Primary.Revision; rev != "" && rev != d.next.LastPromotedSpec {
		d.actions = append(d.actions, Action{Kind: RestorePrimary, Revision: d.next.LastPromotedSpec})
	}
}

// inPromoting handles Promoting: it waits for the primary to roll out the
// promoted revision, then returns traffic to it, in stepWeightPromotion
// steps if set, and enters Finalising. A new revision of the target waits
// until the promotion has ended.
func (d *decider) inPromoting() Decision {
	if rev := d.next.LastAppliedSpec; d.in.Primary.Revision != rev {
		if d.in.Revision != rev {
			// The target changed before its analysed revision reached
			// the primary: what it holds now was never analysed.
			return d.restart()
		}
		if left := d.untilDeadline(); left > 0 {
			if d.strategyOf() != StrategyCanary && d.next.CanaryWeight != 100 {
				// Blue/green and A/B send all traffic to the tested
				// canary first, so users never reach a primary that is
				// rolling out. This happens only now that the target is
				// seen to still hold the analysed revision.
				d.next.CanaryWeight = 100
				d.route(Traffic{CanaryWeight: 100})
			}
			d.actions = append(d.actions, Action{Kind: PromotePrimary, Revision: rev})
			// The primary's rollout arrives as watch events.
			return d.done(left)
		}
		return d.rollback("%s-primary did not take the promoted revision within %s", d.target(), d.deadline())
	}
	if !d.in.Primary.Ready {
		left := d.untilDeadline()
		if left <= 0 {
			return d.rollback("%s-primary did not roll out the promoted revision within %s: %s", d.target(), d.deadline(), d.in.Primary.Message)
		}
		// The primary's rollout arrives as watch events; the requeue only
		// enforces the deadline.
		return d.done(left)
	}
	a := d.in.Spec.Analysis
	if d.strategyOf() == StrategyCanary && a.StepWeightPromotion > 0 && d.next.CanaryWeight > 0 {
		if left := d.untilDue(); left > 0 {
			return d.done(left)
		}
		next := PromotionWeight(a, d.next.CanaryWeight)
		d.next.CanaryWeight = next
		d.next.LastIterationTime = d.now()
		d.route(Traffic{CanaryWeight: next})
		if next > 0 {
			d.event(ReasonPromoting, "Returning traffic to %s-primary: canary weight %d", d.target(), next)
			return d.done(d.interval())
		}
	} else {
		d.next.CanaryWeight = 0
		d.route(Traffic{})
	}
	d.setPhase(serinv1.CanaryPhaseFinalising)
	d.event(ReasonFinalising, "%s-primary serves the promoted revision; scaling the canary down", d.target())
	return d.done(finaliseDelay)
}

// inFinalising handles Finalising: the canary scales down, the post-rollout
// hooks run and the release enters Succeeded.
func (d *decider) inFinalising() Decision {
	d.act(ScaleCanaryDown)
	d.act(RunPostRollout)
	d.next.LastPromotedSpec = d.next.LastAppliedSpec
	d.setPhase(serinv1.CanaryPhaseSucceeded)
	d.event(ReasonSucceeded, "Promotion of %s completed", d.target())
	if d.in.Revision != d.next.LastAppliedSpec {
		// A revision that arrived during the promotion starts now.
		return d.done(finaliseDelay)
	}
	return d.done(0)
}

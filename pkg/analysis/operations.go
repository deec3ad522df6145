package analysis

import (
	"fmt"
	"strings"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// OperationKind is a manual operation on a release, requested with the
// serin.dev/operation annotation.
type OperationKind string

const (
	// OperationPromote passes the current gate or step once: a closed
	// confirm-* gate counts as open, and in Progressing the next weight step
	// (or iteration) is taken now, without checks or waiting.
	OperationPromote OperationKind = "promote"
	// OperationPromoteFull skips the remaining steps and promotes now,
	// through Promoting and Finalising.
	OperationPromoteFull OperationKind = "promote-full"
	// OperationAbort rolls back now, as when the threshold is reached.
	OperationAbort OperationKind = "abort"
	// OperationRetry runs a Failed analysis again for the same revision.
	OperationRetry OperationKind = "retry"
	// OperationPause holds the release where it is.
	OperationPause OperationKind = "pause"
	// OperationResume continues a paused release.
	OperationResume OperationKind = "resume"
	// OperationUndo puts a kept revision (Operation.Revision) back into
	// the primary, through the analysis-free path of a rollback, when no
	// release is in flight.
	OperationUndo OperationKind = "undo"
)

// OperationKinds lists every operation.
var OperationKinds = []OperationKind{OperationPromote, OperationPromoteFull, OperationAbort, OperationRetry, OperationPause, OperationResume, OperationUndo}

// Operation is one request for an operation.
type Operation struct {
	Kind OperationKind
	// ID identifies the request (serin.dev/operation-id); kubectl serin
	// uses the request time.
	ID string
	// By is who asked, when known.
	By string
	// Revision is the revision an undo restores.
	Revision string
}

// PendingOperation is the operation the serin.dev/operation annotations of
// a Canary ask for, unless its ID was handled already. The annotations stay
// on the Canary: the reconciler records the handled ID in
// status.lastHandledOperation (through Decide) rather than deleting them, so
// a newer request written meanwhile is never lost, and a GitOps tool has
// nothing to restore.
func PendingOperation(c *serinv1.Canary) *Operation {
	kind, id := c.Annotations[serinv1.OperationAnnotation], c.Annotations[serinv1.OperationIDAnnotation]
	if kind == "" || id == "" || id == c.Status.LastHandledOperation {
		return nil
	}
	return &Operation{
		Kind: OperationKind(kind), ID: id, By: c.Annotations[serinv1.OperationByAnnotation],
		Revision: c.Annotations[serinv1.OperationRevisionAnnotation],
	}
}

// Reason is the Event reason of a carried-out operation, for example
// OperationPromoteFull.
func (k OperationKind) Reason() string {
	var b strings.Builder
	b.WriteString("Operation")
	for part := range strings.SplitSeq(string(k), "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// requester describes who asked for op, and when, for Event messages.
func (op Operation) requester() string {
	s := ""
	if op.By != "" {
		s = " by " + op.By
	}
	return s + " (request " + op.ID + ")"
}

// Replaces reports whether a request for op may replace pending, an
// operation requested earlier that the controller has not handled yet. Only
// an abort replaces an abort: abort wins over promote in whatever order
// they are asked for.
func Replaces(op, pending OperationKind) bool {
	return pending != OperationAbort || op == OperationAbort
}

// inFlight is true in the phases of a release that has not started its
// promotion.
func inFlight(p serinv1.CanaryPhase) bool {
	switch p {
	case serinv1.CanaryPhaseWaiting, serinv1.CanaryPhaseProgressing, serinv1.CanaryPhaseWaitingPromotion:
		return true
	}
	return false
}

// Refusal says why an operation does not apply to a Canary with this spec
// and status, or returns "" when it does. kubectl serin asks it before
// writing the annotation; Decide refuses the same operations, and a few
// more that depend on what the reconciler observed (a new revision of the
// target, a canary that is not ready).
func Refusal(spec serinv1.CanarySpec, st serinv1.CanaryStatus, kind OperationKind) string {
	if spec.Suspend {
		return "spec.suspend is set: the controller does nothing until it is unset"
	}
	phase := st.Phase
	switch kind {
	case OperationPromote, OperationPromoteFull:
		if inFlight(phase) && st.Paused {
			return "the release is paused: resume it first"
		}
		if inFlight(phase) {
			return ""
		}
		switch phase {
		case serinv1.CanaryPhasePromoting, serinv1.CanaryPhaseFinalising:
			return "the release is already being promoted"
		case serinv1.CanaryPhaseFailed:
			if st.LastPromotedSpec != "" {
				return "the analysis failed and was rolled back: retry it first"
			}
		}
	case OperationAbort:
		if inFlight(phase) {
			return ""
		}
		switch phase {
		case serinv1.CanaryPhasePromoting:
			// The primary goes back to the last promoted revision.
			return ""
		case serinv1.CanaryPhaseFinalising:
			return "the primary already runs the new revision: revert the target, or undo, to roll back"
		case serinv1.CanaryPhaseFailed:
			if st.LastPromotedSpec != "" {
				return "the release already failed and was rolled back"
			}
		}
	case OperationRetry:
		if phase == serinv1.CanaryPhaseFailed {
			if st.LastPromotedSpec == "" {
				return "the initialization failed: Serin retries it by itself until the primary is ready"
			}
			return ""
		}
		return fmt.Sprintf("only a Failed analysis can be retried, the phase is %s", phaseName(phase))
	case OperationPause:
		if st.Paused {
			return "the release is already paused"
		}
		if inFlight(phase) {
			return ""
		}
		if phase == serinv1.CanaryPhasePromoting || phase == serinv1.CanaryPhaseFinalising {
			return "the promotion is under way and cannot be held"
		}
	case OperationResume:
		if st.Paused {
			return ""
		}
		return "the release is not paused"
	case OperationUndo:
		switch phase {
		case serinv1.CanaryPhaseInitialized, serinv1.CanaryPhaseSucceeded, serinv1.CanaryPhaseFailed:
			if st.LastPromotedSpec == "" {
				break
			}
			return ""
		}
		if inFlight(phase) || phase == serinv1.CanaryPhasePromoting || phase == serinv1.CanaryPhaseFinalising {
			return "a release is in flight: abort it first"
		}
	default:
		return fmt.Sprintf("unknown operation %q: use one of %s", kind, joinKinds(OperationKinds))
	}
	return notInPhase(phase, st)
}

// notInPhase is the refusal of an operation in a phase without a release
// that could take it.
func notInPhase(phase serinv1.CanaryPhase, st serinv1.CanaryStatus) string {
	switch {
	case phase == serinv1.CanaryPhaseTerminating || phase == serinv1.CanaryPhaseTerminated:
		return "the Canary is being deleted"
	case st.LastPromotedSpec == "":
		return "the Canary is not initialized yet: there is no release"
	case phase == serinv1.CanaryPhaseFailed:
		return "no release in flight: the analysis failed and was rolled back"
	default:
		return fmt.Sprintf("no release in flight: the phase is %s", phaseName(phase))
	}
}

func phaseName(p serinv1.CanaryPhase) string {
	if p == "" {
		return "not set yet"
	}
	return string(p)
}

func joinKinds(kinds []OperationKind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// operate carries out the requested operation, or refuses it with a Warning
// Event; it returns false after a refusal, when the release goes on as
// without an operation.
func (d *decider) operate(op Operation) (Decision, bool) {
	d.next.LastHandledOperation = op.ID
	if why := d.refusal(op.Kind); why != "" {
		d.warn(ReasonOperationRefused, "%s%s refused: %s", op.Kind, op.requester(), why)
		return Decision{}, false
	}
	phase := d.next.Phase
	event := func(what string) { d.event(op.Kind.Reason(), "%s%s: %s", op.Kind, op.requester(), what) }
	switch op.Kind {
	case OperationUndo:
		event("rolling " + d.target() + "-primary back to revision " + op.Revision)
		d.actions = append(d.actions, Action{Kind: RestorePrimary, Revision: op.Revision})
		d.next.LastPromotedSpec = op.Revision
		d.next.CanaryWeight = 0
		d.setPhase(serinv1.CanaryPhaseSucceeded)
		return d.done(0), true
	case OperationAbort:
		event("rolling back now")
		d.next.Paused = false
		// Record the aborted revision (in Waiting none was applied yet,
		// mid-analysis a newer one may have arrived), so that it stays
		// Failed instead of starting again.
		d.next.LastAppliedSpec = d.in.Revision
		return d.rollback("aborted%s", op.requester()), true
	case OperationRetry:
		event("running the analysis of the failed revision again")
		return d.confirmRollout(), true
	case OperationPause:
		event(fmt.Sprintf("holding the release at weight %d", d.next.CanaryWeight))
		d.next.Paused = true
		return d.done(0), true
	case OperationResume:
		event("continuing the release one interval from now")
		d.next.Paused = false
		// A full interval from now, so the next checks judge traffic at
		// the held weight, and the progress deadline counts afresh.
		d.next.LastIterationTime = d.now()
		return d.done(d.interval()), true
	case OperationPromoteFull:
		event("skipping the remaining steps and promoting")
		if phase == serinv1.CanaryPhaseWaiting {
			return d.enterPromotingUntested(), true
		}
		return d.enterPromoting(), true
	}
	// OperationPromote.
	switch phase {
	case serinv1.CanaryPhaseWaiting:
		event("passing the confirm-rollout gate")
		return d.enterProgressing(), true
	case serinv1.CanaryPhaseWaitingPromotion:
		event("passing the confirm-promotion gate")
		return d.enterPromoting(), true
	}
	event("taking the next step now")
	return d.stepWithoutChecks(), true
}

// refusal adds to Refusal what depends on the observations.
func (d *decider) refusal(kind OperationKind) string {
	if why := Refusal(d.in.Spec, d.in.Status, kind); why != "" {
		return why
	}
	if kind == OperationUndo {
		switch op := d.in.Operation; {
		case op == nil || op.Revision == "":
			return "undo needs the revision to restore (serin.dev/operation-revision)"
		case op.Revision == d.in.Primary.Revision:
			return fmt.Sprintf("%s-primary already runs revision %s", d.target(), op.Revision)
		}
		return ""
	}
	if kind != OperationPause && kind != OperationResume && d.in.Revision == d.next.LastPromotedSpec {
		return fmt.Sprintf("%s is back at the promoted revision: the release ends by itself", d.target())
	}
	switch kind {
	case OperationRetry:
		if d.in.Revision != d.next.LastAppliedSpec {
			return fmt.Sprintf("a new revision of %s is analysed instead", d.target())
		}
	case OperationPromote, OperationPromoteFull:
		if d.next.Phase == serinv1.CanaryPhaseWaiting {
			return ""
		}
		if d.in.Revision != d.next.LastAppliedSpec {
			return fmt.Sprintf("a new revision of %s arrived: the analysis restarts from step 0", d.target())
		}
		// A rollback that is due wins over a promotion.
		if d.next.FailedChecks >= d.threshold() {
			return fmt.Sprintf("%d failed checks reached the threshold of %d: rolling back", d.next.FailedChecks, d.threshold())
		}
		if !d.in.Canary.Ready {
			return fmt.Sprintf("canary %s is not ready: %s", d.target(), d.in.Canary.Message)
		}
		if !d.in.Primary.Ready {
			return fmt.Sprintf("%s-primary is not ready: %s", d.target(), d.in.Primary.Message)
		}
	}
	return ""
}

// stepWithoutChecks takes the next step of the analysis now, without checks.
func (d *decider) stepWithoutChecks() Decision {
	d.next.LastIterationTime = d.now()
	if d.strategyOf() == StrategyCanary {
		if d.next.CanaryWeight >= MaxWeight(d.in.Spec.Analysis) {
			return d.enterPromoting()
		}
		return d.raiseWeight()
	}
	if d.next.Iterations >= d.in.Spec.Analysis.Iterations {
		return d.enterPromoting()
	}
	return d.passIteration()
}

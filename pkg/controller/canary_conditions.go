package controller

import (
	"fmt"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/workload"
)

// setPhaseConditions derives the kstatus conditions from the phase, so that
// Flux health checks and kstatus clients read a release correctly:
//   - Initialized and Succeeded are Ready: the primary runs the target's
//     current revision;
//   - Failed is Stalled: nothing happens until a new revision;
//   - every other phase is Reconciling.
//
// observedGeneration advances only with a settled outcome (Ready or Stalled).
func setPhaseConditions(c *serinv1.Canary, message string) {
	phase := c.Status.Phase
	reason := string(phase)
	switch phase {
	case serinv1.CanaryPhaseInitialized, serinv1.CanaryPhaseSucceeded:
		conditions.Delete(c, meta.ReconcilingCondition)
		conditions.Delete(c, meta.StalledCondition)
		conditions.MarkTrue(c, meta.ReadyCondition, reason, "%s", message)
		conditions.MarkTrue(c, serinv1.PromotedCondition, reason, "%s", message)
		c.Status.ObservedGeneration = c.Generation
	case serinv1.CanaryPhaseFailed:
		conditions.MarkStalled(c, reason, "%s", message)
		conditions.MarkFalse(c, meta.ReadyCondition, reason, "%s", message)
		conditions.MarkFalse(c, serinv1.PromotedCondition, reason, "%s", message)
		c.Status.ObservedGeneration = c.Generation
	default:
		conditions.MarkReconciling(c, meta.ProgressingReason, "%s", message)
		conditions.MarkUnknown(c, meta.ReadyCondition, meta.ProgressingReason, "%s", message)
		conditions.MarkFalse(c, serinv1.PromotedCondition, reason, "%s", message)
	}
}

// markStalled records a configuration error that no retry can fix.
func markStalled(c *serinv1.Canary, reason, message string) {
	conditions.MarkStalled(c, reason, "%s", message)
	conditions.MarkFalse(c, meta.ReadyCondition, reason, "%s", message)
	c.Status.ObservedGeneration = c.Generation
}

// markRetrying records a runtime problem that is retried with backoff; the
// release stays where it was.
func markRetrying(c *serinv1.Canary, reason, message string) {
	conditions.MarkReconciling(c, meta.ProgressingWithRetryReason, "%s", message)
	conditions.MarkFalse(c, meta.ReadyCondition, reason, "%s", message)
}

// noteTarget records the target generation the conditions are about. A
// revision that is neither the analysed nor the promoted one starts a
// release; until the analysis has taken it up (a confirm-rollout gate may
// still be answering), an idle Canary is Reconciling, so that a health check
// right after the target was applied reads neither the last release's Ready
// nor its Stalled.
func noteTarget(c *serinv1.Canary, obs workload.Observation) {
	c.Status.ObservedTargetGeneration = obs.TargetGeneration
	switch c.Status.Phase {
	case serinv1.CanaryPhaseInitialized, serinv1.CanaryPhaseSucceeded, serinv1.CanaryPhaseFailed:
	default:
		return
	}
	if obs.Revision == c.Status.LastAppliedSpec || obs.Revision == c.Status.LastPromotedSpec {
		return
	}
	message := fmt.Sprintf("new revision %s of the target (generation %d): its release is starting", obs.Revision, obs.TargetGeneration)
	conditions.Delete(c, meta.StalledCondition)
	conditions.MarkReconciling(c, meta.ProgressingReason, "%s", message)
	conditions.MarkUnknown(c, meta.ReadyCondition, meta.ProgressingReason, "%s", message)
}

package analysis

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// message is the conditions' message of the decision: the last warning
// about the release if there is one, else what the phase means. A Failed
// release keeps the reason of its rollback until a new revision arrives.
func (d *decider) message() string {
	msg := phaseMessage(d.in.Spec.TargetRef.Name, d.next.Phase)
	releaseEvents := 0
	for _, e := range d.events {
		if strings.HasPrefix(e.Reason, "Operation") {
			continue
		}
		releaseEvents++
		if e.Warning {
			msg = e.Message
		}
	}
	if d.next.Phase == serinv1.CanaryPhaseFailed && releaseEvents == 0 {
		// Promoted holds the rollback's reason even when a retry replaced
		// Stalled meanwhile.
		if c := meta.FindStatusCondition(d.in.Status.Conditions, serinv1.PromotedCondition); c != nil && c.Reason == string(serinv1.CanaryPhaseFailed) {
			msg = c.Message
		}
	}
	if d.next.Paused {
		msg = "paused: " + msg
	}
	return msg
}

// phaseMessage says what a phase means for the target.
func phaseMessage(target string, phase serinv1.CanaryPhase) string {
	switch phase {
	case serinv1.CanaryPhaseInitializing:
		return "creating " + target + "-primary"
	case serinv1.CanaryPhaseInitialized:
		return target + "-primary serves " + target
	case serinv1.CanaryPhaseWaiting:
		return "a new revision of " + target + " waits for the confirm-rollout gate"
	case serinv1.CanaryPhaseProgressing:
		return "analysing a new revision of " + target
	case serinv1.CanaryPhaseWaitingPromotion:
		return "a new revision of " + target + " waits for the confirm-promotion gate"
	case serinv1.CanaryPhasePromoting:
		return "promoting a new revision of " + target
	case serinv1.CanaryPhaseFinalising:
		return "finalising the promotion of " + target
	case serinv1.CanaryPhaseSucceeded:
		return "the current revision of " + target + " is promoted"
	case serinv1.CanaryPhaseFailed:
		return "the current revision of " + target + " failed its analysis and was rolled back"
	default:
		return string(phase)
	}
}

package v1beta1

// Condition types of a Canary besides the kstatus ones (Ready, Reconciling,
// Stalled) that come from github.com/fluxcd/pkg/apis/meta.
const (
	// PromotedCondition is True when the primary runs the target's current
	// revision, and False while a release is in flight or after it failed.
	PromotedCondition = "Promoted"
)

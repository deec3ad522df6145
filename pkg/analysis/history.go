package analysis

import (
	"fmt"
	"slices"
	"strings"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// historyLimit is how many decisions status.history keeps.
const historyLimit = 10

// maxOutcomesLength caps a record's list of check outcomes, so that the
// history of a Canary with many metrics stays small.
const maxOutcomesLength = 1024

// Verdicts of an interval, as status.history records them.
const (
	VerdictPassed       = "Passed"
	VerdictFailed       = "Failed"
	VerdictInconclusive = "Inconclusive"
)

// withRecord returns status.history with the decision about judged checks
// appended, in a new slice.
func (d *decider) withRecord(v *verdict) []serinv1.DecisionRecord {
	rec := serinv1.DecisionRecord{
		Time:      d.now(),
		Revision:  d.next.LastAppliedSpec,
		Phase:     d.next.Phase,
		Weight:    d.next.CanaryWeight,
		Iteration: d.next.Iterations,
		Checks:    capped(strings.Join(v.outcomes, " "), maxOutcomesLength),
		Verdict:   VerdictPassed,
		Action:    "hold",
	}
	switch {
	case v.rollback || len(v.failures) > 0:
		rec.Verdict = VerdictFailed
	case len(v.inconclusive) > 0:
		rec.Verdict = VerdictInconclusive
	}
	// Keeping the Services as they are is part of every decision, not news.
	moves := slices.DeleteFunc(slices.Clone(d.actions), func(a Action) bool { return a.Kind == EnsureServices })
	if len(moves) > 0 {
		rec.Action = FormatActions(moves)
	}
	h := append(append(make([]serinv1.DecisionRecord, 0, len(d.next.History)+1), d.next.History...), rec)
	if len(h) > historyLimit {
		h = h[len(h)-historyLimit:]
	}
	return h
}

// FormatActions lists actions in one line, for example
// "SetTraffic(40) PromotePrimary(rev)".
func FormatActions(actions []Action) string {
	parts := make([]string, 0, len(actions))
	for _, a := range actions {
		switch {
		case a.Traffic != nil:
			args := []string{fmt.Sprint(a.Traffic.CanaryWeight)}
			if a.Traffic.Mirror {
				args = append(args, fmt.Sprintf("mirror=%d", a.Traffic.MirrorWeight))
			}
			if a.Traffic.MatchToCanary {
				args = append(args, "match")
			}
			parts = append(parts, fmt.Sprintf("%s(%s)", a.Kind, strings.Join(args, ",")))
		case a.Revision != "":
			parts = append(parts, fmt.Sprintf("%s(%s)", a.Kind, a.Revision))
		default:
			parts = append(parts, string(a.Kind))
		}
	}
	return strings.Join(parts, " ")
}

func capped(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-len("…")] + "…"
}

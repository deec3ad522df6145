package controller

import (
	"strings"

	"github.com/serin-dev/serin/pkg/analysis"
)

// operationEvent is true for the Events of operations. They do not touch
// the conditions, which describe the release itself.
func operationEvent(e analysis.Event) bool {
	return strings.HasPrefix(e.Reason, "Operation")
}

// releaseEvents counts the Events that are not about operations.
func releaseEvents(events []analysis.Event) int {
	n := 0
	for _, e := range events {
		if !operationEvent(e) {
			n++
		}
	}
	return n
}

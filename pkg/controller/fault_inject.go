//go:build faultinject

package controller

import (
	"fmt"
	"os"

	"github.com/serin-dev/serin/pkg/analysis"
)

// faultAfter makes the process exit at once, as a crash would, right after
// an action of the kind SERIN_FAULT_EXIT_AFTER names succeeded and before
// the status patch. Only test builds (-tags faultinject) have it.
func faultAfter(kind analysis.ActionKind) {
	if want := os.Getenv("SERIN_FAULT_EXIT_AFTER"); want != "" && want == string(kind) {
		fmt.Fprintf(os.Stderr, "fault injection: exiting after %s\n", kind)
		os.Exit(3)
	}
}

// faultAfterStored makes the process exit at once right after the status
// patch that stored a decision with an Event of the reason
// SERIN_FAULT_EXIT_AFTER_STORED names, before that Event goes out.
func faultAfterStored(events []analysis.Event) {
	want := os.Getenv("SERIN_FAULT_EXIT_AFTER_STORED")
	for _, e := range events {
		if want != "" && e.Reason == want {
			fmt.Fprintf(os.Stderr, "fault injection: exiting after storing %s\n", want)
			os.Exit(3)
		}
	}
}

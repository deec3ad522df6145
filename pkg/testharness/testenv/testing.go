package testenv

import (
	"strings"
	"testing"

	"github.com/serin-dev/serin/pkg/testharness/proc"
)

// StartForTest starts an Env for t and stops it when t ends. A failing start
// fails t, and so does a component that died during the test. If t has
// failed by then, the logs are kept and their location and last lines are
// written to the test log.
func StartForTest(t testing.TB, opts Options) *Env {
	t.Helper()
	e, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Stop reports a crashed component as an error, failing t.
		if t.Failed() || e.deadComponent() != nil {
			e.KeepLogs()
			t.Log(e.failureReport())
		}
		if err := e.Stop(); err != nil {
			t.Errorf("stopping test environment: %v", err)
		}
	})
	return e
}

// failureReport says where the logs are and shows the end of each.
func (e *Env) failureReport() string {
	var b strings.Builder
	b.WriteString("test environment logs kept in " + e.Dir + "\n")
	logs := e.Logs()
	for _, name := range e.components() {
		b.WriteString("=== last lines of " + logs[name] + " ===\n")
		b.WriteString(proc.LogTail(logs[name], proc.TailLines))
		b.WriteString("\n")
	}
	return b.String()
}

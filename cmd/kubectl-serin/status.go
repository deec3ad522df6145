package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// recentEvents is how many of a Canary's Events status shows.
const recentEvents = 10

func newStatusCommand(k *kube) *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Show where a release is, its checks, conditions and recent Events",
		Long: `Show where the release of a Canary is: the steps done and to come, each
metric's last value against its threshold range, the webhooks of each
stage, the conditions, the recent Events, the time left to the progress
deadline and any operation requested and not handled yet.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := k.client()
			if err != nil {
				return err
			}
			canary, err := getCanary(cmd.Context(), c, ns, args[0])
			if err != nil {
				return err
			}
			events, err := canaryEvents(cmd.Context(), c, canary)
			if err != nil {
				return err
			}
			return printStatus(cmd.OutOrStdout(), canary, events, time.Now())
		},
	}
}

// canaryEvents lists the Events about a Canary, oldest first.
func canaryEvents(ctx context.Context, c client.Client, canary *serinv1.Canary) ([]corev1.Event, error) {
	var list corev1.EventList
	if err := c.List(ctx, &list, client.InNamespace(canary.Namespace), client.MatchingFields{
		"involvedObject.kind": serinv1.CanaryKind,
		"involvedObject.name": canary.Name,
	}); err != nil {
		return nil, fmt.Errorf("listing the events of canary %s/%s: %w", canary.Namespace, canary.Name, err)
	}
	events := list.Items
	slices.SortStableFunc(events, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	return events, nil
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.CreationTimestamp.Time
	}
}

func printStatus(out io.Writer, c *serinv1.Canary, events []corev1.Event, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	st, a := c.Status, c.Spec.Analysis
	fmt.Fprintf(w, "Canary:\t%s/%s (%s %s)\n", c.Namespace, c.Name, c.Spec.TargetRef.Kind, c.Spec.TargetRef.Name)
	fmt.Fprintf(w, "Strategy:\t%s, interval %s, threshold %d\n", analysis.StrategyOf(a), analysis.Interval(c.Spec), max(a.Threshold, 1))
	phase := string(st.Phase)
	if phase == "" {
		phase = "<none>"
	}
	if !st.LastTransitionTime.IsZero() {
		phase += " for " + age(st.LastTransitionTime.Time, now)
	}
	if st.Paused {
		phase += ", paused: resume to continue"
	}
	if c.Spec.Suspend {
		phase += ", suspended (spec.suspend)"
	}
	fmt.Fprintf(w, "Phase:\t%s\n", phase)
	fmt.Fprintf(w, "Revision:\t%s (the primary runs %s)\n", orNone(st.LastAppliedSpec), orNone(st.LastPromotedSpec))
	weight := strconv.Itoa(st.CanaryWeight) + "%"
	if st.CanaryWeightCap > 0 {
		weight += fmt.Sprintf(" (capped from %d%%: not all canary pods are ready)", st.CanaryWeightCap)
	}
	if c.Spec.IsFlagRollout() {
		weight += " of the evaluation contexts get the new flag definitions"
	}
	fmt.Fprintf(w, "Weight:\t%s\n", weight)
	for i, f := range st.Flags {
		label := ""
		if i == 0 {
			label = "Changed flags:"
		}
		fmt.Fprintf(w, "%s\t%s (default %s -> %s)\n", label, f.Key, orCodeDefault(f.OldVariant), orCodeDefault(f.NewVariant))
	}
	fmt.Fprintf(w, "Failed checks:\t%d of %d\n", st.FailedChecks, max(a.Threshold, 1))
	if running(st.Phase) && !st.Paused && !c.Spec.Suspend {
		fmt.Fprintf(w, "Next step:\t%s\n", inDuration(analysis.UntilNextStep(c.Spec, st, now)))
		fmt.Fprintf(w, "Progress deadline:\t%s (while a workload is not ready)\n", inDuration(analysis.UntilDeadline(c.Spec, st, now)))
	}
	if op := analysis.PendingOperation(c); op != nil {
		fmt.Fprintf(w, "Pending operation:\t%s (operation-id %s)\n", op.Kind, op.ID)
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(out, "\nSteps:")
	for _, s := range steps(c) {
		fmt.Fprintln(out, "  "+s)
	}
	if len(st.History) > 0 {
		fmt.Fprintln(out, "\nDecisions:")
		t := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(t, "  AGE\tREVISION\tPHASE\tWEIGHT\tITERATION\tVERDICT\tACTION\tCHECKS")
		for _, r := range st.History {
			fmt.Fprintf(t, "  %s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", age(r.Time.Time, now), orNone(r.Revision), r.Phase, r.Weight, r.Iteration, r.Verdict, r.Action, r.Checks)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	if len(a.Metrics) > 0 {
		fmt.Fprintln(out, "\nMetrics:")
		t := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(t, "  NAME\tLAST VALUE\tTHRESHOLD RANGE\tVERDICT\tMEASURED\tMESSAGE")
		for _, m := range a.Metrics {
			value, verdict, measured, message := "-", "-", "-", ""
			if i := slices.IndexFunc(st.Metrics, func(s serinv1.MetricStatus) bool { return s.Name == m.Name }); i >= 0 {
				ms := st.Metrics[i]
				if ms.Value != nil {
					value = strconv.FormatFloat(*ms.Value, 'g', 6, 64)
				}
				verdict, measured, message = string(ms.Verdict), age(ms.Time.Time, now)+" ago", ms.Message
			}
			fmt.Fprintf(t, "  %s\t%s\t%s\t%s\t%s\t%s\n", m.Name, value, thresholdRange(m.Bounds()), verdict, measured, message)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	if len(a.Webhooks) > 0 {
		// The status keeps the last outcome of the pre-rollout and
		// rollout webhooks; gates and the others are in the Events below.
		fmt.Fprintln(out, "\nWebhooks:")
		t := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(t, "  NAME\tTYPE\tVERDICT\tCALLED\tMESSAGE")
		for _, h := range a.Webhooks {
			verdict, called, message := "-", "-", ""
			if i := slices.IndexFunc(st.Webhooks, func(s serinv1.WebhookStatus) bool { return s.Name == h.Name }); i >= 0 {
				ws := st.Webhooks[i]
				verdict, called, message = string(ws.Verdict), age(ws.Time.Time, now)+" ago", ws.Message
			}
			fmt.Fprintf(t, "  %s\t%s\t%s\t%s\t%s\n", h.Name, analysis.HookType(h), verdict, called, message)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	if len(st.Conditions) > 0 {
		fmt.Fprintln(out, "\nConditions:")
		t := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(t, "  TYPE\tSTATUS\tREASON\tAGE\tMESSAGE")
		for _, cond := range st.Conditions {
			fmt.Fprintf(t, "  %s\t%s\t%s\t%s\t%s\n", cond.Type, cond.Status, cond.Reason, age(cond.LastTransitionTime.Time, now), cond.Message)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "\nEvents:")
	if len(events) == 0 {
		fmt.Fprintln(out, "  <none>")
		return nil
	}
	t := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(t, "  AGE\tTYPE\tREASON\tMESSAGE")
	for _, e := range events[max(len(events)-recentEvents, 0):] {
		fmt.Fprintf(t, "  %s\t%s\t%s\t%s\n", age(eventTime(e), now), e.Type, e.Reason, e.Message)
	}
	return t.Flush()
}

// running is true in the phases whose interval and deadline clocks tick.
func running(p serinv1.CanaryPhase) bool {
	switch p {
	case serinv1.CanaryPhaseWaiting, serinv1.CanaryPhaseProgressing, serinv1.CanaryPhaseWaitingPromotion, serinv1.CanaryPhasePromoting:
		return true
	}
	return false
}

// steps lists the schedule of the release: done, current and to come.
func steps(c *serinv1.Canary) []string {
	a, st := c.Spec.Analysis, c.Status
	inRelease := st.Phase != "" && st.Phase != serinv1.CanaryPhaseInitializing && st.Phase != serinv1.CanaryPhaseInitialized
	var lines []string
	mark := func(done bool, current bool, text string) {
		switch {
		case !inRelease:
			lines = append(lines, "  "+text)
		case current:
			lines = append(lines, "> "+text+"  <- now")
		case done:
			lines = append(lines, "✓ "+text)
		default:
			lines = append(lines, "  "+text)
		}
	}
	if schedule := analysis.Schedule(a); schedule != nil {
		for i, w := range schedule {
			mark(i < st.Iterations, i+1 == st.Iterations && st.Phase == serinv1.CanaryPhaseProgressing, fmt.Sprintf("step %d of %d: weight %d%%", i+1, len(schedule), w))
		}
	} else {
		for i := range a.Iterations {
			mark(i < st.Iterations, i+1 == st.Iterations && st.Phase == serinv1.CanaryPhaseProgressing, fmt.Sprintf("iteration %d of %d", i+1, a.Iterations))
		}
	}
	promoted := st.Phase == serinv1.CanaryPhaseSucceeded
	mark(promoted || st.Phase == serinv1.CanaryPhaseFinalising, st.Phase == serinv1.CanaryPhaseWaitingPromotion || st.Phase == serinv1.CanaryPhasePromoting, "promotion")
	if st.Phase == serinv1.CanaryPhaseFailed {
		lines = append(lines, "x rolled back")
	}
	return lines
}

func thresholdRange(r *serinv1.CanaryThresholdRange) string {
	lo, hi := "-inf", "+inf"
	if r != nil && r.Min != nil {
		lo = strconv.FormatFloat(*r.Min, 'g', 6, 64)
	}
	if r != nil && r.Max != nil {
		hi = strconv.FormatFloat(*r.Max, 'g', 6, 64)
	}
	return "[" + lo + ", " + hi + "]"
}

func inDuration(d time.Duration) string {
	if d <= 0 {
		return "due"
	}
	return "in " + d.Round(time.Second).String()
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// orCodeDefault names an empty variant: the caller's code default.
func orCodeDefault(variant string) string {
	if variant == "" {
		return "the code default"
	}
	return variant
}

// Command demo (make demo) shows Serin's main job on one machine: it starts
// the local cluster, Prometheus fed by the telemetry source, serin-tester
// and the controller, then releases a good version of a sample app, which
// is promoted step by step, and a bad one, which is rolled back; then the
// same for two changes of flagd feature flags, with the share of users on
// each variant shown live. Ctrl-C stops everything it started.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/e2e/stack"
)

const (
	namespace = "demo"
	app       = "podinfo"
	goodImage = "ghcr.io/serin-dev/podinfo:6.0.1"
	badImage  = "ghcr.io/serin-dev/podinfo:6.0.2"
	// releaseTimeout bounds one release; the floor of each is 50s.
	releaseTimeout = 5 * time.Minute

	flagCanary, flagTarget = "payments-flags", "flagd-config"
	// The flag definitions: new-checkout is on in the US and Canada only;
	// the good change turns it on everywhere, the bad one turns banner
	// blue, and a third of the requests served blue fail.
	flagsBefore = `{"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {
  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"in": [{"var": "country"}, ["US", "CA"]]}, "on", null]}},
  "banner": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"}}}`
	flagsGood = `{"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {
  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
  "banner": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"}}}`
	flagsBad = `{"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {
  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
  "banner": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "blue"}}}`
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Println("interrupted; everything the demo started is stopped")
			os.Exit(130)
		}
		// One clear line: the first line of the error says what is wrong.
		fmt.Fprintln(os.Stderr, "demo:", strings.SplitN(err.Error(), "\n", 2)[0])
		os.Exit(1)
	}
}

func run(ctx context.Context) (err error) {
	started := time.Now()
	step := func(format string, args ...any) {
		fmt.Printf("[%5.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}
	st, err := stack.Start(ctx, stack.Options{Progress: step})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping everything the demo started")
		if stopErr := st.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	step("ready: controller logs in %s/serin.log", st.Dir)

	c := stack.NewCanary(namespace, app, serinv1.ProviderIstio)
	// Five steps of 10% up to 50%, one check round every 10s.
	c.Spec.Analysis.StepWeight, c.Spec.Analysis.MaxWeight = 10, 50
	step("creating namespace %s with Deployment %s and a Canary (istio, 5 steps of 10%%, checks: success rate >= 99%%, p99 latency <= 500ms)", namespace, app)
	if err := st.CreateApp(ctx, c); err != nil {
		return err
	}
	if _, err := follow(ctx, st, started, app, view, serinv1.CanaryPhaseInitialized); err != nil {
		return err
	}

	var summary []string
	for _, r := range []struct {
		what  string
		image string
		b     stack.Behaviour
		want  serinv1.CanaryPhase
	}{
		{"a good version", goodImage, stack.Behaviour{}, serinv1.CanaryPhaseSucceeded},
		{"a bad version (10% of its requests fail)", badImage, stack.Behaviour{ErrorRatio: 0.1}, serinv1.CanaryPhaseFailed},
	} {
		step("releasing %s: %s", r.what, r.image)
		released := time.Now()
		if err := st.Release(ctx, namespace, app, r.image, r.b); err != nil {
			return err
		}
		// The previous release's phase stands until Serin sees the new
		// revision.
		if _, err := follow(ctx, st, started, app, view, serinv1.CanaryPhaseProgressing); err != nil {
			return err
		}
		got, err := follow(ctx, st, started, app, view, serinv1.CanaryPhaseSucceeded, serinv1.CanaryPhaseFailed)
		if err != nil {
			return err
		}
		if got.Status.Phase != r.want {
			return fmt.Errorf("the release of %s ended %s, not %s; see %s/serin.log", r.what, got.Status.Phase, r.want, st.Dir)
		}
		primary, err := st.Image(ctx, namespace, app+"-primary")
		if err != nil {
			return err
		}
		summary = append(summary, fmt.Sprintf("%-46s %-9s in %5.1fs, primary runs %s", r.what, got.Status.Phase, time.Since(released).Seconds(), primary))
	}

	flags, err := releaseFlags(ctx, st, started, step)
	if err != nil {
		return err
	}
	summary = append(summary, flags...)

	fmt.Println("\nsummary")
	for _, line := range summary {
		fmt.Println("  " + line)
	}
	fmt.Printf("  total %.0fs\n\n", time.Since(started).Seconds())
	return nil
}

// releaseFlags is the flag act: a Canary whose target is a ConfigMap of
// flagd flags rolls a good change out to 20, 40 then 60% of the users and
// promotes it, then rolls a bad one back; each line shows the variants'
// shares among the telemetry source's users in what flagd serves.
func releaseFlags(ctx context.Context, st *stack.Stack, started time.Time, step func(string, ...any)) ([]string, error) {
	c := stack.NewFlagCanary(namespace, flagCanary, flagTarget, 20, 40, 60)
	step("creating ConfigMap %s with flagd flags and a Canary that rolls their changes out through %s-primary (20%%, 40%%, 60%% of the users; check: errors of the new variant <= 5%%)", flagTarget, flagTarget)
	if err := st.CreateFlags(ctx, c, flagsBefore); err != nil {
		return nil, err
	}
	flagView := func(c *serinv1.Canary) string {
		line := view(c)
		doc, err := st.ServedFlags(ctx, namespace, flagTarget)
		if err != nil {
			return line
		}
		for _, flag := range []string{"new-checkout", "banner"} {
			if shares, err := stack.VariantShares(doc, flag); err == nil {
				line += fmt.Sprintf("  %s: %s", flag, shares)
			}
		}
		return line
	}
	if _, err := follow(ctx, st, started, flagCanary, flagView, serinv1.CanaryPhaseInitialized); err != nil {
		return nil, err
	}
	var summary []string
	for _, r := range []struct {
		what   string
		doc    string
		ratios map[string]float64
		want   serinv1.CanaryPhase
	}{
		{"a good flag change (new-checkout on for all)", flagsGood, nil, serinv1.CanaryPhaseSucceeded},
		{"a bad flag change (banner blue fails 1/3)", flagsBad, map[string]float64{"banner/blue": 0.33}, serinv1.CanaryPhaseFailed},
	} {
		step("releasing %s", r.what)
		released := time.Now()
		if err := st.ReleaseFlags(ctx, namespace, flagTarget, r.doc, r.ratios); err != nil {
			return nil, err
		}
		if _, err := follow(ctx, st, started, flagCanary, flagView, serinv1.CanaryPhaseProgressing); err != nil {
			return nil, err
		}
		got, err := follow(ctx, st, started, flagCanary, flagView, serinv1.CanaryPhaseSucceeded, serinv1.CanaryPhaseFailed)
		if err != nil {
			return nil, err
		}
		if got.Status.Phase != r.want {
			return nil, fmt.Errorf("the release of %s ended %s, not %s; see %s/serin.log", r.what, got.Status.Phase, r.want, st.Dir)
		}
		doc, err := st.ServedFlags(ctx, namespace, flagTarget)
		if err != nil {
			return nil, err
		}
		served := "the new definitions"
		if doc != r.doc {
			served = "the promoted definitions"
		}
		summary = append(summary, fmt.Sprintf("%-46s %-9s in %5.1fs, flagd serves %s", r.what, got.Status.Phase, time.Since(released).Seconds(), served))
	}
	return summary, nil
}

// lastView is the last line printed, so a line is printed only on change.
var lastView string

// follow prints a line (show's) each time Canary name's phase, weight or
// check results change, until it reaches one of the phases.
func follow(ctx context.Context, st *stack.Stack, started time.Time, name string, show func(*serinv1.Canary) string, until ...serinv1.CanaryPhase) (*serinv1.Canary, error) {
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	last := lastView
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var c serinv1.Canary
		if err := st.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &c); err != nil {
			return nil, err
		}
		if line := show(&c); line != last {
			fmt.Printf("[%5.1fs]   %s\n", time.Since(started).Seconds(), line)
			last, lastView = line, line
		}
		for _, p := range until {
			if c.Status.Phase == p {
				return &c, nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("the Canary did not reach %v within %v (phase %s); see %s/serin.log", until, releaseTimeout, c.Status.Phase, st.Dir)
			}
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// view is one line of the live view: phase, weight, failed checks and each
// check's last measured value against its range.
func view(c *serinv1.Canary) string {
	phase := string(c.Status.Phase)
	if phase == "" {
		phase = "Pending"
	}
	parts := []string{fmt.Sprintf("%-16s weight %3d%%  failed checks %d/%d", phase, c.Status.CanaryWeight, c.Status.FailedChecks, c.Spec.Analysis.Threshold)}
	ranges := map[string]string{}
	for _, m := range c.Spec.Analysis.Metrics {
		if r := m.Bounds().String(); r != "" {
			ranges[m.Name] = " " + r
		}
	}
	for _, m := range c.Status.Metrics {
		value := "-"
		if m.Value != nil {
			value = fmt.Sprintf("%.2f", *m.Value)
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s%s)", m.Name, value, m.Verdict, ranges[m.Name]))
	}
	return strings.Join(parts, "  ")
}

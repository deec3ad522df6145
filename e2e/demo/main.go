// Command demo (make demo) shows Serin's main job on one machine: it starts
// the local cluster, Prometheus fed by the telemetry source, serin-tester
// and the controller, then releases a good version of a sample app, which
// is promoted step by step, and a bad one, which is rolled back. Ctrl-C
// stops everything it started.
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
	if _, err := follow(ctx, st, started, serinv1.CanaryPhaseInitialized); err != nil {
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
		if _, err := follow(ctx, st, started, serinv1.CanaryPhaseProgressing); err != nil {
			return err
		}
		got, err := follow(ctx, st, started, serinv1.CanaryPhaseSucceeded, serinv1.CanaryPhaseFailed)
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
		summary = append(summary, fmt.Sprintf("%-42s %-9s in %5.1fs, primary runs %s", r.what, got.Status.Phase, time.Since(released).Seconds(), primary))
	}

	fmt.Println("\nsummary")
	for _, line := range summary {
		fmt.Println("  " + line)
	}
	fmt.Printf("  total %.0fs\n\n", time.Since(started).Seconds())
	return nil
}

// lastView is the last line printed, so a line is printed only on change.
var lastView string

// follow prints a line each time the Canary's phase, weight or check
// results change, until it reaches one of the phases.
func follow(ctx context.Context, st *stack.Stack, started time.Time, until ...serinv1.CanaryPhase) (*serinv1.Canary, error) {
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	last := lastView
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var c serinv1.Canary
		if err := st.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: app}, &c); err != nil {
			return nil, err
		}
		if line := view(&c); line != last {
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
		if r := m.ThresholdRange.String(); r != "" {
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

package main

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/e2e/stack"
)

const (
	releaseImage = "ghcr.io/serin-dev/podinfo:6.0.1"
	appName      = "app"
	// interval and iterations set the floor of a promotion.
	interval   = 10 * time.Second
	iterations = 3
	// workers bounds the benchmark's own concurrent requests.
	workers = 16
)

// canaryFor is the Canary of the app in namespace ns for profile.
func canaryFor(ns, profile string) *serinv1.Canary {
	c := &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: appName},
		Spec: serinv1.CanarySpec{
			TargetRef: serinv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: appName},
			Service:   serinv1.CanaryService{Port: 80, TargetPort: intstr.FromInt32(8080)},
			Analysis:  serinv1.CanaryAnalysis{Interval: interval.String(), Threshold: 5},
		},
	}
	switch profile {
	case profileIstio:
		c.Spec.Provider = serinv1.ProviderIstio
		// 20, 40, 60: three steps, as many as the blue/green iterations.
		c.Spec.Analysis.StepWeight = 20
		c.Spec.Analysis.MaxWeight = 60
		c.Spec.Service.Hosts = []string{ns + ".example.com"}
	default:
		c.Spec.Provider = serinv1.ProviderKubernetes
		c.Spec.Analysis.Iterations = iterations
	}
	return c
}

func namespaceName(i int) string { return fmt.Sprintf("bench-%04d", i) }

// forEach runs f for 0..n-1 on the benchmark's workers and returns the
// first error.
func forEach(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// createApps creates n namespaces, each with the app and its Canary, and
// records when each Canary was created.
func createApps(ctx context.Context, c client.Client, n int, profile string, t *tracker) error {
	return forEach(ctx, n, func(ctx context.Context, i int) error {
		ns := namespaceName(i)
		for _, o := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, stack.NewDeployment(ns, appName, 1), canaryFor(ns, profile)} {
			if err := c.Create(ctx, o); err != nil {
				return fmt.Errorf("creating %T %s/%s: %w", o, ns, o.GetName(), err)
			}
		}
		t.mark(ns, &t.created)
		return nil
	})
}

// release sets the new image on every target and marks each namespace once
// it is set.
func release(ctx context.Context, c client.Client, n int, mark func(ns string)) error {
	patch := fmt.Appendf(nil, `{"spec":{"template":{"spec":{"containers":[{"name":%q,"image":%q}]}}}}`, appName, releaseImage)
	return forEach(ctx, n, func(ctx context.Context, i int) error {
		ns := namespaceName(i)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: appName}}
		if err := c.Patch(ctx, d, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
			return fmt.Errorf("releasing %s: %w", ns, err)
		}
		mark(ns)
		return nil
	})
}

// tracker records, per namespace, when the benchmark and the Canary watch
// saw each step.
type tracker struct {
	mu          sync.Mutex
	created     map[string]time.Time
	initialized map[string]time.Time
	released    map[string]time.Time
	succeeded   map[string]time.Time
	failed      map[string]time.Time
	// phases holds when each phase was first seen after the release,
	// to show where a promotion's time goes.
	phases map[serinv1.CanaryPhase]map[string]time.Time
}

func newTracker() *tracker {
	return &tracker{
		created:     map[string]time.Time{},
		initialized: map[string]time.Time{},
		released:    map[string]time.Time{},
		succeeded:   map[string]time.Time{},
		failed:      map[string]time.Time{},
		phases:      map[serinv1.CanaryPhase]map[string]time.Time{},
	}
}

func (t *tracker) mark(ns string, m *map[string]time.Time) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := (*m)[ns]; !ok {
		(*m)[ns] = now
	}
}

// observe records the phase of a Canary as the watch delivers it.
func (t *tracker) observe(obj any) {
	c, ok := obj.(*serinv1.Canary)
	if !ok {
		return
	}
	t.mu.Lock()
	_, released := t.released[c.Namespace]
	if released {
		if t.phases[c.Status.Phase] == nil {
			t.phases[c.Status.Phase] = map[string]time.Time{}
		}
		if _, ok := t.phases[c.Status.Phase][c.Namespace]; !ok {
			t.phases[c.Status.Phase][c.Namespace] = time.Now()
		}
	}
	t.mu.Unlock()
	switch phase := c.Status.Phase; {
	case !released && phase == serinv1.CanaryPhaseInitialized:
		t.mark(c.Namespace, &t.initialized)
	// Before the release only the end of a promotion is of interest, so
	// an early Succeeded or Failed cannot be mistaken for it.
	case released && phase == serinv1.CanaryPhaseSucceeded:
		t.mark(c.Namespace, &t.succeeded)
	case phase == serinv1.CanaryPhaseFailed:
		t.mark(c.Namespace, &t.failed)
	}
}

func (t *tracker) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.observe(obj) },
		UpdateFunc: func(_, obj any) { t.observe(obj) },
	}
}

// phaseCounts says how many Canaries have been seen in each phase since the
// release, e.g. "Progressing 12, Promoting 3".
func (t *tracker) phaseCounts() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var parts []string
	for _, p := range []serinv1.CanaryPhase{serinv1.CanaryPhaseProgressing, serinv1.CanaryPhasePromoting, serinv1.CanaryPhaseFinalising} {
		if n := len(t.phases[p]); n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p, n))
		}
	}
	return strings.Join(parts, ", ")
}

// progress is the progress line of a wait for n Canaries.
func (t *tracker) progress(n int) string {
	i, s, f := t.counts()
	line := fmt.Sprintf("%d/%d initialised, %d succeeded, %d failed", i, n, s, f)
	if phases := t.phaseCounts(); phases != "" {
		line += " (seen since the release: " + phases + ")"
	}
	return line
}

// counts returns how many Canaries have reached each step.
func (t *tracker) counts() (initialized, succeeded, failed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.initialized), len(t.succeeded), len(t.failed)
}

// latencies returns, in seconds, the time from from to to for every
// namespace that has both, and the latest time in to.
func (t *tracker) latencies(from, to map[string]time.Time) ([]float64, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return latencies(from, to)
}

// latencies are the times from each namespace's entry in from to its entry
// in to, and the latest entry of to.
func latencies(from, to map[string]time.Time) ([]float64, time.Time) {
	var out []float64
	var last time.Time
	for ns, end := range to {
		if start, ok := from[ns]; ok {
			out = append(out, end.Sub(start).Seconds())
		}
		if end.After(last) {
			last = end
		}
	}
	return out, last
}

// phaseMedians is, for each phase seen after the release, the median time
// from the release to first seeing it.
func (t *tracker) phaseMedians() map[string]float64 {
	t.mu.Lock()
	phases := maps.Clone(t.phases)
	t.mu.Unlock()
	out := map[string]float64{}
	for phase, seen := range phases {
		lat, _ := t.latencies(t.released, seen)
		out[string(phase)] = Percentile(lat, 50)
	}
	return out
}

// stallLimit is how long the progress line may stand still before a wait
// gives up: far longer than any step of a healthy release takes, even for
// thousands of Canaries.
const stallLimit = 10 * time.Minute

// waitFor waits until done reports true, printing progress every 10s.
func waitFor(ctx context.Context, what string, timeout time.Duration, progress func() string, done func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	lastPrint, lastChange, last := start, start, progress()
	for !done() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (%s)", what, ctx.Err(), progress())
		case now := <-tick.C:
			if p := progress(); p != last {
				last, lastChange = p, now
			} else if now.Sub(lastChange) > stallLimit {
				return fmt.Errorf("waiting for %s: no progress for %v (%s)", what, stallLimit, p)
			}
			if now.Sub(lastPrint) >= 10*time.Second {
				lastPrint = now
				logf("  %4.0fs %s", now.Sub(start).Seconds(), last)
			}
		}
	}
	return nil
}

//go:build e2e

// Package suite is the end-to-end suite (make e2e): every scenario runs in
// its own namespace, in parallel, on one stack (local cluster, Prometheus
// fed by the telemetry source, serin-tester and the controller binary).
package suite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/naming"

	"github.com/serin-dev/serin/e2e/stack"
)

const (
	// releaseTimeout bounds one release; the slowest floor is 35s.
	releaseTimeout = 3 * time.Minute
	poll           = 200 * time.Millisecond
)

var st *stack.Stack

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	started := time.Now()
	var err error
	st, err = stack.Start(context.Background(), stack.Options{Progress: func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the stack:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: stack ready in %v\n", time.Since(started).Round(time.Second))
	code := m.Run()
	report.print()
	if code != 0 {
		st.KeepLogs()
		fmt.Fprintf(os.Stderr, "e2e: logs kept in %s (serin.log, serin-tester.log, telemetry.log) and %s\n", st.Dir, st.Env.Dir)
	}
	if err := st.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the stack:", err)
	}
	return code
}

// timings collects each scenario's release wall time against its floor
// (steps × interval), printed once all have run.
type timings struct {
	mu   sync.Mutex
	rows []timing
}

type timing struct {
	scenario    string
	wall, floor time.Duration
}

var report timings

func (r *timings) add(scenario string, wall, floor time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, timing{scenario, wall, floor})
}

func (r *timings) print() {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.SortFunc(r.rows, func(a, b timing) int { return strings.Compare(a.scenario, b.scenario) })
	fmt.Fprintf(os.Stderr, "\n%-45s %8s %8s %6s\n", "scenario", "wall", "floor", "ratio")
	for _, t := range r.rows {
		fmt.Fprintf(os.Stderr, "%-45s %8s %8s %6.2f\n", t.scenario, t.wall.Round(100*time.Millisecond), t.floor, t.wall.Seconds()/t.floor.Seconds())
	}
}

// scenario is one Canary in its own namespace, with a record of what it
// went through.
type scenario struct {
	t    *testing.T
	g    Gomega
	ns   string
	name string

	mu        sync.Mutex
	phases    []serinv1.CanaryPhase
	weights   []int // status.canaryWeight, each change
	routed    []int // the weight the routing objects carry, each change
	analysed  []int // status.canaryWeight while Progressing (routing is written before the status, so routed weights cannot be told apart by phase)
	matched   bool  // the routing objects sent matching requests to the canary
	released  time.Time
	finalised time.Time
}

// newScenario creates the sample app with Canary c in a new namespace,
// waits until it is Initialized, and records it from then on.
func newScenario(t *testing.T, c *serinv1.Canary) *scenario {
	t.Parallel()
	ns := "e2e-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	c.Namespace = ns
	s := &scenario{t: t, g: NewWithT(t), ns: ns, name: c.Name}
	ctx := t.Context()
	s.g.Expect(st.CreateApp(ctx, c)).To(Succeed())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("phases %v, status weights %v, routed weights %v", s.phases, s.weights, s.routed)
		}
	})
	s.g.Eventually(s.phase, releaseTimeout, poll).Should(Equal(serinv1.CanaryPhaseInitialized))
	blueGreen := c.Spec.Provider == serinv1.ProviderKubernetes
	if blueGreen {
		s.watchApex(ctx, naming.ServicesOf(c).Apex, c.Spec.TargetRef.Name)
	}
	go s.record(ctx, !blueGreen)
	return s
}

// watchApex records, from a watch, each Service apex selecting the canary
// (routed 100) or the primary (routed 0): a blue/green promotion sends
// traffic to the canary for as long as the primary takes to roll out,
// which polling can miss on a fast cluster.
func (s *scenario) watchApex(ctx context.Context, apex, target string) {
	var list corev1.ServiceList
	w, err := st.Client.Watch(ctx, &list, client.InNamespace(s.ns), client.MatchingFields{"metadata.name": apex})
	s.g.Expect(err).NotTo(HaveOccurred())
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			svc, ok := ev.Object.(*corev1.Service)
			if !ok {
				continue
			}
			weight := 0
			if svc.Spec.Selector["app"] == target {
				weight = 100
			}
			s.mu.Lock()
			s.routed = appendChange(s.routed, weight)
			s.mu.Unlock()
		}
	}()
}

func (s *scenario) canary() *serinv1.Canary {
	var c serinv1.Canary
	s.g.Expect(st.Client.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: s.name}, &c)).To(Succeed())
	return &c
}

func (s *scenario) phase() serinv1.CanaryPhase { return s.canary().Status.Phase }

// record polls the Canary, and its routing objects when routes is set,
// until ctx ends.
func (s *scenario) record(ctx context.Context, routes bool) {
	for ctx.Err() == nil {
		var c serinv1.Canary
		if err := st.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: s.name}, &c); err == nil {
			var t analysis.Traffic
			routesErr := errNotPolled
			if routes {
				t, routesErr = st.Telemetry.Routes(ctx, &c)
			}
			s.mu.Lock()
			s.phases = appendChange(s.phases, c.Status.Phase)
			s.weights = appendChange(s.weights, c.Status.CanaryWeight)
			if c.Status.Phase == serinv1.CanaryPhaseProgressing {
				s.analysed = appendChange(s.analysed, c.Status.CanaryWeight)
			}
			if routesErr == nil {
				s.routed = appendChange(s.routed, t.CanaryWeight)
				s.matched = s.matched || t.MatchToCanary
			}
			if s.finalised.IsZero() && !s.released.IsZero() && (c.Status.Phase == serinv1.CanaryPhaseSucceeded || c.Status.Phase == serinv1.CanaryPhaseFailed) {
				s.finalised = time.Now()
			}
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
}

// errNotPolled stands for routes that another recorder follows.
var errNotPolled = errors.New("not polled")

func appendChange[T comparable](s []T, v T) []T {
	if n := len(s); n > 0 && s[n-1] == v {
		return s
	}
	return append(s, v)
}

// release sets a new image with behaviour b.
func (s *scenario) release(image string, b stack.Behaviour) {
	s.mu.Lock()
	s.released = time.Now()
	s.mu.Unlock()
	s.g.Expect(st.Release(s.t.Context(), s.ns, s.name, image, b)).To(Succeed())
}

// finish waits for phase and reports the release's wall time against
// floor.
func (s *scenario) finish(phase serinv1.CanaryPhase, floor time.Duration) *serinv1.Canary {
	s.g.Eventually(s.phase, releaseTimeout, poll).Should(Equal(phase))
	s.g.Eventually(func() bool { s.mu.Lock(); defer s.mu.Unlock(); return !s.finalised.IsZero() }, 5*time.Second, poll).Should(BeTrue())
	s.mu.Lock()
	wall := s.finalised.Sub(s.released)
	s.mu.Unlock()
	report.add(s.t.Name(), wall, floor)
	s.t.Logf("%s in %v (floor %v)", phase, wall.Round(100*time.Millisecond), floor)
	return s.canary()
}

// seen is what the recorder saw: status weights, routed weights, status
// weights while Progressing, and whether matching requests were routed to
// the canary.
func (s *scenario) seen() (weights, routed, analysed []int, matched bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.weights), slices.Clone(s.routed), slices.Clone(s.analysed), s.matched
}

// primaryImage is the image the primary runs.
func (s *scenario) primaryImage() string {
	return image(s.g, s.ns, s.name+"-primary")
}

// metric is the last result of the Canary's check name.
func metric(g Gomega, c *serinv1.Canary, name string) serinv1.MetricStatus {
	for _, m := range c.Status.Metrics {
		if m.Name == name {
			return m
		}
	}
	g.Expect(c.Status.Metrics).To(ContainElement(HaveField("Name", name)))
	return serinv1.MetricStatus{}
}

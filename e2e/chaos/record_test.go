//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// snapshot is the part of one stored version of the Canary the suite
// compares.
type snapshot struct {
	at           time.Time
	rv           string
	phase        serinv1.CanaryPhase
	weight       int
	iterations   int
	failedChecks int
	hookErrors   map[string]int // status.webhooks[].errors
	metricErrors map[string]int // status.metrics[].errors + noData
}

// recorder keeps every version of one Canary the API server stored, as
// its watch delivers them (re-established across API server restarts
// without losing any), and what the routing objects routed.
type recorder struct {
	ns, name string

	mu       sync.Mutex
	versions []snapshot
	routed   []int // canary weight in the routing objects, each change
	changed  chan struct{}
	onChange []func(snapshot)
}

// watcher opens watches of one list kind in one namespace for a
// RetryWatcher, which resumes from the last resourceVersion it saw.
type watcher struct {
	list client.ObjectList
	ns   string
}

func (w watcher) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return st.Client.Watch(ctx, w.list.DeepCopyObject().(client.ObjectList), client.InNamespace(w.ns), &client.ListOptions{Raw: &o})
}

// watchFrom lists list in ns and watches it from there, calling fn with
// every object until ctx ends. A RetryWatcher resumes from the last
// resourceVersion it saw; when it gives up (a resourceVersion too old for
// a restarted API server's watch cache), everything is listed again and
// watched from there: only versions stored while nothing could be read
// are missed.
func watchFrom(t *testing.T, ctx context.Context, list client.ObjectList, ns string, fn func(watch.EventType, client.Object)) {
	t.Helper()
	rv, err := listAll(ctx, list, ns, fn)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ctx.Err() == nil {
			rw, err := watchtools.NewRetryWatcherWithContext(ctx, rv, watcher{list: list, ns: ns})
			if err != nil {
				return
			}
			for ev := range rw.ResultChan() {
				if o, ok := ev.Object.(client.Object); ok && (ev.Type == watch.Added || ev.Type == watch.Modified || ev.Type == watch.Deleted) {
					fn(ev.Type, o)
				}
			}
			rw.Stop()
			for ctx.Err() == nil {
				if rv, err = listAll(ctx, list, ns, fn); err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
}

// listAll lists list in ns, calls fn with each item and returns the
// list's resourceVersion.
func listAll(ctx context.Context, list client.ObjectList, ns string, fn func(watch.EventType, client.Object)) (string, error) {
	l := list.DeepCopyObject().(client.ObjectList)
	if err := st.Client.List(ctx, l, client.InNamespace(ns)); err != nil {
		return "", err
	}
	items, err := meta.ExtractList(l)
	if err != nil {
		return "", err
	}
	for _, it := range items {
		if o, ok := it.(client.Object); ok {
			fn(watch.Modified, o)
		}
	}
	return l.GetResourceVersion(), nil
}

// newRecorder records Canary ns/name (which need not exist yet) and, for a
// router provider, its routing. Call it before creating the Canary.
func newRecorder(t *testing.T, ns, name string) *recorder {
	r := &recorder{ns: ns, name: name, changed: make(chan struct{})}
	ctx := t.Context()
	watchFrom(t, ctx, &serinv1.CanaryList{}, ns, func(typ watch.EventType, o client.Object) {
		c, ok := o.(*serinv1.Canary)
		if !ok || c.Name != name || typ == watch.Deleted {
			return
		}
		r.add(c)
	})
	watchFrom(t, ctx, &istiov1.VirtualServiceList{}, ns, func(_ watch.EventType, o client.Object) {
		if o.GetName() != name {
			return
		}
		// The routing as the telemetry source reads it; weights change
		// once per interval, so reading it again on each event misses none.
		var c serinv1.Canary
		if err := st.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &c); err != nil {
			return
		}
		tr, err := st.Telemetry.Routes(ctx, &c)
		if err != nil {
			return
		}
		r.mu.Lock()
		if n := len(r.routed); n == 0 || r.routed[n-1] != int(tr.CanaryWeight) {
			r.routed = append(r.routed, int(tr.CanaryWeight))
		}
		r.mu.Unlock()
	})
	return r
}

func (r *recorder) add(c *serinv1.Canary) {
	s := snapshot{
		at: time.Now(), rv: c.ResourceVersion, phase: c.Status.Phase, weight: c.Status.CanaryWeight,
		iterations: c.Status.Iterations, failedChecks: c.Status.FailedChecks,
		hookErrors: map[string]int{}, metricErrors: map[string]int{},
	}
	for _, h := range c.Status.Webhooks {
		s.hookErrors[h.Name] = h.Errors
	}
	for _, m := range c.Status.Metrics {
		s.metricErrors[m.Name] = m.Errors + m.NoData
	}
	r.mu.Lock()
	r.versions = append(r.versions, s)
	hooks := slices.Clone(r.onChange)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	// In the watch's goroutine, so a fault lands right when a phase is
	// entered.
	for _, h := range hooks {
		h(s)
	}
}

// on calls fn with every version stored from now on.
func (r *recorder) on(fn func(snapshot)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onChange = append(r.onChange, fn)
}

// phases is the sequence of phases, each change.
func (r *recorder) phases() []serinv1.CanaryPhase {
	return changes(r, func(s snapshot) serinv1.CanaryPhase { return s.phase })
}

func (r *recorder) weights() []int { return changes(r, func(s snapshot) int { return s.weight }) }

func (r *recorder) iterations() []int {
	return changes(r, func(s snapshot) int { return s.iterations })
}

func (r *recorder) failedChecks() []int {
	return changes(r, func(s snapshot) int { return s.failedChecks })
}

func (r *recorder) routedWeights() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.routed)
}

func (r *recorder) last() snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.versions) == 0 {
		return snapshot{}
	}
	return r.versions[len(r.versions)-1]
}

// maxOf is the largest value of f over all versions.
func (r *recorder) maxOf(f func(snapshot) int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := 0
	for _, s := range r.versions {
		m = max(m, f(s))
	}
	return m
}

func changes[T comparable](r *recorder, f func(snapshot) T) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []T
	for _, s := range r.versions {
		if v := f(s); len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// waitPhase waits until phase has been entered n times (counting each
// change into it), and returns when it was.
func (r *recorder) waitPhase(ctx context.Context, phase serinv1.CanaryPhase, n int, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		r.mu.Lock()
		seen, prev := 0, serinv1.CanaryPhase("-")
		var at time.Time
		for _, s := range r.versions {
			if s.phase != prev && s.phase == phase {
				seen++
				if seen == n {
					at = s.at
				}
			}
			prev = s.phase
		}
		ch := r.changed
		r.mu.Unlock()
		if seen >= n {
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s/%s: phase %s not entered %d time(s) (phases %v): %w", r.ns, r.name, phase, n, r.phases(), ctx.Err())
		case <-ch:
		}
	}
}

// advanced counts the Canary's Advanced Events by message.
func advanced(ctx context.Context, ns, name string) (map[string]int32, error) {
	var events corev1.EventList
	if err := st.Client.List(ctx, &events, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	out := map[string]int32{}
	for _, e := range events.Items {
		if e.InvolvedObject.Name == name && e.Reason == "Advanced" {
			out[e.Message] += max(e.Count, 1)
		}
	}
	return out, nil
}

// inconsistent checks every stored version against the one before, as
// the watch delivered them (a stale write from a replica that lost its
// Lease would show here): the weight stays, takes the next step of
// stepWeight up to maxWeight, or goes back to 0; the iterations stay, go
// up by one or start again at 0.
func (r *recorder) inconsistent(stepWeight, maxWeight int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var bad []string
	for i := 1; i < len(r.versions); i++ {
		a, b := r.versions[i-1], r.versions[i]
		if b.weight != a.weight && b.weight != 0 && (stepWeight == 0 || b.weight != min(a.weight+stepWeight, maxWeight)) {
			bad = append(bad, fmt.Sprintf("weight %d → %d (resourceVersion %s → %s)", a.weight, b.weight, a.rv, b.rv))
		}
		if b.iterations != a.iterations && b.iterations != 0 && b.iterations != a.iterations+1 {
			bad = append(bad, fmt.Sprintf("iterations %d → %d (resourceVersion %s → %s)", a.iterations, b.iterations, a.rv, b.rv))
		}
	}
	return bad
}

package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/serin-dev/serin/e2e/stack"
)

// profileRollout runs no controller: it measures how fast the local
// cluster itself rolls out N Deployments at once, the part of every
// promotion that no controller can make faster. A blue/green promotion
// asks for more than one such rollout per Canary (the canary scaled up,
// the primary rolled out, the canary scaled down).
const profileRollout = "rollout"

// clusterRollout creates n Deployments, waits until all are available,
// sets a new image on all at once and waits until each has rolled it out.
// Init is the first wait, Promotion the second.
func clusterRollout(ctx context.Context, cfg config, dir string) (r *Result, err error) {
	r = &Result{Profile: cfg.profile, Canaries: cfg.n, Machine: describeMachine()}
	bc, err := openCluster(ctx, cfg, dir, nil)
	if err != nil {
		return nil, err
	}
	defer func() { err = bc.close(cfg.keep, err) }()
	r.ClusterStartSeconds = bc.startSeconds
	env, cl := bc.env, bc.client

	t := newRolloutTracker()
	stopWatch, err := startWatch(ctx, env.Config, cl.Scheme(), &appsv1.Deployment{}, t.handler())
	if err != nil {
		return nil, err
	}
	defer stopWatch()

	n := cfg.n
	logf("creating %d Deployments", n)
	start := time.Now()
	if err := forEach(ctx, n, func(ctx context.Context, i int) error {
		ns := namespaceName(i)
		if err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
		t.mark(stepCreated, ns)
		return cl.Create(ctx, stack.NewDeployment(ns, appName, 1))
	}); err != nil {
		return nil, err
	}
	progress := func() string {
		a, u := t.counts()
		return fmt.Sprintf("%d/%d available, %d/%d rolled out", a, n, u, n)
	}
	if err := waitFor(ctx, "all Deployments to be available", cfg.timeout, progress, func() bool { a, _ := t.counts(); return a >= n }); err != nil {
		return nil, err
	}
	lat, last := t.latencies(stepCreated, stepAvailable)
	r.Init = summarize(lat, last.Sub(start).Seconds(), 0)

	logf("setting a new image on every Deployment")
	split := time.Now()
	if err := release(ctx, cl, n, func(ns string) { t.mark(stepReleased, ns) }); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, "all Deployments to roll out", cfg.timeout, progress, func() bool { _, u := t.counts(); return u >= n }); err != nil {
		return nil, err
	}
	lat, last = t.latencies(stepReleased, stepRolledOut)
	r.Promotion = summarize(lat, last.Sub(split).Seconds(), 0)
	r.ComponentCPUSeconds = componentCPU(env)
	return r, nil
}

// rolloutTracker records when each namespace's Deployment reached each
// step: created, available, released (new image set) and rolledOut.
type rolloutTracker struct {
	mu    sync.Mutex
	steps map[string]map[string]time.Time // step → namespace → first time
}

const (
	stepCreated   = "created"
	stepAvailable = "available"
	stepReleased  = "released"
	stepRolledOut = "rolledOut"
)

func newRolloutTracker() *rolloutTracker {
	return &rolloutTracker{steps: map[string]map[string]time.Time{}}
}

// mark records the first time ns reached step.
func (t *rolloutTracker) mark(step, ns string) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.steps[step] == nil {
		t.steps[step] = map[string]time.Time{}
	}
	if _, ok := t.steps[step][ns]; !ok {
		t.steps[step][ns] = now
	}
}

func (t *rolloutTracker) latencies(from, to string) ([]float64, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return latencies(t.steps[from], t.steps[to])
}

func (t *rolloutTracker) counts() (available, rolledOut int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.steps[stepAvailable]), len(t.steps[stepRolledOut])
}

// observe marks a Deployment whose controller has rolled out its current
// template on all replicas.
func (t *rolloutTracker) observe(obj any) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok || d.Spec.Replicas == nil {
		return
	}
	s := d.Status
	done := s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == *d.Spec.Replicas &&
		s.Replicas == *d.Spec.Replicas && s.AvailableReplicas == *d.Spec.Replicas
	if !done {
		return
	}
	step := stepAvailable
	if d.Spec.Template.Spec.Containers[0].Image == releaseImage {
		step = stepRolledOut
	}
	t.mark(step, d.Namespace)
}

func (t *rolloutTracker) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.observe(obj) },
		UpdateFunc: func(_, obj any) { t.observe(obj) },
	}
}

// printRolloutSummary is the human summary of the rollout profile.
func printRolloutSummary(r *Result) {
	sec := func(s float64) string {
		return (time.Duration(s * float64(time.Second))).Round(100 * time.Millisecond).String()
	}
	fmt.Fprintf(os.Stderr, "\n== the cluster alone: %d Deployments (%d CPUs, load %s)\n", r.Canaries, r.Machine.CPUs, r.Machine.LoadAvgAtStart)
	fmt.Fprintf(os.Stderr, "created:     all available in %s; per Deployment p50 %s p95 %s max %s\n",
		sec(r.Init.AllSeconds), sec(r.Init.P50), sec(r.Init.P95), sec(r.Init.Max))
	fmt.Fprintf(os.Stderr, "new image:   all rolled out in %s; per Deployment p50 %s p95 %s max %s\n",
		sec(r.Promotion.AllSeconds), sec(r.Promotion.P50), sec(r.Promotion.P95), sec(r.Promotion.Max))
}

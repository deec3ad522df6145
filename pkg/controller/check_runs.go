package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/internal/workpool"
)

// maxCheckRun bounds one interval's checks as a whole, whatever its
// webhooks' timeouts and retries add up to.
const maxCheckRun = 30 * time.Minute

// checkRuns runs the checks of an interval (webhooks, metric queries) in a
// workpool instead of the reconcile worker, so that a Canary whose webhooks
// hang holds its own release and no other: the reconcile that asks for the
// checks starts them and returns; the end of the run wakes the Canary, whose
// next reconcile takes the results. At most one run per Canary exists; what
// it is for is its key, so that results are only ever judged in the state
// they were asked in.
type checkRuns struct {
	pool *workpool.Pool
	wake chan event.TypedGenericEvent[reconcile.Request]

	mu   sync.Mutex
	runs map[types.NamespacedName]*checkRun
}

type checkRun struct {
	key    string
	cancel context.CancelFunc
	// Set when the run ended.
	done     bool
	finished time.Time
	results  analysis.CheckResults
	err      error
}

func newCheckRuns(pool *workpool.Pool) *checkRuns {
	return &checkRuns{
		pool: pool,
		wake: make(chan event.TypedGenericEvent[reconcile.Request], 1024),
		runs: map[types.NamespacedName]*checkRun{},
	}
}

// source is the watch through which finished runs wake their Canary.
func (cr *checkRuns) source() source.TypedSource[reconcile.Request] {
	return source.TypedChannel(cr.wake, handler.TypedFuncs[reconcile.Request, reconcile.Request]{
		GenericFunc: func(_ context.Context, e event.TypedGenericEvent[reconcile.Request], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			q.Add(e.Object)
		},
	})
}

// checkKey is what a run's results are valid for: this spec, this revision
// and this point of the release.
func checkKey(c *serinv1.Canary, revision string, req analysis.CheckRequest) string {
	s := c.Status
	return fmt.Sprintf("%s/%d/%s/%s/%d/%d/%d/%s/%+v", c.UID, c.Generation, revision, s.Phase, s.CanaryWeight, s.Iterations, s.FailedChecks, s.LastTransitionTime.UTC().Format(time.RFC3339Nano), req)
}

// take returns the results of the Canary's finished run for key, and
// forgets the run. Results older than maxAge are no observation of now:
// take drops them and reports none.
func (cr *checkRuns) take(name types.NamespacedName, key string, maxAge time.Duration) (analysis.CheckResults, bool, error) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	run := cr.runs[name]
	if run == nil || run.key != key || !run.done {
		return analysis.CheckResults{}, false, nil
	}
	delete(cr.runs, name)
	if time.Since(run.finished) > maxAge {
		return analysis.CheckResults{}, false, nil
	}
	return run.results, true, run.err
}

// start runs check for the Canary unless a run for key is already under
// way or finished. A run for another key is cancelled: its Canary moved on.
// It reports false when the Canary's namespace has too much work queued.
func (cr *checkRuns) start(name types.NamespacedName, key string, check func(context.Context) (analysis.CheckResults, error)) bool {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if run := cr.runs[name]; run != nil {
		if run.key == key {
			return true
		}
		run.cancel()
		delete(cr.runs, name)
	}
	run := &checkRun{key: key}
	ctx, cancel := context.WithCancel(context.Background())
	run.cancel = cancel
	ok := cr.pool.Submit(name.Namespace, func(poolCtx context.Context) {
		defer cancel()
		// The pool's context ends with the process; the run's own with a
		// newer run or the deadline.
		stop := context.AfterFunc(poolCtx, cancel)
		defer stop()
		runCtx, done := context.WithTimeout(ctx, maxCheckRun)
		defer done()
		results, err := check(runCtx)
		cr.finish(poolCtx, name, run, results, err)
	})
	if !ok {
		cancel()
		return false
	}
	cr.runs[name] = run
	return true
}

// finish records a run's results, if it is still the Canary's run, and
// wakes the Canary.
func (cr *checkRuns) finish(ctx context.Context, name types.NamespacedName, run *checkRun, results analysis.CheckResults, err error) {
	cr.mu.Lock()
	current := cr.runs[name] == run
	if current {
		run.done, run.finished, run.results, run.err = true, time.Now(), results, err
	}
	cr.mu.Unlock()
	if !current {
		return
	}
	select {
	case cr.wake <- event.TypedGenericEvent[reconcile.Request]{Object: reconcile.Request{NamespacedName: name}}:
	case <-ctx.Done():
	}
}

// forget cancels and drops the run of a Canary that is gone.
func (cr *checkRuns) forget(name types.NamespacedName) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if run := cr.runs[name]; run != nil {
		run.cancel()
		delete(cr.runs, name)
	}
}

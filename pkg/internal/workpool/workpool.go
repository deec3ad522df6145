// Package workpool runs slow work (webhook calls, metric queries, alert
// deliveries) off the reconcile workers, in a bounded number of goroutines
// shared fairly between tenants: each tenant (a namespace) has its own
// queue, queues take turns, and a tenant may hold only some of the
// goroutines, so one namespace's hanging webhooks cannot delay another
// namespace's work beyond one turn.
package workpool

import (
	"context"
	"fmt"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Limits bound a Pool.
type Limits struct {
	// Workers is how many jobs run at once, across all tenants.
	Workers int
	// PerTenant is how many of them one tenant may run at once.
	PerTenant int
	// QueuePerTenant is how many jobs of one tenant may wait; Submit refuses
	// more.
	QueuePerTenant int
}

// Pool runs submitted jobs. Its zero value is not usable; use New.
type Pool struct {
	limits Limits
	ctx    context.Context

	mu      sync.Mutex
	queues  map[string][]func(context.Context)
	running map[string]int
	// turns are the tenants with waiting jobs, in the order they get a
	// worker.
	turns []string
	busy  int
}

// New returns a Pool whose jobs get ctx (cancelled when the process stops).
func New(ctx context.Context, limits Limits) *Pool {
	limits.Workers = max(limits.Workers, 1)
	limits.PerTenant = min(max(limits.PerTenant, 1), limits.Workers)
	limits.QueuePerTenant = max(limits.QueuePerTenant, 1)
	return &Pool{
		limits:  limits,
		ctx:     ctx,
		queues:  map[string][]func(context.Context){},
		running: map[string]int{},
	}
}

// Submit queues job for tenant. It reports false, and drops the job, when
// the tenant already has QueuePerTenant jobs waiting. A job that panics is
// logged and its worker carries on.
func (p *Pool) Submit(tenant string, job func(context.Context)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queues[tenant]
	if len(q) >= p.limits.QueuePerTenant {
		return false
	}
	if len(q) == 0 {
		p.turns = append(p.turns, tenant)
	}
	p.queues[tenant] = append(q, job)
	p.dispatch()
	return true
}

// dispatch starts waiting jobs while workers are free, taking tenants in
// turn and passing over those at their PerTenant limit. p.mu is held.
func (p *Pool) dispatch() {
	for p.busy < p.limits.Workers {
		i := p.nextTurn()
		if i < 0 {
			return
		}
		tenant := p.turns[i]
		q := p.queues[tenant]
		job := q[0]
		q[0] = nil
		if len(q) == 1 {
			delete(p.queues, tenant)
			p.turns = append(p.turns[:i], p.turns[i+1:]...)
		} else {
			p.queues[tenant] = q[1:]
			// The tenant goes to the back of the line.
			p.turns = append(append(p.turns[:i], p.turns[i+1:]...), tenant)
		}
		p.busy++
		p.running[tenant]++
		go p.run(tenant, job)
	}
}

// nextTurn is the index in p.turns of the first tenant below its PerTenant
// limit, or -1.
func (p *Pool) nextTurn() int {
	for i, tenant := range p.turns {
		if p.running[tenant] < p.limits.PerTenant {
			return i
		}
	}
	return -1
}

func (p *Pool) run(tenant string, job func(context.Context)) {
	defer func() {
		if v := recover(); v != nil {
			log.FromContext(p.ctx).Error(fmt.Errorf("%v", v), "background job panicked", "namespace", tenant)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.busy--
		if p.running[tenant]--; p.running[tenant] == 0 {
			delete(p.running, tenant)
		}
		p.dispatch()
	}()
	job(p.ctx)
}

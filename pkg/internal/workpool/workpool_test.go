package workpool

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// blocker is a job that runs until released, counting how many run at once.
type blocker struct {
	release chan struct{}
	running atomic.Int32
	peak    atomic.Int32
}

func newBlocker() *blocker { return &blocker{release: make(chan struct{})} }

func (b *blocker) job(context.Context) {
	n := b.running.Add(1)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	<-b.release
	b.running.Add(-1)
}

func TestATenantsBlockedJobsLeaveWorkersForOthers(t *testing.T) {
	g := NewWithT(t)
	p := New(context.Background(), Limits{Workers: 4, PerTenant: 2, QueuePerTenant: 100})
	hog := newBlocker()
	defer close(hog.release)
	for range 20 {
		g.Expect(p.Submit("hog", hog.job)).To(BeTrue())
	}

	done := make(chan struct{})
	g.Expect(p.Submit("victim", func(context.Context) { close(done) })).To(BeTrue())

	g.Eventually(done).Should(BeClosed())
	g.Consistently(hog.peak.Load, 100*time.Millisecond).Should(BeEquivalentTo(2))
}

func TestTenantsTakeTurns(t *testing.T) {
	g := NewWithT(t)
	p := New(context.Background(), Limits{Workers: 1, PerTenant: 1, QueuePerTenant: 100})
	gate := newBlocker()
	g.Expect(p.Submit("first", gate.job)).To(BeTrue())
	g.Eventually(gate.running.Load).Should(BeEquivalentTo(1))

	var mu sync.Mutex
	var order []string
	record := func(name string) func(context.Context) {
		return func(context.Context) { mu.Lock(); order = append(order, name); mu.Unlock() }
	}
	for range 3 {
		p.Submit("a", record("a"))
	}
	p.Submit("b", record("b"))
	close(gate.release)

	g.Eventually(func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), order...) }).
		Should(Equal([]string{"a", "b", "a", "a"}))
}

func TestAFullQueueRefusesJobs(t *testing.T) {
	g := NewWithT(t)
	p := New(context.Background(), Limits{Workers: 1, PerTenant: 1, QueuePerTenant: 2})
	b := newBlocker()
	defer close(b.release)
	g.Expect(p.Submit("a", b.job)).To(BeTrue())
	g.Eventually(b.running.Load).Should(BeEquivalentTo(1))
	g.Expect(p.Submit("a", b.job)).To(BeTrue())
	g.Expect(p.Submit("a", b.job)).To(BeTrue())

	g.Expect(p.Submit("a", b.job)).To(BeFalse())
	g.Expect(p.Submit("b", b.job)).To(BeTrue(), "another tenant's queue is its own")
}

func TestAPanickingJobFreesItsWorker(t *testing.T) {
	g := NewWithT(t)
	p := New(context.Background(), Limits{Workers: 1, PerTenant: 1, QueuePerTenant: 10})
	g.Expect(p.Submit("a", func(context.Context) { panic("boom") })).To(BeTrue())
	done := make(chan struct{})
	g.Expect(p.Submit("a", func(context.Context) { close(done) })).To(BeTrue())
	g.Eventually(done).Should(BeClosed())
}

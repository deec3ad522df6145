package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func pendingIDs(c *serinv1.Canary) []string {
	var ids []string
	for _, p := range c.Status.PendingEvents {
		ids = append(ids, p.ID)
	}
	return ids
}

// TestAnnouncements_Lifecycle: a decision's Events are staged with it and
// claimed once; one whose delivery failed is claimed again. A delivered one
// leaves the status with the next write the Canary needs anyway, or, if it
// fed alerts or webhooks, at the next reconcile.
func TestAnnouncements_Lifecycle(t *testing.T) {
	g := NewWithT(t)
	a := newAnnouncements()
	c := &serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", UID: "u1"}}
	ctx := context.Background()
	t0 := time.Unix(100, 0)

	a.stage(ctx, c, []analysis.Event{{Reason: "NewRevision", Message: "m1"}, {Reason: "ChecksFailed", Message: "m2", Warning: true}}, t0)
	g.Expect(c.Status.PendingEvents).To(HaveLen(2))
	g.Expect(c.Status.PendingEvents[1].Type).To(Equal(corev1.EventTypeWarning))
	first, second := c.Status.PendingEvents[0].ID, c.Status.PendingEvents[1].ID
	g.Expect(first).NotTo(Equal(second))

	g.Expect(a.claim(c)).To(HaveLen(2))
	g.Expect(a.claim(c)).To(BeEmpty(), "a delivery in flight is not claimed twice")
	a.done(c, first, delivered)
	a.done(c, second, 0)
	g.Expect(a.claim(c)).To(HaveLen(1), "a failed delivery is tried again")

	a.stage(ctx, c, nil, t0.Add(time.Second))
	g.Expect(pendingIDs(c)).To(Equal([]string{first, second}), "an Event only recorded waits for a write the Canary needs anyway")
	a.dropDelivered(c)
	g.Expect(pendingIDs(c)).To(Equal([]string{second}), "the delivered Event leaves the status with that write")
	a.done(c, second, notified)
	a.stage(ctx, c, nil, t0.Add(2*time.Second))
	g.Expect(c.Status.PendingEvents).To(BeNil(), "an Event whose alerts were sent leaves at once")
}

// TestAnnouncements_RestartAndRecreate: another process (a new
// announcements) claims every pending Event; a Canary recreated under the
// same name starts with nothing delivered.
func TestAnnouncements_RestartAndRecreate(t *testing.T) {
	g := NewWithT(t)
	c := &serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", UID: "u1"}}
	before := newAnnouncements()
	before.stage(context.Background(), c, []analysis.Event{{Reason: "Advanced"}}, time.Unix(1, 0))
	id := c.Status.PendingEvents[0].ID
	before.claim(c)
	before.done(c, id, notified)

	after := newAnnouncements()
	g.Expect(after.claim(c)).To(HaveLen(1), "the successor delivers what the status holds")

	recreated := c.DeepCopy()
	recreated.UID = "u2"
	g.Expect(before.claim(recreated)).To(HaveLen(1))
}

// TestAnnouncements_Bounds: the pending list keeps the newest 32, and a
// long message is cut to the schema's bound on a rune boundary.
func TestAnnouncements_Bounds(t *testing.T) {
	g := NewWithT(t)
	a := newAnnouncements()
	c := &serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", UID: "u1"}}
	events := make([]analysis.Event, 40)
	for i := range events {
		events[i] = analysis.Event{Reason: "Advanced", Message: strings.Repeat("é", 600)}
	}
	a.stage(context.Background(), c, events, time.Unix(1, 0))
	g.Expect(c.Status.PendingEvents).To(HaveLen(maxPendingEvents))
	g.Expect(c.Status.PendingEvents[0].ID).To(HaveSuffix(".8"), "the oldest give way")
	m := c.Status.PendingEvents[0].Message
	g.Expect(len(m)).To(BeNumerically("<=", maxEventMessage))
	g.Expect(m).To(HaveSuffix("…"))
	g.Expect(strings.ToValidUTF8(m, "?")).To(Equal(m))

	long := strings.Repeat("a", 253)
	g.Expect(eventName(long, "18a.1")).To(HaveLen(253))
	g.Expect(eventName(long, "18a.1")).To(HaveSuffix(".18a.1"))
	g.Expect(eventName("app", "18a.1")).To(Equal("app.18a.1"))
}

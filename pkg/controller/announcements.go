package controller

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

const (
	// maxPendingEvents bounds status.pendingEvents (its schema's MaxItems).
	maxPendingEvents = 32
	// maxEventMessage bounds a pending Event's message (its schema's
	// MaxLength).
	maxEventMessage = 1024
	// eventWriteTimeout bounds the creation of one Event.
	eventWriteTimeout = 10 * time.Second
)

// announcements deliver the Events of stored decisions.
//
// A decision's Events are written into the status with the decision
// (status.pendingEvents), so the write that makes the decision happen also
// records that it is to be announced. Once the write succeeded, each is
// recorded as a Kubernetes Event named after its ID and handed to the
// alert providers and event webhooks. A delivered one leaves the status at
// the next write the Canary needs anyway, or, if it fed alerts or
// webhooks, at a write of its own, so that a restart does not send those
// again. A controller that dies between the write and the
// delivery leaves the pending Events to its successor, which delivers
// them: the Event once (a second create of its name is refused), alerts and
// event webhooks at least once.
//
// The Events of a decision no longer go through the event broadcaster,
// which sends them later from a queue that dies with the process and whose
// spam filter drops a Canary's Events past a burst.
type announcements struct {
	mu sync.Mutex
	// delivery is what this process did with each pending Event, by
	// Canary and ID.
	delivery map[types.NamespacedName]*canaryDeliveries
	// wake brings a Canary back once Events that fed alerts or webhooks
	// are delivered, so that they leave its status before a restart could
	// send them again.
	wake chan event.TypedGenericEvent[reconcile.Request]
}

type canaryDeliveries struct {
	uid   types.UID
	state map[string]deliveryState
}

type deliveryState int

const (
	delivering deliveryState = iota + 1
	// delivered: recorded as an Event, and nothing else was to be sent.
	delivered
	// notified: recorded, and its alerts and event webhooks were sent.
	notified
)

func newAnnouncements() *announcements {
	return &announcements{
		delivery: map[types.NamespacedName]*canaryDeliveries{},
		wake:     make(chan event.TypedGenericEvent[reconcile.Request], 1024),
	}
}

// source is the watch through which delivered Events wake their Canary.
func (a *announcements) source() source.TypedSource[reconcile.Request] {
	return source.TypedChannel(a.wake, handler.TypedFuncs[reconcile.Request, reconcile.Request]{
		GenericFunc: func(_ context.Context, e event.TypedGenericEvent[reconcile.Request], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			q.Add(e.Object)
		},
	})
}

// forget drops what is known of a Canary that is gone.
func (a *announcements) forget(name types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.delivery, name)
}

// of is the delivery state of c's pending Events; a.mu is held.
func (a *announcements) of(c *serinv1.Canary) *canaryDeliveries {
	key := client.ObjectKeyFromObject(c)
	d := a.delivery[key]
	if d == nil || d.uid != c.UID {
		d = &canaryDeliveries{uid: c.UID, state: map[string]deliveryState{}}
		a.delivery[key] = d
	}
	return d
}

// stage is called before the status write: it drops from c's pending
// Events those whose alerts and webhooks were sent, and adds the
// decision's, each under a new ID.
func (a *announcements) stage(ctx context.Context, c *serinv1.Canary, decided []analysis.Event, now time.Time) {
	a.drop(c, notified)
	if len(decided) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.of(c)
	pending := slices.Clone(c.Status.PendingEvents)
	for i, e := range decided {
		eventType := corev1.EventTypeNormal
		if e.Warning {
			eventType = corev1.EventTypeWarning
		}
		pending = append(pending, serinv1.PendingEvent{
			// Unique per Canary: decisions of one Canary are serial and
			// their times differ.
			ID:      fmt.Sprintf("%x.%d", now.UnixNano(), i),
			Type:    eventType,
			Reason:  e.Reason,
			Message: truncate(e.Message, maxEventMessage),
		})
	}
	if n := len(pending) - maxPendingEvents; n > 0 {
		// Only a long API outage for Events piles up this many; the
		// oldest give way.
		log.FromContext(ctx).Info("pending Events dropped undelivered", "count", n)
		pending = pending[n:]
	}
	c.Status.PendingEvents = pending
	d.keepOnly(pending)
}

// dropDelivered drops every delivered Event from c's pending ones; it is
// called when c's status is written anyway.
func (a *announcements) dropDelivered(c *serinv1.Canary) {
	a.drop(c, delivered, notified)
}

// drop removes the pending Events of c in one of the given states.
func (a *announcements) drop(c *serinv1.Canary, states ...deliveryState) {
	if len(c.Status.PendingEvents) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.of(c)
	pending := slices.DeleteFunc(slices.Clone(c.Status.PendingEvents), func(p serinv1.PendingEvent) bool {
		return slices.Contains(states, d.state[p.ID])
	})
	if len(pending) == 0 {
		pending = nil
	}
	c.Status.PendingEvents = pending
	d.keepOnly(pending)
}

// keepOnly forgets the state of the Events no longer pending.
func (d *canaryDeliveries) keepOnly(pending []serinv1.PendingEvent) {
	for id := range d.state {
		if !slices.ContainsFunc(pending, func(p serinv1.PendingEvent) bool { return p.ID == id }) {
			delete(d.state, id)
		}
	}
}

// claim marks the pending Events of c that no delivery has taken yet as
// being delivered, and returns them.
func (a *announcements) claim(c *serinv1.Canary) []serinv1.PendingEvent {
	if len(c.Status.PendingEvents) == 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.of(c)
	var out []serinv1.PendingEvent
	for _, p := range c.Status.PendingEvents {
		if d.state[p.ID] == 0 {
			d.state[p.ID] = delivering
			out = append(out, p)
		}
	}
	return out
}

// done records the end of one pending Event's delivery: delivered or
// notified, or (0) to be tried again at the next reconcile.
func (a *announcements) done(c *serinv1.Canary, id string, state deliveryState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.delivery[client.ObjectKeyFromObject(c)]
	if d == nil || d.uid != c.UID {
		return
	}
	if _, tracked := d.state[id]; !tracked {
		return
	}
	if state == 0 {
		delete(d.state, id)
		return
	}
	d.state[id] = state
}

// wakeUp brings the Canary back to drop its delivered Events. It never
// waits: a wake-up that does not fit is left to the next write.
func (a *announcements) wakeUp(name types.NamespacedName) {
	select {
	case a.wake <- event.TypedGenericEvent[reconcile.Request]{Object: reconcile.Request{NamespacedName: name}}:
	default:
	}
}

// announce delivers the pending Events of c, whose status was just stored.
func (r *CanaryReconciler) announce(ctx context.Context, c *serinv1.Canary) {
	claimed := r.announcements.claim(c)
	if len(claimed) == 0 {
		return
	}
	logger := log.FromContext(ctx)
	// One copy, made only for Events that feed notifications, serves all
	// their deliveries: they only read it.
	var snapshot *serinv1.Canary
	key := client.ObjectKeyFromObject(c)
	for _, p := range claimed {
		if err := r.recordEvent(ctx, c, p); err != nil {
			logger.Info("Event not recorded; it stays pending", "reason", p.Reason, "error", err.Error())
			r.announcements.done(c, p.ID, 0)
			continue
		}
		if !r.notifies(c, p.Reason) {
			r.announcements.done(c, p.ID, delivered)
			continue
		}
		if snapshot == nil {
			snapshot = c.DeepCopy()
		}
		// notifies said there is at least one.
		deliveries := r.notifyEvent(ctx, snapshot, p.Type, p.Reason, p.Message)
		var left atomic.Int32
		left.Store(int32(len(deliveries)))
		id := p.ID
		for _, deliver := range deliveries {
			deliver(func() {
				if left.Add(-1) == 0 {
					r.announcements.done(snapshot, id, notified)
					r.announcements.wakeUp(key)
				}
			})
		}
	}
}

// recordEvent creates the Kubernetes Event of a pending Event, named after
// its ID; one that already exists was recorded before a restart.
func (r *CanaryReconciler) recordEvent(ctx context.Context, c *serinv1.Canary, p serinv1.PendingEvent) error {
	ctx, cancel := context.WithTimeout(ctx, eventWriteTimeout)
	defer cancel()
	now := metav1.NewTime(r.Now())
	e := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: eventName(c.Name, p.ID)},
		InvolvedObject: corev1.ObjectReference{
			APIVersion:      serinv1.GroupVersion.String(),
			Kind:            serinv1.CanaryKind,
			Namespace:       c.Namespace,
			Name:            c.Name,
			UID:             c.UID,
			ResourceVersion: c.ResourceVersion,
		},
		Reason:              p.Reason,
		Message:             p.Message,
		Type:                p.Type,
		Source:              corev1.EventSource{Component: FieldManager},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: FieldManager,
	}
	if err := r.Create(ctx, e); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// eventName is the name of a Canary's Event with the given ID: at most 253
// characters, the ID kept whole.
func eventName(canary, id string) string {
	if room := 253 - len(id) - 1; len(canary) > room {
		canary = canary[:room]
	}
	return canary + "." + id
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	s = s[:n-len(mark)]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + mark
}

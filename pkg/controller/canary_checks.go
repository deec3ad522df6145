package controller

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/checks/webhook"
	"github.com/serin-dev/serin/pkg/httpreply"
)

func (r *CanaryReconciler) payload(c *serinv1.Canary, revision string, h serinv1.CanaryWebhook) webhook.Payload {
	return webhook.Payload{
		Name:      c.Name,
		Namespace: c.Namespace,
		Phase:     c.Status.Phase,
		Checksum:  revision,
		Metadata:  h.Metadata,
	}
}

// runChecks calls the webhooks and runs the metric queries that the analysis
// asked for and returns what they observed; pkg/analysis judges it. An
// error is a metric that cannot run as written (metrics.ConfigError).
func (r *CanaryReconciler) runChecks(ctx context.Context, c *serinv1.Canary, revision string, req analysis.CheckRequest) (analysis.CheckResults, error) {
	var res analysis.CheckResults
	for _, h := range c.Spec.Analysis.Webhooks {
		if !req.Wants(h) {
			continue
		}
		res.Webhooks = append(res.Webhooks, webhookObservation(h, r.callWebhook(ctx, c, h, r.payload(c, revision, h))))
	}
	if req.Analysis && len(c.Spec.Analysis.Metrics) > 0 {
		measured, err := r.MetricChecks.Measure(ctx, c, r.provider(c))
		if err != nil {
			return res, err
		}
		for _, m := range measured {
			o := analysis.MetricObservation{Name: m.Name, Value: m.Value, NoData: m.NoData}
			if m.Err != nil {
				o.Err = m.Err.Error()
			}
			res.Metrics = append(res.Metrics, o)
		}
	}
	return res, nil
}

// callWebhook calls h with the credentials of its Secret, read from the
// Canary's own namespace only. A Secret that cannot be read fails the call
// without a request, as an unanswered webhook.
func (r *CanaryReconciler) callWebhook(ctx context.Context, c *serinv1.Canary, h serinv1.CanaryWebhook, p webhook.Payload) webhook.Result {
	var header http.Header
	if h.SecretRef != nil {
		var secret corev1.Secret
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: h.SecretRef.Name}, &secret); err != nil {
			return webhook.Result{Err: fmt.Errorf("webhook %q: reading its Secret %s: %w", h.Name, h.SecretRef.Name, err)}
		}
		var err error
		if header, err = webhook.AuthHeader(secret.Data); err != nil {
			return webhook.Result{Err: fmt.Errorf("webhook %q: Secret %s: %w", h.Name, h.SecretRef.Name, err)}
		}
	}
	return r.Webhooks.Call(ctx, h, p, header)
}

// checksOf returns the results of the checks req asks for, if they are
// ready. Checks that call out run in the background (checkRuns): the first
// call starts them and reports them not ready.
func (r *CanaryReconciler) checksOf(ctx context.Context, c *serinv1.Canary, revision string, req analysis.CheckRequest) (analysis.CheckResults, bool, error) {
	if !callsOut(c, req) {
		results, err := r.runChecks(ctx, c, revision, req)
		return results, true, err
	}
	name := client.ObjectKeyFromObject(c)
	key := checkKey(c, revision, req)
	if results, ready, err := r.checks.take(name, key, analysisInterval(c)); ready {
		return results, true, err
	}
	canary := c.DeepCopy()
	if !r.checks.start(name, key, func(ctx context.Context) (analysis.CheckResults, error) {
		return r.runChecks(ctx, canary, revision, req)
	}) {
		log.FromContext(ctx).Info("checks not started: too many are queued in the namespace")
	}
	return analysis.CheckResults{}, false, nil
}

// callsOut reports whether the checks req asks for call anything: a
// request for no webhook and no metric needs no run in the background.
func callsOut(c *serinv1.Canary, req analysis.CheckRequest) bool {
	if req.Analysis && len(c.Spec.Analysis.Metrics) > 0 {
		return true
	}
	for _, h := range c.Spec.Analysis.Webhooks {
		if req.Wants(h) {
			return true
		}
	}
	return false
}

// webhookObservation turns a call's result into what the analysis judges:
// the status code of the answer, or why there was none.
func webhookObservation(h serinv1.CanaryWebhook, out webhook.Result) analysis.WebhookObservation {
	o := analysis.WebhookObservation{Name: h.Name, Type: analysis.HookType(h), StatusCode: out.StatusCode}
	if out.Err != nil {
		o.Err = out.Err.Error()
	}
	o.Body = httpreply.Excerpt(out.Body)
	return o
}

// maxNotification bounds one notification, retries included, so that a
// namespace's queue keeps moving.
const maxNotification = time.Minute

// runPostRollout calls the post-rollout webhooks in the background; their
// outcome is only logged, as the release has already ended.
func (r *CanaryReconciler) runPostRollout(ctx context.Context, c *serinv1.Canary, revision string) {
	logger := log.FromContext(ctx)
	var snapshot *serinv1.Canary
	for _, h := range c.Spec.Analysis.Webhooks {
		if analysis.HookType(h) != serinv1.PostRolloutHook {
			continue
		}
		if snapshot == nil {
			snapshot = c.DeepCopy()
		}
		p := r.payload(c, revision, h)
		r.notify(snapshot, "post_rollout_webhook", nil, func(ctx context.Context, c *serinv1.Canary) {
			if out := r.callWebhook(ctx, c, h, p); !out.OK() {
				logger.Info("post-rollout webhook failed", "webhook", h.Name, "error", out.Err.Error())
			}
		})
	}
}

// eventf records a Kubernetes Event of something that is not a stored
// decision (a problem that recurs while it lasts, the revert on deletion),
// and queues its delivery to the Canary's event webhooks and alert
// providers. The Events of decisions go through announce.
func (r *CanaryReconciler) eventf(ctx context.Context, c *serinv1.Canary, eventType, reason, format string, args ...any) {
	message := fmt.Sprintf(format, args...)
	r.Eventf(c, nil, eventType, reason, reason, "%s", message)
	if !r.notifies(c, reason) {
		return
	}
	for _, deliver := range r.notifyEvent(ctx, c.DeepCopy(), eventType, reason, message) {
		deliver(nil)
	}
}

// notifies reports whether an Event of this reason reaches an alert
// provider or an event webhook of c.
func (r *CanaryReconciler) notifies(c *serinv1.Canary, reason string) bool {
	if _, ok := r.alertSeverity(c, reason); ok {
		return true
	}
	return slices.ContainsFunc(c.Spec.Analysis.Webhooks, func(h serinv1.CanaryWebhook) bool {
		return analysis.HookType(h) == serinv1.EventHook
	})
}

// delivery queues one notification; done, when set, is called once it was
// sent or dropped.
type delivery func(done func())

// notifyEvent is the deliveries of an Event to the alert providers and
// event webhooks of snapshot, a copy of the Canary that nothing changes any
// more.
func (r *CanaryReconciler) notifyEvent(ctx context.Context, snapshot *serinv1.Canary, eventType, reason, message string) []delivery {
	logger := log.FromContext(ctx)
	var out []delivery
	if m, ok := r.alertMessage(snapshot, reason, message); ok {
		out = append(out, func(done func()) {
			r.notify(snapshot, "alert", done, func(ctx context.Context, c *serinv1.Canary) { r.alert(log.IntoContext(ctx, logger), c, m) })
		})
	}
	for _, h := range snapshot.Spec.Analysis.Webhooks {
		if analysis.HookType(h) != serinv1.EventHook {
			continue
		}
		p := webhook.EventPayload(snapshot.Name, snapshot.Namespace, snapshot.Status.Phase, snapshot.Status.LastAppliedSpec, eventType, message, h.Metadata)
		out = append(out, func(done func()) {
			r.notify(snapshot, "event_webhook", done, func(ctx context.Context, c *serinv1.Canary) {
				if out := r.callWebhook(ctx, c, h, p); !out.OK() {
					logger.Info("event webhook failed", "webhook", h.Name, "error", out.Err.Error())
				}
			})
		})
	}
	return out
}

// notify queues a delivery in the Canary's namespace's share of the
// notification pool: a slow receiver delays only its own namespace's
// notifications, and what does not fit is dropped and counted. snapshot is
// a copy of the Canary that nothing changes any more; deliver gets it.
// done, when set, is called after the delivery, or at once when it is
// dropped.
func (r *CanaryReconciler) notify(snapshot *serinv1.Canary, kind string, done func(), deliver func(context.Context, *serinv1.Canary)) {
	if !r.notifications.Submit(snapshot.Namespace, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, maxNotification)
		defer cancel()
		deliver(ctx, snapshot)
		if done != nil {
			done()
		}
	}) {
		notificationsDropped.WithLabelValues(kind).Inc()
		if done != nil {
			done()
		}
	}
}

func metaNow(t time.Time) metav1.Time { return metav1.NewTime(t) }

package controller

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/checks/webhook"
	"github.com/serin-dev/serin/pkg/internal/httpreply"
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
		res.Webhooks = append(res.Webhooks, webhookObservation(h, r.Webhooks.Call(ctx, h, r.payload(c, revision, h))))
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

// runPostRollout calls the post-rollout webhooks; their outcome is only
// logged, as the release has already ended.
func (r *CanaryReconciler) runPostRollout(ctx context.Context, c *serinv1.Canary, revision string) {
	logger := log.FromContext(ctx)
	for _, h := range c.Spec.Analysis.Webhooks {
		if analysis.HookType(h) != serinv1.PostRolloutHook {
			continue
		}
		if out := r.Webhooks.Call(ctx, h, r.payload(c, revision, h)); !out.OK() {
			logger.Info("post-rollout webhook failed", "webhook", h.Name, "error", out.Err.Error())
		}
	}
}

// eventf records a Kubernetes Event and sends it to the Canary's event
// webhooks.
func (r *CanaryReconciler) eventf(ctx context.Context, c *serinv1.Canary, eventType, reason, format string, args ...any) {
	message := fmt.Sprintf(format, args...)
	r.Eventf(c, nil, eventType, reason, reason, "%s", message)
	r.alert(ctx, c, reason, message)
	for _, h := range c.Spec.Analysis.Webhooks {
		if analysis.HookType(h) != serinv1.EventHook {
			continue
		}
		p := webhook.EventPayload(c.Name, c.Namespace, c.Status.Phase, c.Status.LastAppliedSpec, eventType, message, h.Metadata)
		if out := r.Webhooks.Call(ctx, h, p); !out.OK() {
			log.FromContext(ctx).Info("event webhook failed", "webhook", h.Name, "error", out.Err.Error())
		}
	}
}

func metaNow(t time.Time) metav1.Time { return metav1.NewTime(t) }

package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/checks/webhook"
)

// hookType is the effective type of a webhook; an empty type is rollout.
func hookType(h serinv1.CanaryWebhook) serinv1.HookType {
	if h.Type == "" {
		return serinv1.RolloutHook
	}
	return h.Type
}

func (r *CanaryReconciler) payload(c *serinv1.Canary, revision string, h serinv1.CanaryWebhook) webhook.Payload {
	return webhook.Payload{
		Name:      c.Name,
		Namespace: c.Namespace,
		Phase:     c.Status.Phase,
		Checksum:  revision,
		Metadata:  h.Metadata,
	}
}

// runChecks calls the webhooks and runs the metric checks that the analysis
// asked for and reports their outcomes. An error is a metric that cannot run
// as written (metrics.ConfigError).
func (r *CanaryReconciler) runChecks(ctx context.Context, c *serinv1.Canary, revision string, req analysis.CheckRequest) (analysis.CheckResults, error) {
	logger := log.FromContext(ctx)
	res := analysis.CheckResults{GateOpen: true}
	for _, h := range c.Spec.Analysis.Webhooks {
		t := hookType(h)
		wanted := (req.Gate != "" && t == req.Gate) ||
			(req.Rollback && t == serinv1.RollbackHook) ||
			(req.PreRollout && t == serinv1.PreRolloutHook) ||
			(req.Analysis && t == serinv1.RolloutHook)
		if !wanted {
			continue
		}
		out := r.Webhooks.Call(ctx, h, r.payload(c, revision, h))
		switch t {
		case serinv1.RollbackHook:
			if out.OK() {
				res.RollbackRequested = true
			}
		case serinv1.ConfirmRolloutHook, serinv1.ConfirmTrafficIncreaseHook, serinv1.ConfirmPromotionHook:
			if !out.OK() {
				res.GateOpen = false
				logger.Info("gate closed", "webhook", h.Name, "type", t, "reason", out.Err.Error())
			}
		default:
			if !out.OK() {
				res.Failures = append(res.Failures, fmt.Sprintf("%s webhook %s: %v", t, h.Name, out.Err))
			}
		}
	}
	if req.Analysis && len(c.Spec.Analysis.Metrics) > 0 {
		out, err := r.MetricChecks.Run(ctx, c, r.provider(c), r.Now())
		if err != nil {
			return res, err
		}
		res.Metrics = out.Metrics
		res.Failures = append(res.Failures, out.Failures...)
		for _, m := range out.Metrics {
			eventType := corev1.EventTypeNormal
			if m.Verdict != serinv1.MetricPassed {
				eventType = corev1.EventTypeWarning
			}
			r.eventf(ctx, c, eventType, "Metric"+string(m.Verdict), "metric %s: %s", m.Name, m.Message)
		}
	}
	return res, nil
}

// runPostRollout calls the post-rollout webhooks; their outcome is only
// logged, as the release has already ended.
func (r *CanaryReconciler) runPostRollout(ctx context.Context, c *serinv1.Canary, revision string) {
	logger := log.FromContext(ctx)
	for _, h := range c.Spec.Analysis.Webhooks {
		if hookType(h) != serinv1.PostRolloutHook {
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
		if hookType(h) != serinv1.EventHook {
			continue
		}
		p := webhook.EventPayload(c.Name, c.Namespace, c.Status.Phase, c.Status.LastAppliedSpec, eventType, message, h.Metadata)
		if out := r.Webhooks.Call(ctx, h, p); !out.OK() {
			log.FromContext(ctx).Info("event webhook failed", "webhook", h.Name, "error", out.Err.Error())
		}
	}
}

func metaNow(t time.Time) metav1.Time { return metav1.NewTime(t) }

package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/serin-dev/serin/pkg/alerts"
	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// alertSeverities are the release events that reach alert providers, with
// their severity; other events (each step, each check) would be noise in a
// chat channel.
var alertSeverities = map[string]serinv1.AlertSeverity{
	analysis.ReasonNewRevision:        alerts.SeverityInfo,
	analysis.ReasonSkippedAnalysis:    alerts.SeverityInfo,
	analysis.ReasonWaitingApproval:    alerts.SeverityInfo,
	analysis.ReasonWaitingPromotion:   alerts.SeverityInfo,
	analysis.ReasonSucceeded:          alerts.SeverityInfo,
	analysis.ReasonChecksFailed:       alerts.SeverityWarn,
	analysis.ReasonRolledBack:         alerts.SeverityError,
	analysis.ReasonDeadlineExceeded:   alerts.SeverityError,
	analysis.ReasonOperationRefused:   alerts.SeverityWarn,
	analysis.ReasonRevertedToPromoted: alerts.SeverityInfo,
}

// Alerting is where release events go besides Kubernetes Events.
type Alerting struct {
	// Default, when set, receives the events of every Canary at or above
	// DefaultSeverity, in addition to the Canary's own analysis.alerts.
	Default         *alerts.Config
	DefaultSeverity serinv1.AlertSeverity
	// Cluster names this cluster in every message.
	Cluster string
}

// alertSeverity is the severity of a release event, if the event is one
// that alerts and anything would receive it.
func (r *CanaryReconciler) alertSeverity(c *serinv1.Canary, reason string) (serinv1.AlertSeverity, bool) {
	severity, ok := alertSeverities[reason]
	return severity, ok && (len(c.Spec.Analysis.Alerts) > 0 || r.Alerting.Default != nil)
}

// alertMessage is the alert for a release event, if the event is one that
// alerts and anything would receive it.
func (r *CanaryReconciler) alertMessage(c *serinv1.Canary, reason, message string) (alerts.Message, bool) {
	severity, ok := r.alertSeverity(c, reason)
	if !ok {
		return alerts.Message{}, false
	}
	m := alerts.Message{
		Canary:    c.Name,
		Namespace: c.Namespace,
		Phase:     c.Status.Phase,
		Severity:  severity,
		Text:      message,
		Metric:    failedMetric(c),
		Cluster:   r.Alerting.Cluster,
		Fields: []alerts.Field{
			{Name: "Target", Value: c.Spec.TargetRef.Kind + "/" + c.Spec.TargetRef.Name},
			{Name: "Weight", Value: fmt.Sprintf("%d%%", c.Status.CanaryWeight)},
			{Name: "Failed checks", Value: fmt.Sprintf("%d", c.Status.FailedChecks)},
		},
	}
	if m.Phase == "" {
		m.Phase = serinv1.CanaryPhaseInitializing
	}
	return m, true
}

// alert sends m to the Canary's alert providers and the controller-wide
// default. A failed delivery is logged and recorded as an Event; it never
// holds the release.
func (r *CanaryReconciler) alert(ctx context.Context, c *serinv1.Canary, m alerts.Message) {
	var errs []string
	for _, a := range c.Spec.Analysis.Alerts {
		if !alerts.Allowed(a.Severity, m.Severity) {
			continue
		}
		if err := r.sendAlert(ctx, c, a, m); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", a.Name, err))
		}
	}
	if d := r.Alerting.Default; d != nil && alerts.Allowed(r.Alerting.DefaultSeverity, m.Severity) {
		if err := notify(ctx, *d, m); err != nil {
			errs = append(errs, fmt.Sprintf("default alert provider: %v", err))
		}
	}
	if len(errs) > 0 {
		log.FromContext(ctx).Info("alerts not delivered", "errors", errs)
		r.Eventf(c, nil, corev1.EventTypeWarning, serinv1.AlertFailedReason, serinv1.AlertFailedReason, "alert not delivered: %s", strings.Join(errs, "; "))
	}
}

// sendAlert resolves one analysis.alerts entry and sends m through it.
func (r *CanaryReconciler) sendAlert(ctx context.Context, c *serinv1.Canary, a serinv1.CanaryAlert, m alerts.Message) error {
	ns := a.ProviderRef.Namespace
	if ns == "" {
		ns = c.Namespace
	}
	if err := r.Refs.Allows(c.Namespace, serinv1.AlertProviderKind, ns, a.ProviderRef.Name); err != nil {
		return err
	}
	var p serinv1.AlertProvider
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.ProviderRef.Name}, &p); err != nil {
		return fmt.Errorf("reading AlertProvider %s/%s: %w", ns, a.ProviderRef.Name, err)
	}
	var secret map[string][]byte
	if p.Spec.SecretRef != nil {
		var s corev1.Secret
		// Secrets stay out of the cache (ClientOptions).
		if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: p.Spec.SecretRef.Name}, &s); err != nil {
			return fmt.Errorf("reading the Secret of AlertProvider %s/%s: %w", ns, p.Name, err)
		}
		secret = s.Data
	}
	cfg, err := alerts.ConfigFrom(&p, secret)
	if err != nil {
		return err
	}
	return notify(ctx, cfg, m)
}

func notify(ctx context.Context, cfg alerts.Config, m alerts.Message) error {
	n, err := alerts.New(cfg)
	if err != nil {
		return err
	}
	return n.Notify(ctx, m)
}

// failedMetric is the first metric whose last check failed, with its value
// and the bound it missed.
func failedMetric(c *serinv1.Canary) *alerts.FailedMetric {
	for _, s := range c.Status.Metrics {
		if s.Verdict != serinv1.MetricFailed || s.Value == nil {
			continue
		}
		f := &alerts.FailedMetric{Name: s.Name, Value: *s.Value}
		for _, m := range c.Spec.Analysis.Metrics {
			if m.Name == s.Name {
				f.Threshold = m.Bounds().String()
			}
		}
		return f
	}
	return nil
}

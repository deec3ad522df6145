package analysis

import (
	"fmt"
	"strings"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// HookType is the effective type of a webhook; an empty type is rollout.
func HookType(h serinv1.CanaryWebhook) serinv1.HookType {
	if h.Type == "" {
		return serinv1.RolloutHook
	}
	return h.Type
}

// Wants reports whether the request asks for webhook h to be called.
func (r CheckRequest) Wants(h serinv1.CanaryWebhook) bool {
	t := HookType(h)
	return (r.Gate != "" && t == r.Gate) ||
		(r.Rollback && t == serinv1.RollbackHook) ||
		(r.PreRollout && t == serinv1.PreRolloutHook) ||
		(r.Analysis && t == serinv1.RolloutHook)
}

// verdict is the judgement of one step's checks.
type verdict struct {
	gateOpen bool
	// rollback: a rollback webhook accepted the call.
	rollback bool
	// failures has one line per failed check; each counts.
	failures []string
	// inconclusive names the checks without a verdict this interval.
	inconclusive []string
	// outcomes lists each check's outcome, for the history.
	outcomes []string
	// invalid is a metric that cannot be judged as written.
	invalid error
}

// judge judges what the checks of req observed. It records each metric's
// and each pre-rollout and rollout webhook's outcome in the next status.
// A check that was asked for and has no observation has no verdict.
func (d *decider) judge(req CheckRequest, res CheckResults) verdict {
	v := verdict{gateOpen: true}
	a := d.in.Spec.Analysis
	for _, h := range a.Webhooks {
		if !req.Wants(h) {
			continue
		}
		obs := WebhookObservation{Name: h.Name, Type: HookType(h), Err: "not called"}
		for _, o := range res.Webhooks {
			if o.Name == h.Name {
				obs = o
			}
		}
		switch t := HookType(h); t {
		case serinv1.ConfirmRolloutHook, serinv1.ConfirmTrafficIncreaseHook, serinv1.ConfirmPromotionHook:
			// A gate that does not answer stays closed; gates never
			// count as failed checks.
			if !obs.OK() {
				v.gateOpen = false
				v.outcomes = append(v.outcomes, h.Name+"=closed")
			} else {
				v.outcomes = append(v.outcomes, h.Name+"=open")
			}
		case serinv1.RollbackHook:
			if obs.OK() {
				v.rollback = true
				v.outcomes = append(v.outcomes, h.Name+"=rollback")
			}
		default:
			st, out := judgeWebhook(obs, webhookStatus(d.next.Webhooks, h.Name), d.errorLimit(nil),
				serinv1.WebhookStatus{Name: h.Name, Time: d.now()})
			d.next.Webhooks = setWebhookStatus(d.next.Webhooks, st)
			v.add(out, fmt.Sprintf("%s webhook %s: %s", t, h.Name, excerpt(st.Message, obs.Body)), h.Name, webhookOutcome(st))
		}
	}
	if !req.Analysis || len(a.Metrics) == 0 {
		return v
	}
	metrics := make([]serinv1.MetricStatus, 0, len(a.Metrics))
	for _, m := range a.Metrics {
		obs := MetricObservation{Name: m.Name, Err: "not measured"}
		for _, o := range res.Metrics {
			if o.Name == m.Name {
				obs = o
			}
		}
		st, out, err := judgeMetric(m, obs, metricStatus(d.next.Metrics, m.Name), d.errorLimit(&m),
			serinv1.MetricStatus{Name: m.Name, Time: d.now()})
		if err != nil && v.invalid == nil {
			v.invalid = fmt.Errorf("metric %s: %w", m.Name, err)
		}
		metrics = append(metrics, st)
		v.add(out, fmt.Sprintf("metric %s: %s", m.Name, st.Message), m.Name, metricOutcome(st))
		if st.Verdict == serinv1.MetricPassed {
			d.event("Metric"+string(st.Verdict), "metric %s: %s", m.Name, st.Message)
		} else {
			d.warn("Metric"+string(st.Verdict), "metric %s: %s", m.Name, st.Message)
		}
	}
	d.next.Metrics = metrics
	return v
}

func (v *verdict) add(out outcome, line, name, short string) {
	switch out {
	case failedCheck:
		v.failures = append(v.failures, line)
	case inconclusive:
		v.inconclusive = append(v.inconclusive, name)
	}
	v.outcomes = append(v.outcomes, name+"="+short)
}

// errorLimit is the consecutive error limit of metric m, or of the
// webhooks when m is nil.
func (d *decider) errorLimit(m *serinv1.CanaryMetric) int {
	if m != nil && m.ConsecutiveErrorLimit != nil {
		return *m.ConsecutiveErrorLimit
	}
	if l := d.in.Spec.Analysis.ConsecutiveErrorLimit; l != nil {
		return *l
	}
	if d.in.ErrorLimit > 0 {
		return d.in.ErrorLimit
	}
	return DefaultErrorLimit
}

func metricStatus(list []serinv1.MetricStatus, name string) *serinv1.MetricStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func webhookStatus(list []serinv1.WebhookStatus, name string) *serinv1.WebhookStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func setWebhookStatus(list []serinv1.WebhookStatus, st serinv1.WebhookStatus) []serinv1.WebhookStatus {
	out := make([]serinv1.WebhookStatus, 0, len(list)+1)
	for _, s := range list {
		if s.Name != st.Name {
			out = append(out, s)
		}
	}
	return append(out, st)
}

func metricOutcome(st serinv1.MetricStatus) string {
	switch st.Verdict {
	case serinv1.MetricNoData:
		return "no-data"
	case serinv1.MetricError:
		return "error"
	}
	if st.Value == nil {
		return strings.ToLower(string(st.Verdict))
	}
	s := formatValue(*st.Value)
	if st.Verdict == serinv1.MetricFailed {
		s += "(failed)"
	}
	return s
}

func webhookOutcome(st serinv1.WebhookStatus) string {
	if st.Verdict == serinv1.MetricError {
		return "no-answer"
	}
	return fmt.Sprint(st.StatusCode)
}

// maxBodyExcerpt is how much of a webhook's answer a message quotes.
const maxBodyExcerpt = 200

// excerpt appends the start of a webhook's answer to a message, unless the
// message already quotes it.
func excerpt(message, body string) string {
	body = strings.TrimSpace(body)
	if body == "" || strings.Contains(message, body) {
		return message
	}
	if len(body) > maxBodyExcerpt {
		body = body[:maxBodyExcerpt] + "…"
	}
	return message + ": " + body
}

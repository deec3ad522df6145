// Package alerts sends release notifications to chat services and webhooks.
// A Notifier posts a Message in the format of one service: Slack, Microsoft
// Teams, Discord, Rocket.Chat, Google Chat, a generic JSON webhook or a
// CloudEvents receiver. Each call is bounded in time and in how much of the
// response it reads, and its errors never quote the webhook URL or token,
// which are secrets for most of these services.
package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// Notifier sends release notifications to one provider.
type Notifier interface {
	// Notify posts m once; retrying is left to the caller.
	Notify(ctx context.Context, m Message) error
}

// The severities of an event and the thresholds of a Canary's alerts.
const (
	SeverityInfo  v1beta1.AlertSeverity = "info"
	SeverityWarn  v1beta1.AlertSeverity = "warn"
	SeverityError v1beta1.AlertSeverity = "error"
)

// severityRank orders severities; the empty severity is info.
var severityRank = map[v1beta1.AlertSeverity]int{"": 0, SeverityInfo: 0, SeverityWarn: 1, SeverityError: 2}

// Allowed reports whether an alert whose lowest severity is alert receives
// an event of severity event: info receives everything, warn receives warn
// and error, error only error. Unknown values err on the side of sending:
// an unknown alert severity counts as info, an unknown event severity as
// error.
func Allowed(alert, event v1beta1.AlertSeverity) bool {
	e, ok := severityRank[event]
	if !ok {
		e = severityRank[SeverityError]
	}
	return e >= severityRank[alert] // an unknown alert severity ranks 0
}

// Message is one release event, the same for every provider.
type Message struct {
	Canary    string                `json:"canary"`
	Namespace string                `json:"namespace"`
	Phase     v1beta1.CanaryPhase   `json:"phase"`
	Severity  v1beta1.AlertSeverity `json:"severity"`
	// Text says what happened, for humans.
	Text string `json:"text"`
	// Metric is the check that failed, if one did.
	Metric *FailedMetric `json:"metric,omitempty"`
	// Cluster names the cluster, so that several clusters can share a channel.
	Cluster string `json:"cluster,omitempty"`
	// Fields are extra details (revision, weight...), shown in this order.
	Fields []Field `json:"fields,omitempty"`
}

// FailedMetric is a metric check that failed and what it measured.
type FailedMetric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	// Threshold describes the bound that was missed, e.g. ">= 99".
	Threshold string `json:"threshold,omitempty"`
}

// MarshalJSON writes a non-finite value (NaN is how a query without data
// may come back) as null: encoding/json refuses it, which would lose the
// whole alert.
func (f FailedMetric) MarshalJSON() ([]byte, error) {
	type plain struct {
		Name      string   `json:"name"`
		Value     *float64 `json:"value"`
		Threshold string   `json:"threshold,omitempty"`
	}
	p := plain{Name: f.Name, Threshold: f.Threshold}
	if !math.IsNaN(f.Value) && !math.IsInf(f.Value, 0) {
		p.Value = &f.Value
	}
	return json.Marshal(p)
}

// String is the metric as chat services show it.
func (f FailedMetric) String() string {
	s := f.Name + ": " + strconv.FormatFloat(f.Value, 'g', 6, 64)
	if f.Threshold != "" {
		s += " (threshold " + f.Threshold + ")"
	}
	return s
}

// Field is an extra detail of a Message.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// validate refuses a message the payloads cannot describe.
func (m Message) validate() error {
	switch {
	case m.Canary == "":
		return errors.New("message has no canary name")
	case m.Namespace == "":
		return errors.New("message has no namespace")
	case m.Phase == "":
		return errors.New("message has no phase")
	}
	return nil
}

// title is the one-line headline chat services show.
func (m Message) title() string {
	return fmt.Sprintf("Canary %s/%s: %s", m.Namespace, m.Canary, m.Phase)
}

// fact is one titled value of a chat message.
type fact struct{ title, value string }

// facts lists what every chat service shows, in the same order.
func (m Message) facts() []fact {
	fs := []fact{{"Canary", m.Canary}, {"Namespace", m.Namespace}, {"Phase", string(m.Phase)}}
	if m.Cluster != "" {
		fs = append(fs, fact{"Cluster", m.Cluster})
	}
	if m.Metric != nil {
		fs = append(fs, fact{"Metric", m.Metric.String()})
	}
	for _, f := range m.Fields {
		fs = append(fs, fact{f.Name, f.Value})
	}
	return fs
}

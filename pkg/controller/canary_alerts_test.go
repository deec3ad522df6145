package controller_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/serin-dev/serin/pkg/alerts"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// alertReceiver records the alert messages posted to it, as a generic
// webhook or Slack would receive them.
type alertReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	messages []alerts.Message
	slack    []map[string]any
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	a := &alertReceiver{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		switch r.URL.Path {
		case "/generic":
			var m alerts.Message
			if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			a.messages = append(a.messages, m)
		case "/slack":
			var m map[string]any
			if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			a.slack = append(a.slack, m)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *alertReceiver) received() ([]alerts.Message, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.messages), len(a.slack)
}

// TestCanaryReconciler_Alerts sends the release events of a rolled-back
// release to a generic webhook (warn and above) and to Slack through an
// AlertProvider whose address is in a Secret (everything).
func TestCanaryReconciler_Alerts(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "alerted"
	receiver := newAlertReceiver(t)
	hooks := newHookServer(t, 500)
	create(t,
		&serinv1.AlertProvider{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ops"},
			Spec:       serinv1.AlertProviderSpec{Type: string(alerts.TypeGeneric), Address: receiver.URL + "/generic"},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "slack-url"},
			StringData: map[string]string{"address": receiver.URL + "/slack"},
		},
		&serinv1.AlertProvider{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team"},
			Spec:       serinv1.AlertProviderSpec{Type: string(alerts.TypeSlack), Channel: "releases", SecretRef: &corev1.LocalObjectReference{Name: "slack-url"}},
		},
	)
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "smoke", Type: serinv1.PreRolloutHook, URL: hooks.URL + "/smoke"}}
		c.Spec.Analysis.Alerts = []serinv1.CanaryAlert{
			{Name: "on-call", Severity: alerts.SeverityWarn, ProviderRef: serinv1.CrossNamespaceObjectReference{Name: "ops"}},
			{Name: "team", ProviderRef: serinv1.CrossNamespaceObjectReference{Name: "team"}},
		}
	})

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))
	g.Eventually(func() serinv1.AlertSeverity {
		m, _ := receiver.received()
		if len(m) == 0 {
			return ""
		}
		return m[len(m)-1].Severity
	}, release, poll).Should(Equal(alerts.SeverityError))

	// The Slack entry gets each event right after the generic one.
	g.Eventually(func() int {
		generic, slackCount := receiver.received()
		return slackCount - len(generic)
	}, eventWait, poll).Should(Equal(1), "the info entry also gets the new-revision event")
	generic, _ := receiver.received()
	var severities []serinv1.AlertSeverity
	for _, m := range generic {
		g.Expect(m.Canary).To(Equal(name))
		g.Expect(m.Namespace).To(Equal(ns))
		severities = append(severities, m.Severity)
	}
	// Two failed pre-rollout checks (warn), then the rollback (error); the
	// info events (new revision) are below this entry's severity.
	g.Expect(severities).To(Equal([]serinv1.AlertSeverity{alerts.SeverityWarn, alerts.SeverityWarn, alerts.SeverityError}))
	last := generic[len(generic)-1]
	g.Expect(last.Phase).To(Equal(serinv1.CanaryPhaseFailed))
	g.Expect(last.Text).To(ContainSubstring("Rolling back"))
	g.Expect(events(g, ns, name, serinv1.AlertFailedReason)).To(BeEmpty())
}

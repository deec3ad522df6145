package alerts

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// request is what a test receiver got.
type request struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
}

// receiver answers every request with status and hands it to the test.
func receiver(t *testing.T, status int) (*httptest.Server, <-chan request) {
	t.Helper()
	got := make(chan request, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// notify sends m through a Notifier for cfg and returns the one request
// the receiver got, decoded into a generic JSON document.
func notify(t *testing.T, cfg Config, path string, m Message) (request, map[string]any) {
	t.Helper()
	g := NewWithT(t)
	srv, got := receiver(t, http.StatusOK)
	cfg.Address = srv.URL + path
	n, err := New(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n.Notify(context.Background(), m)).To(Succeed())
	var r request
	g.Expect(got).To(Receive(&r))
	g.Expect(r.method).To(Equal(http.MethodPost))
	var doc map[string]any
	g.Expect(json.Unmarshal(r.body, &doc)).To(Succeed(), string(r.body))
	return r, doc
}

// failedMessage is a rollback after a failed metric, with every field set.
func failedMessage() Message {
	return Message{
		Canary:    "podinfo",
		Namespace: "test",
		Phase:     v1beta1.CanaryPhaseFailed,
		Severity:  SeverityError,
		Text:      "Rolling back podinfo.test: success rate 92.5% < 99% & falling",
		Metric:    &FailedMetric{Name: "request-success-rate", Value: 92.5, Threshold: ">= 99"},
		Cluster:   "prod-eu-1",
		Fields:    []Field{{"Revision", "7d9f8c"}, {"Weight", "30"}},
	}
}

// path walks a decoded JSON document by keys and indexes.
func path(doc any, steps ...any) any {
	for _, s := range steps {
		switch s := s.(type) {
		case string:
			m, ok := doc.(map[string]any)
			if !ok {
				return nil
			}
			doc = m[s]
		case int:
			l, ok := doc.([]any)
			if !ok || s >= len(l) {
				return nil
			}
			doc = l[s]
		}
	}
	return doc
}

// pluck collects key from each object of a decoded JSON list.
func pluck(list any, key string) []any {
	l, _ := list.([]any)
	var out []any
	for _, o := range l {
		out = append(out, path(o, key))
	}
	return out
}

func TestAllowed(t *testing.T) {
	for _, tc := range []struct {
		alert, event v1beta1.AlertSeverity
		want         bool
	}{
		{"", SeverityInfo, true},
		{"", SeverityWarn, true},
		{"", SeverityError, true},
		{SeverityInfo, SeverityInfo, true},
		{SeverityInfo, SeverityWarn, true},
		{SeverityInfo, SeverityError, true},
		{SeverityWarn, SeverityInfo, false},
		{SeverityWarn, SeverityWarn, true},
		{SeverityWarn, SeverityError, true},
		{SeverityError, SeverityInfo, false},
		{SeverityError, SeverityWarn, false},
		{SeverityError, SeverityError, true},
		{SeverityWarn, "", false}, // an event without severity is info
		{"bogus", SeverityInfo, true},
		{SeverityError, "bogus", true},
	} {
		if got := Allowed(tc.alert, tc.event); got != tc.want {
			t.Errorf("Allowed(%q, %q) = %v, want %v", tc.alert, tc.event, got, tc.want)
		}
	}
}

func TestMessageJSON(t *testing.T) {
	g := NewWithT(t)
	m := failedMessage()
	data, err := json.Marshal(m)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(data).To(MatchJSON(`{
		"canary": "podinfo", "namespace": "test", "phase": "Failed", "severity": "error",
		"text": "Rolling back podinfo.test: success rate 92.5% < 99% & falling",
		"metric": {"name": "request-success-rate", "value": 92.5, "threshold": ">= 99"},
		"cluster": "prod-eu-1",
		"fields": [{"name": "Revision", "value": "7d9f8c"}, {"name": "Weight", "value": "30"}]
	}`))

	// A metric without data still makes a deliverable alert.
	m.Metric.Value = math.NaN()
	data, err = json.Marshal(m)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(path(decode(t, data), "metric", "value")).To(BeNil())
	g.Expect(m.Metric.String()).To(Equal("request-success-rate: NaN (threshold >= 99)"))
}

func decode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestNotifyRefusesIncompleteMessage(t *testing.T) {
	g := NewWithT(t)
	srv, got := receiver(t, http.StatusOK)
	n, err := New(Config{Type: TypeGeneric, Address: srv.URL})
	g.Expect(err).NotTo(HaveOccurred())
	for _, m := range []Message{
		{Namespace: "test", Phase: v1beta1.CanaryPhaseFailed},
		{Canary: "podinfo", Phase: v1beta1.CanaryPhaseFailed},
		{Canary: "podinfo", Namespace: "test"},
	} {
		g.Expect(n.Notify(context.Background(), m)).To(MatchError(ContainSubstring("message has no")))
	}
	g.Consistently(got, "50ms").ShouldNot(Receive())
}

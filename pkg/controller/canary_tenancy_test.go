package controller_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/alerts"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// hangingServer accepts requests and answers none of them until the test
// ends, counting the requests it holds.
func hangingServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var held atomic.Int32
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held.Add(1)
		defer held.Add(-1)
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })
	return srv, &held
}

// TestCanaryReconciler_HangingWebhooksDelayNoOtherNamespace: twenty
// Canaries whose webhooks hang as long as admission allows hold their own
// releases, and a Canary in another namespace still rolls back on time. Its
// failing pre-rollout check fails it at the second check, two intervals after
// its new revision (20s when the machine is idle); the bound allows one more
// interval for a loaded machine, where a worker held by a hog would cost the
// hog's 15m webhook timeout.
func TestCanaryReconciler_HangingWebhooksDelayNoOtherNamespace(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	hang, held := hangingServer(t)
	hogs := newNamespace(t)
	const hogCount = 20
	for i := range hogCount {
		name := fmt.Sprintf("hog-%d", i)
		create(t, newDeployment(hogs, name, "example.com/app:v1", 1), newCanary(hogs, name, func(c *serinv1.Canary) {
			for j := range 50 {
				hookType := serinv1.PreRolloutHook
				if j%2 == 1 {
					hookType = serinv1.EventHook
				}
				c.Spec.Analysis.Webhooks = append(c.Spec.Analysis.Webhooks, serinv1.CanaryWebhook{
					Name: fmt.Sprintf("hang-%d", j), Type: hookType, URL: hang.URL, Timeout: "15m", Retries: 10,
				})
			}
		}))
	}
	g.Eventually(func() int {
		var list serinv1.CanaryList
		g.Expect(k8sClient.List(context.Background(), &list, client.InNamespace(hogs))).To(Succeed())
		n := 0
		for _, c := range list.Items {
			if c.Status.Phase == serinv1.CanaryPhaseInitialized {
				n++
			}
		}
		return n
	}, release, poll).Should(Equal(hogCount))
	for i := range hogCount {
		setImage(g, hogs, fmt.Sprintf("hog-%d", i), "example.com/app:v2")
	}
	// More hanging calls than the controller has reconcile workers.
	g.Eventually(held.Load, release, poll).Should(BeNumerically(">", 4))

	ns, name := newNamespace(t), "victim"
	hooks := newHookServer(t, 500)
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "smoke", Type: serinv1.PreRolloutHook, URL: hooks.URL + "/smoke"}}
	})
	start := time.Now()
	setImage(g, ns, name, "example.com/app:v2")
	interval := 10 * time.Second
	g.Eventually(phaseOf(ns, name), 3*interval, poll).Should(Equal(serinv1.CanaryPhaseFailed))
	t.Logf("the victim failed %s after its new revision; %d hog calls were hanging", time.Since(start).Round(time.Second), held.Load())
	g.Expect(hooks.count("/smoke")).To(Equal(2))
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v1"))
	for i := range hogCount {
		g.Expect(phaseOf(hogs, fmt.Sprintf("hog-%d", i))()).To(BeElementOf(serinv1.CanaryPhaseInitialized, serinv1.CanaryPhaseProgressing), "a hog holds where it is")
	}
}

// TestCanaryReconciler_TemplateCredentialsStayInTheirNamespace: a Canary
// points its metricsServer at a listener of its own and uses a
// MetricTemplate of another team's namespace whose Secret holds a token. The
// listener never sees the token, and the Canary says why the template was
// refused.
func TestCanaryReconciler_TemplateCredentialsStayInTheirNamespace(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	const token = "team-b-prometheus-token"
	var (
		mu    sync.Mutex
		auths []string
	)
	listener := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[0,"1"]}]}}`))
	}))
	t.Cleanup(listener.Close)

	teamB := newNamespace(t)
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: teamB, Name: "prom"}, StringData: map[string]string{"token": token}},
		&serinv1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: teamB, Name: "errors"},
			Spec: serinv1.MetricTemplateSpec{
				Provider: serinv1.MetricTemplateProvider{Type: "prometheus", SecretRef: &corev1.LocalObjectReference{Name: "prom"}},
				Query:    "vector(1)",
			},
		},
	)
	ns, name := newNamespace(t), "borrower"
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.MetricsServer = listener.URL
		c.Spec.Analysis.Metrics = []serinv1.CanaryMetric{{
			Name: "errors", Interval: "1m", TemplateRef: &serinv1.CrossNamespaceObjectReference{Namespace: teamB, Name: "errors"},
			ThresholdRange: &serinv1.CanaryThresholdRange{Max: new(10.0)},
		}}
	})

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(func() string {
		c := get(g, ns, name, &serinv1.Canary{})
		if conditions.GetReason(c, meta.StalledCondition) != serinv1.InvalidMetricReason {
			return ""
		}
		return conditions.GetMessage(c, meta.StalledCondition)
	}, release, poll).Should(ContainSubstring(fmt.Sprintf("MetricTemplate %s/errors is in namespace %s, which is not shared", teamB, teamB)))
	g.Eventually(func() []string { return events(g, ns, name, serinv1.InvalidMetricReason) }, eventWait, poll).ShouldNot(BeEmpty())
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v1"))
	mu.Lock()
	defer mu.Unlock()
	for _, a := range auths {
		g.Expect(a).NotTo(ContainSubstring(token))
	}
}

// TestCanaryReconciler_WebhookURLSecretsStayOut: a release goes through a
// failing webhook whose URL carries credentials (userinfo and a query
// token), with its events sent to Slack. Neither credential appears in the
// Events, the conditions, the status, the controller's log or the Slack
// payloads.
func TestCanaryReconciler_WebhookURLSecretsStayOut(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	const (
		password = "hunter2-userinfo-password"
		token    = "query-token-0123456789"
	)
	var (
		mu    sync.Mutex
		slack []string
	)
	capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		slack = append(slack, r.URL.String()+"\n"+string(body))
		mu.Unlock()
	}))
	t.Cleanup(capture.Close)

	ns, name := newNamespace(t), "leaky"
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "slack-url"}, StringData: map[string]string{"address": capture.URL + "/slack"}},
		&serinv1.AlertProvider{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team"},
			Spec:       serinv1.AlertProviderSpec{Type: string(alerts.TypeSlack), Channel: "releases", SecretRef: &corev1.LocalObjectReference{Name: "slack-url"}},
		},
	)
	// Nothing listens on the local discard port: the call fails in
	// transport, the error that used to quote the URL.
	hookURL := fmt.Sprintf("http://admin:%s@127.0.0.1:9/gate?token=%s", password, token)
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "gate", Type: serinv1.PreRolloutHook, URL: hookURL, Timeout: "2s"}}
		c.Spec.Analysis.Alerts = []serinv1.CanaryAlert{{Name: "team", ProviderRef: serinv1.CrossNamespaceObjectReference{Name: "team"}}}
	})

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(func() int {
		var errors int
		for _, w := range get(g, ns, name, &serinv1.Canary{}).Status.Webhooks {
			errors += w.Errors
		}
		return errors
	}, release, poll).Should(BeNumerically(">=", 1))
	g.Eventually(func() int { mu.Lock(); defer mu.Unlock(); return len(slack) }, release, poll).Should(BeNumerically(">=", 1))

	var where []string
	c := get(g, ns, name, &serinv1.Canary{})
	status := fmt.Sprintf("%+v", c.Status)
	where = append(where, status)
	var list corev1.EventList
	g.Expect(k8sClient.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	for _, e := range list.Items {
		where = append(where, e.Message)
	}
	g.Expect(strings.Join(where, "\n")).To(ContainSubstring("127.0.0.1:9"), "the errors are there, only redacted")
	logs, err := os.ReadFile(filepath.Join(env.Dir, "serin.log"))
	g.Expect(err).NotTo(HaveOccurred())
	where = append(where, string(logs))
	mu.Lock()
	where = append(where, slack...)
	mu.Unlock()
	for _, text := range where {
		g.Expect(text).NotTo(ContainSubstring(password))
		g.Expect(text).NotTo(ContainSubstring(token))
	}
}

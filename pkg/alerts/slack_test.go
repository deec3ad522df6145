package alerts

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestSlack(t *testing.T) {
	g := NewWithT(t)
	r, doc := notify(t, Config{Type: TypeSlack, Token: "xoxb-not-sent", Channel: "#deploys", Username: "serin", Icon: ":rocket:"},
		"/services/T000/B000/XXXX", failedMessage())

	g.Expect(r.path).To(Equal("/services/T000/B000/XXXX"))
	g.Expect(r.header.Get("Content-Type")).To(Equal("application/json"))
	g.Expect(r.header.Get("Authorization")).To(BeEmpty(), "Slack authenticates with the URL")
	g.Expect(doc).To(HaveKeyWithValue("channel", "#deploys"))
	g.Expect(doc).To(HaveKeyWithValue("username", "serin"))
	g.Expect(doc).To(HaveKeyWithValue("icon_emoji", ":rocket:"))
	g.Expect(doc).NotTo(HaveKey("icon_url"))

	a := path(doc, "attachments", 0)
	g.Expect(path(a, "color")).To(Equal("#a30200"))
	g.Expect(path(a, "title")).To(Equal("Canary test/podinfo: Failed"))
	g.Expect(path(a, "text")).To(Equal("Rolling back podinfo.test: success rate 92.5% &lt; 99% &amp; falling"))
	g.Expect(path(a, "fallback")).To(ContainSubstring("&lt; 99%"))
	g.Expect(pluck(path(a, "fields"), "title")).To(Equal([]any{"Canary", "Namespace", "Phase", "Cluster", "Metric", "Revision", "Weight"}))
	g.Expect(pluck(path(a, "fields"), "value")).To(Equal([]any{
		"podinfo", "test", "Failed", "prod-eu-1", "request-success-rate: 92.5 (threshold &gt;= 99)", "7d9f8c", "30",
	}))
	g.Expect(path(a, "fields", 0, "short")).To(BeTrue())
}

func TestSlackColorsAndIconURL(t *testing.T) {
	for sev, color := range map[v1beta1.AlertSeverity]string{"": "#2eb886", SeverityInfo: "#2eb886", SeverityWarn: "#daa038", SeverityError: "#a30200"} {
		t.Run(string(sev), func(t *testing.T) {
			g := NewWithT(t)
			m := Message{Canary: "podinfo", Namespace: "test", Phase: v1beta1.CanaryPhaseProgressing, Severity: sev}
			_, doc := notify(t, Config{Type: TypeSlack, Icon: "https://example.com/serin.png"}, "/hook", m)
			g.Expect(path(doc, "attachments", 0, "color")).To(Equal(color))
			g.Expect(doc).To(HaveKeyWithValue("icon_url", "https://example.com/serin.png"))
			g.Expect(doc).NotTo(HaveKey("channel"))
			g.Expect(pluck(path(doc, "attachments", 0, "fields"), "title")).To(Equal([]any{"Canary", "Namespace", "Phase"}))
		})
	}
}

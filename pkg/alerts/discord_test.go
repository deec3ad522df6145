package alerts

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestDiscord(t *testing.T) {
	for _, tc := range []struct{ address, path, query string }{
		{"/api/webhooks/123/tok", "/api/webhooks/123/tok/slack", ""},
		{"/api/webhooks/123/tok/", "/api/webhooks/123/tok/slack", ""},
		{"/api/webhooks/123/tok/slack", "/api/webhooks/123/tok/slack", ""},
		{"/api/webhooks/123/tok?thread_id=9", "/api/webhooks/123/tok/slack", "thread_id=9"},
	} {
		t.Run(tc.address, func(t *testing.T) {
			g := NewWithT(t)
			r, doc := notify(t, Config{Type: TypeDiscord, Username: "serin"}, tc.address, failedMessage())
			g.Expect(r.path).To(Equal(tc.path))
			g.Expect(r.rawQuery).To(Equal(tc.query))
			g.Expect(doc).To(HaveKeyWithValue("username", "serin"))
			a := path(doc, "attachments", 0)
			g.Expect(path(a, "color")).To(Equal("#a30200"))
			g.Expect(path(a, "text")).To(ContainSubstring("92.5% < 99% & falling"), "only Slack escapes")
			g.Expect(pluck(path(a, "fields"), "title")).To(ContainElements("Canary", "Namespace", "Phase", "Cluster", "Metric"))
			g.Expect(pluck(path(a, "fields"), "value")).To(ContainElement("request-success-rate: 92.5 (threshold >= 99)"))
		})
	}
}

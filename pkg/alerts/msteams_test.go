package alerts

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestMSTeams(t *testing.T) {
	g := NewWithT(t)
	r, doc := notify(t, Config{Type: TypeMSTeams, Token: "not-sent"}, "/workflows/abc/triggers/manual/paths/invoke?sig=s3cret", failedMessage())
	g.Expect(r.rawQuery).To(Equal("sig=s3cret"))
	g.Expect(r.header.Get("Authorization")).To(BeEmpty())

	g.Expect(doc).To(HaveKeyWithValue("type", "message"))
	att := path(doc, "attachments", 0)
	g.Expect(path(att, "contentType")).To(Equal("application/vnd.microsoft.card.adaptive"))
	card := path(att, "content")
	g.Expect(path(card, "type")).To(Equal("AdaptiveCard"))
	g.Expect(path(card, "version")).To(Equal("1.4"))
	g.Expect(path(card, "$schema")).To(Equal("http://adaptivecards.io/schemas/adaptive-card.json"))
	g.Expect(pluck(path(card, "body"), "type")).To(Equal([]any{"TextBlock", "TextBlock", "FactSet"}))
	g.Expect(path(card, "body", 0, "text")).To(Equal("Canary test/podinfo: Failed"))
	g.Expect(path(card, "body", 0, "color")).To(Equal("Attention"))
	g.Expect(path(card, "body", 1, "text")).To(Equal(failedMessage().Text))
	facts := path(card, "body", 2, "facts")
	g.Expect(pluck(facts, "title")).To(Equal([]any{"Canary", "Namespace", "Phase", "Cluster", "Metric", "Revision", "Weight"}))
	g.Expect(pluck(facts, "value")).To(ContainElements("podinfo", "test", "Failed", "prod-eu-1", "request-success-rate: 92.5 (threshold >= 99)"))
}

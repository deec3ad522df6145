package alerts

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestGChat(t *testing.T) {
	g := NewWithT(t)
	r, doc := notify(t, Config{Type: TypeGChat}, "/v1/spaces/AAAA/messages?key=k3y&token=t0k", failedMessage())
	g.Expect(r.path).To(Equal("/v1/spaces/AAAA/messages"))
	g.Expect(r.rawQuery).To(Equal("key=k3y&token=t0k"))

	g.Expect(doc["text"]).To(Equal("Canary test/podinfo: Failed\n" + failedMessage().Text))
	card := path(doc, "cardsV2", 0)
	g.Expect(path(card, "cardId")).NotTo(BeEmpty())
	g.Expect(path(card, "card", "header", "title")).To(Equal("Canary test/podinfo: Failed"))
	g.Expect(path(card, "card", "header", "subtitle")).To(Equal("error"))
	widgets := path(card, "card", "sections", 0, "widgets")
	g.Expect(path(widgets, 0, "textParagraph", "text")).To(Equal("Rolling back podinfo.test: success rate 92.5% &lt; 99% &amp; falling"))
	var labels, texts []any
	for _, w := range widgets.([]any)[1:] {
		labels = append(labels, path(w, "decoratedText", "topLabel"))
		texts = append(texts, path(w, "decoratedText", "text"))
	}
	g.Expect(labels).To(Equal([]any{"Canary", "Namespace", "Phase", "Cluster", "Metric", "Revision", "Weight"}))
	g.Expect(texts).To(ContainElements("podinfo", "test", "Failed", "prod-eu-1", "request-success-rate: 92.5 (threshold &gt;= 99)"))
}

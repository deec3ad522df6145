package alerts

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestRocket(t *testing.T) {
	g := NewWithT(t)
	r, doc := notify(t, Config{Type: TypeRocket, Channel: "#deploys", Username: "serin"}, "/hooks/abc/def", failedMessage())
	g.Expect(r.path).To(Equal("/hooks/abc/def"))
	g.Expect(doc).To(HaveKeyWithValue("channel", "#deploys"))
	g.Expect(doc).To(HaveKeyWithValue("username", "serin"))
	a := path(doc, "attachments", 0)
	g.Expect(path(a, "color")).To(Equal("#a30200"))
	g.Expect(path(a, "title")).To(Equal("Canary test/podinfo: Failed"))
	g.Expect(pluck(path(a, "fields"), "title")).To(ContainElements("Canary", "Namespace", "Phase", "Cluster", "Metric"))
	g.Expect(pluck(path(a, "fields"), "value")).To(ContainElements("podinfo", "test", "Failed", "prod-eu-1", "request-success-rate: 92.5 (threshold >= 99)"))
}

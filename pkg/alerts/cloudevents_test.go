package alerts

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestCloudEvents(t *testing.T) {
	g := NewWithT(t)
	before := time.Now().Add(-time.Second)
	r, doc := notify(t, Config{Type: TypeCloudEvents, Token: "s3cret"}, "/", failedMessage())
	g.Expect(r.header.Get("Content-Type")).To(Equal("application/cloudevents+json"))
	g.Expect(r.header.Get("Authorization")).To(Equal("Bearer s3cret"))

	g.Expect(doc).To(HaveKeyWithValue("specversion", "1.0"))
	g.Expect(doc["id"]).NotTo(BeEmpty())
	g.Expect(doc).To(HaveKeyWithValue("source", "serin/test/podinfo"))
	g.Expect(doc).To(HaveKeyWithValue("type", "dev.serin.canary.failed"))
	g.Expect(doc).To(HaveKeyWithValue("datacontenttype", "application/json"))
	ts, err := time.Parse(time.RFC3339, doc["time"].(string))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ts).To(BeTemporally(">", before))

	var event struct{ Data Message }
	g.Expect(json.Unmarshal(r.body, &event)).To(Succeed())
	g.Expect(event.Data).To(Equal(failedMessage()))
}

func TestCloudEventsIDsAreUnique(t *testing.T) {
	g := NewWithT(t)
	srv, got := receiver(t, http.StatusAccepted)
	n, err := New(Config{Type: TypeCloudEvents, Address: srv.URL})
	g.Expect(err).NotTo(HaveOccurred())
	m := failedMessage()
	m.Phase = "WaitingPromotion"
	ids := map[any]bool{}
	for range 3 {
		g.Expect(n.Notify(context.Background(), m)).To(Succeed())
		var r request
		g.Expect(got).To(Receive(&r))
		doc := decode(t, r.body)
		g.Expect(doc).To(HaveKeyWithValue("type", "dev.serin.canary.waitingpromotion"))
		ids[doc["id"]] = true
	}
	g.Expect(ids).To(HaveLen(3))
}

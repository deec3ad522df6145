package alerts

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
)

func TestGeneric(t *testing.T) {
	g := NewWithT(t)
	r, _ := notify(t, Config{Type: TypeGeneric, Token: "s3cret"}, "/events", failedMessage())
	g.Expect(r.path).To(Equal("/events"))
	g.Expect(r.header.Get("Content-Type")).To(Equal("application/json"))
	g.Expect(r.header.Get("Authorization")).To(Equal("Bearer s3cret"))
	var m Message
	g.Expect(json.Unmarshal(r.body, &m)).To(Succeed())
	g.Expect(m).To(Equal(failedMessage()))
}

func TestGenericWithoutToken(t *testing.T) {
	r, _ := notify(t, Config{Type: TypeGeneric}, "/", failedMessage())
	NewWithT(t).Expect(r.header.Values("Authorization")).To(BeEmpty())
}

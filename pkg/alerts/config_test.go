package alerts

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestNewValidation(t *testing.T) {
	const secret = "s3cret"
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown type", Config{Type: "pagerduty", Address: "https://x/" + secret},
			`unknown alert provider type "pagerduty": want one of [cloudevents discord gchat generic msteams rocket slack]`},
		{"empty type", Config{Address: "https://x/" + secret}, `unknown alert provider type ""`},
		{"no address", Config{Type: TypeSlack}, "slack alert provider: no address"},
		{"unparsable address", Config{Type: TypeSlack, Address: "https://hooks.slack.com/%zz" + secret},
			"slack alert provider: address is not a valid URL"},
		{"relative address", Config{Type: TypeDiscord, Address: "discord.com/api/webhooks/1/" + secret},
			"discord alert provider: address is not an absolute http or https URL"},
		{"other scheme", Config{Type: TypeGeneric, Address: "ftp://example.com/" + secret},
			"generic alert provider: address is not an absolute http or https URL"},
		{"no host", Config{Type: TypeGeneric, Address: "http:///" + secret},
			"generic alert provider: address is not an absolute http or https URL"},
		{"bad proxy", Config{Type: TypeRocket, Address: "https://chat.example.com/hooks/x", Proxy: "socks5://u:" + secret + "@proxy:1080"},
			"rocket alert provider: proxy is not an absolute http or https URL"},
		{"negative timeout", Config{Type: TypeGChat, Address: "https://chat.googleapis.com/v1/spaces/x", Timeout: -time.Second},
			"gchat alert provider: negative timeout -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			n, err := New(tc.cfg)
			g.Expect(n).To(BeNil())
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
			g.Expect(err.Error()).NotTo(ContainSubstring(secret))
		})
	}
}

func TestNewAcceptsEveryType(t *testing.T) {
	for typ := range services {
		n, err := New(Config{Type: typ, Address: "https://example.com/hook", Proxy: "http://proxy:3128", Timeout: time.Second})
		if err != nil || n == nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

func provider(typ, address, proxy string, withSecret bool) *v1beta1.AlertProvider {
	p := &v1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: "serin", Name: "on-call"},
		Spec:       v1beta1.AlertProviderSpec{Type: typ, Channel: "#deploys", Username: "serin", Address: address, Proxy: proxy},
	}
	if withSecret {
		p.Spec.SecretRef = &corev1.LocalObjectReference{Name: "on-call-webhook"}
	}
	return p
}

func TestConfigFrom(t *testing.T) {
	for _, tc := range []struct {
		name     string
		provider *v1beta1.AlertProvider
		secret   map[string][]byte
		want     Config
	}{
		{
			"spec only",
			provider("slack", "https://hooks.slack.com/services/a", "http://proxy:3128", false), nil,
			Config{Type: TypeSlack, Address: "https://hooks.slack.com/services/a", Proxy: "http://proxy:3128", Channel: "#deploys", Username: "serin"},
		},
		{
			"secret address overrides spec",
			provider("msteams", "https://spec.example.com/a", "", true),
			map[string][]byte{"address": []byte("https://secret.example.com/b\n")},
			Config{Type: TypeMSTeams, Address: "https://secret.example.com/b", Channel: "#deploys", Username: "serin"},
		},
		{
			"secret only, with token and proxy",
			provider("discord", "", "http://spec-proxy:3128", true),
			map[string][]byte{"address": []byte("https://discord.com/api/webhooks/1/x"), "token": []byte(" t0k\n"), "proxy": []byte("http://secret-proxy:3128")},
			Config{Type: TypeDiscord, Address: "https://discord.com/api/webhooks/1/x", Token: "t0k", Proxy: "http://secret-proxy:3128", Channel: "#deploys", Username: "serin"},
		},
		{
			"empty secret values do not override",
			provider("rocket", "https://chat.example.com/hooks/a", "http://proxy:3128", true),
			map[string][]byte{"address": []byte(""), "proxy": []byte("\n")},
			Config{Type: TypeRocket, Address: "https://chat.example.com/hooks/a", Proxy: "http://proxy:3128", Channel: "#deploys", Username: "serin"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			cfg, err := ConfigFrom(tc.provider, tc.secret)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(cfg).To(Equal(tc.want))
			_, err = New(cfg)
			g.Expect(err).NotTo(HaveOccurred())
		})
	}
}

func TestConfigFromWithoutAddress(t *testing.T) {
	g := NewWithT(t)
	_, err := ConfigFrom(provider("slack", "", "", false), nil)
	g.Expect(err).To(MatchError(`AlertProvider serin/on-call has no address: set spec.address`))
	_, err = ConfigFrom(provider("slack", "", "", true), map[string][]byte{"token": []byte("t")})
	g.Expect(err).To(MatchError(`AlertProvider serin/on-call has no address: set spec.address or the "address" key of Secret "on-call-webhook"`))
}

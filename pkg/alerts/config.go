package alerts

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// Type is the kind of service a provider is.
type Type string

// The provider types.
const (
	TypeSlack       Type = "slack"
	TypeMSTeams     Type = "msteams"
	TypeDiscord     Type = "discord"
	TypeRocket      Type = "rocket"
	TypeGChat       Type = "gchat"
	TypeGeneric     Type = "generic"
	TypeCloudEvents Type = "cloudevents"
)

// DefaultTimeout bounds a call when Config sets no timeout, as for webhooks.
const DefaultTimeout = 10 * time.Second

// services builds the Notifier of each type around its endpoint.
var services = map[Type]func(*endpoint, Config) Notifier{
	TypeSlack:       newSlack,
	TypeMSTeams:     newMSTeams,
	TypeDiscord:     newDiscord,
	TypeRocket:      newRocket,
	TypeGChat:       newGChat,
	TypeGeneric:     newGeneric,
	TypeCloudEvents: newCloudEvents,
}

// Config says where and how a Notifier posts.
type Config struct {
	Type Type
	// Address is the webhook URL. For most services it is the credential
	// itself, so it never appears in errors.
	Address string
	// Token is sent as "Authorization: Bearer" by the generic and
	// cloudevents types; chat services authenticate with their URL and
	// never receive it.
	Token string
	// Channel, Username and Icon override the webhook's defaults where the
	// service allows it (Slack, Rocket.Chat; Discord takes Username and
	// Icon). Icon is an emoji name like ":rocket:" or an image URL.
	Channel  string
	Username string
	Icon     string
	// Proxy is an http or https proxy URL; empty means the environment's
	// (HTTPS_PROXY, NO_PROXY...).
	Proxy string
	// Timeout bounds each call, response included; 0 means DefaultTimeout.
	Timeout time.Duration
}

// New returns the Notifier for cfg, or an error saying what is wrong with
// it; nothing is sent. The Notifier is safe for concurrent use.
func New(cfg Config) (Notifier, error) {
	build, ok := services[cfg.Type]
	if !ok {
		known := slices.Sorted(maps.Keys(services))
		return nil, fmt.Errorf("unknown alert provider type %q: want one of %v", cfg.Type, known)
	}
	if cfg.Address == "" {
		return nil, fmt.Errorf("%s alert provider: no address", cfg.Type)
	}
	address, err := parseHTTPURL(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("%s alert provider: address %w", cfg.Type, err)
	}
	var proxy *url.URL
	if cfg.Proxy != "" {
		if proxy, err = parseHTTPURL(cfg.Proxy); err != nil {
			return nil, fmt.Errorf("%s alert provider: proxy %w", cfg.Type, err)
		}
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("%s alert provider: negative timeout %s", cfg.Type, cfg.Timeout)
	}
	return build(newEndpoint(cfg, address, proxy), cfg), nil
}

// parseHTTPURL accepts absolute http and https URLs. Its errors never quote
// the URL (url.Parse's do), as it may hold a secret.
func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("is not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("is not an absolute http or https URL")
	}
	return u, nil
}

// The keys of an AlertProvider's Secret.
const (
	SecretKeyAddress = "address"
	SecretKeyToken   = "token"
	SecretKeyProxy   = "proxy"
)

// ConfigFrom resolves an AlertProvider into a Config. secret is the data of
// the Secret named by spec.secretRef, read by the caller (nil if none). As
// in Flagger, the Secret's "address" and "proxy" keys override the spec's
// fields, and its "token" key is the only source of a token. Values are
// trimmed, since Secrets made with `echo` end with a newline. The Config is
// checked further by New.
func ConfigFrom(p *v1beta1.AlertProvider, secret map[string][]byte) (Config, error) {
	cfg := Config{
		Type:     Type(p.Spec.Type),
		Address:  p.Spec.Address,
		Channel:  p.Spec.Channel,
		Username: p.Spec.Username,
		Proxy:    p.Spec.Proxy,
	}
	if v := secretValue(secret, SecretKeyAddress); v != "" {
		cfg.Address = v
	}
	if v := secretValue(secret, SecretKeyProxy); v != "" {
		cfg.Proxy = v
	}
	cfg.Token = secretValue(secret, SecretKeyToken)
	if cfg.Address == "" {
		where := "spec.address"
		if p.Spec.SecretRef != nil {
			where += fmt.Sprintf(" or the %q key of Secret %q", SecretKeyAddress, p.Spec.SecretRef.Name)
		}
		return Config{}, fmt.Errorf("AlertProvider %s/%s has no address: set %s", p.Namespace, p.Name, where)
	}
	return cfg, nil
}

func secretValue(secret map[string][]byte, key string) string {
	return strings.TrimSpace(string(secret[key]))
}

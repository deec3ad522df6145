package alerts

import (
	"net/url"
	"strings"
)

// newDiscord posts the Slack payload to the webhook's Slack-compatible
// endpoint, <address>/slack, as Flagger does: the same attachment and
// fields as Slack, without a second format to keep in step. Discord ignores
// the channel (a webhook posts to one channel) but honours username and
// icon_url. An address that already ends in /slack is used as is.
func newDiscord(e *endpoint, cfg Config) Notifier {
	u, _ := url.Parse(cfg.Address) // checked by New
	if !strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/slack") {
		e.target = u.JoinPath("slack").String() // keeps ?thread_id= and the like
	}
	return &slackCompatible{endpoint: e, cfg: cfg}
}

package alerts

import (
	"context"
	"strings"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// slackCompatible posts a Slack incoming-webhook payload: one legacy
// attachment, colored by severity, whose fields are the Message's facts.
// Slack, Discord (through its /slack endpoint) and Rocket.Chat all read it.
type slackCompatible struct {
	*endpoint
	cfg Config
	// escape applies Slack's escaping of &, < and >, which Slack requires
	// and the other services would show as is.
	escape bool
}

func newSlack(e *endpoint, cfg Config) Notifier {
	return &slackCompatible{endpoint: e, cfg: cfg, escape: true}
}

type slackPayload struct {
	Channel     string            `json:"channel,omitempty"`
	Username    string            `json:"username,omitempty"`
	IconEmoji   string            `json:"icon_emoji,omitempty"`
	IconURL     string            `json:"icon_url,omitempty"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Color    string       `json:"color"`
	Fallback string       `json:"fallback"` // what notifications show
	Title    string       `json:"title"`
	Text     string       `json:"text,omitempty"`
	Fields   []slackField `json:"fields"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"` // shown two to a row
}

// slackColors are Slack's own good, warning and danger colors, as hex
// because Discord does not know the names.
var slackColors = map[v1beta1.AlertSeverity]string{SeverityWarn: "#daa038", SeverityError: "#a30200"}

const slackColorInfo = "#2eb886"

func (n *slackCompatible) Notify(ctx context.Context, m Message) error {
	esc := func(s string) string { return s }
	if n.escape {
		esc = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace
	}
	color, ok := slackColors[m.Severity]
	if !ok {
		color = slackColorInfo
	}
	a := slackAttachment{Color: color, Fallback: esc(m.title()), Title: esc(m.title()), Text: esc(m.Text)}
	if m.Text != "" {
		a.Fallback += ": " + a.Text
	}
	for _, f := range m.facts() {
		a.Fields = append(a.Fields, slackField{Title: esc(f.title), Value: esc(f.value), Short: len(f.value) <= 40})
	}
	p := slackPayload{Channel: n.cfg.Channel, Username: n.cfg.Username, Attachments: []slackAttachment{a}}
	if strings.HasPrefix(n.cfg.Icon, ":") {
		p.IconEmoji = n.cfg.Icon
	} else {
		p.IconURL = n.cfg.Icon
	}
	return n.send(ctx, m, p)
}

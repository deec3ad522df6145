package alerts

import (
	"context"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// msteams posts an Adaptive Card, wrapped in a message, to a Teams
// webhook: what Workflows (Power Automate) webhooks take, the Office 365
// connectors that took MessageCards being retired. Teams authenticates with
// the URL, so no token is sent.
type msteams struct{ *endpoint }

func newMSTeams(e *endpoint, _ Config) Notifier { return &msteams{e} }

type teamsMessage struct {
	Type        string            `json:"type"` // "message"
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string `json:"$schema"`
	Type    string `json:"type"` // "AdaptiveCard"
	Version string `json:"version"`
	Body    []any  `json:"body"` // TextBlocks and a FactSet
}

type textBlock struct {
	Type   string `json:"type"` // "TextBlock"
	Text   string `json:"text"`
	Size   string `json:"size,omitempty"`
	Weight string `json:"weight,omitempty"`
	Color  string `json:"color,omitempty"`
	Wrap   bool   `json:"wrap"`
}

type factSet struct {
	Type  string      `json:"type"` // "FactSet"
	Facts []teamsFact `json:"facts"`
}

type teamsFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// teamsColors are the card's color names for the title by severity.
var teamsColors = map[v1beta1.AlertSeverity]string{SeverityWarn: "Warning", SeverityError: "Attention"}

const teamsColorInfo = "Good"

func (n *msteams) Notify(ctx context.Context, m Message) error {
	color, ok := teamsColors[m.Severity]
	if !ok {
		color = teamsColorInfo
	}
	facts := factSet{Type: "FactSet"}
	for _, f := range m.facts() {
		facts.Facts = append(facts.Facts, teamsFact{Title: f.title, Value: f.value})
	}
	body := []any{textBlock{Type: "TextBlock", Text: m.title(), Size: "Medium", Weight: "Bolder", Color: color, Wrap: true}}
	if m.Text != "" {
		body = append(body, textBlock{Type: "TextBlock", Text: m.Text, Wrap: true})
	}
	body = append(body, facts)
	return n.send(ctx, m, teamsMessage{
		Type: "message",
		Attachments: []teamsAttachment{{
			ContentType: "application/vnd.microsoft.card.adaptive",
			Content: adaptiveCard{
				Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
				Type:    "AdaptiveCard",
				Version: "1.4", // the newest that every Teams client renders
				Body:    body,
			},
		}},
	})
}

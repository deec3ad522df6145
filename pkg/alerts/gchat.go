package alerts

import (
	"context"
	"html"
)

// gchat posts to a Google Chat space webhook: text for the notification
// preview and a cardsV2 card with the facts. The webhook URL carries its
// key and token, so nothing else authenticates the call.
type gchat struct{ *endpoint }

func newGChat(e *endpoint, _ Config) Notifier { return &gchat{e} }

type chatMessage struct {
	Text    string     `json:"text"`
	CardsV2 []chatCard `json:"cardsV2"`
}

type chatCard struct {
	CardID string   `json:"cardId"`
	Card   cardBody `json:"card"`
}

type cardBody struct {
	Header   cardHeader    `json:"header"`
	Sections []cardSection `json:"sections"`
}

type cardHeader struct {
	Title    string `json:"title"`
	Subtitle string `json:"subtitle,omitempty"`
}

type cardSection struct {
	Widgets []cardWidget `json:"widgets"`
}

// cardWidget holds one widget; the JSON names its kind by its one key.
type cardWidget struct {
	TextParagraph *cardText      `json:"textParagraph,omitempty"`
	DecoratedText *decoratedText `json:"decoratedText,omitempty"`
}

type cardText struct {
	Text string `json:"text"`
}

type decoratedText struct {
	TopLabel string `json:"topLabel"`
	Text     string `json:"text"`
	WrapText bool   `json:"wrapText"`
}

func (n *gchat) Notify(ctx context.Context, m Message) error {
	// Card text is HTML-formatted; the message text is not.
	var widgets []cardWidget
	if m.Text != "" {
		widgets = append(widgets, cardWidget{TextParagraph: &cardText{Text: html.EscapeString(m.Text)}})
	}
	for _, f := range m.facts() {
		widgets = append(widgets, cardWidget{DecoratedText: &decoratedText{
			TopLabel: html.EscapeString(f.title), Text: html.EscapeString(f.value), WrapText: true,
		}})
	}
	text := m.title()
	if m.Text != "" {
		text += "\n" + m.Text
	}
	return n.send(ctx, m, chatMessage{
		Text: text,
		CardsV2: []chatCard{{
			CardID: "serin-alert",
			Card: cardBody{
				Header:   cardHeader{Title: m.title(), Subtitle: string(m.Severity)},
				Sections: []cardSection{{Widgets: widgets}},
			},
		}},
	})
}

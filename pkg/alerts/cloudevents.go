package alerts

import (
	"context"
	"crypto/rand"
	"strings"
	"time"
)

// cloudEvents POSTs a CloudEvents 1.0 event in structured mode: the
// attributes and the Message, as data, in one JSON document.
type cloudEvents struct{ *endpoint }

func newCloudEvents(e *endpoint, cfg Config) Notifier {
	e.token = cfg.Token
	e.contentType = "application/cloudevents+json"
	return &cloudEvents{e}
}

// EventTypePrefix starts the type of every event; the lowercased phase
// ends it, e.g. dev.serin.canary.failed, for receivers to route on.
const EventTypePrefix = "dev.serin.canary."

type cloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            Message   `json:"data"`
}

func (n *cloudEvents) Notify(ctx context.Context, m Message) error {
	return n.send(ctx, m, cloudEvent{
		SpecVersion: "1.0",
		// Random, so that source+id is unique as the spec requires, even
		// for two events of the same phase.
		ID:              rand.Text(),
		Source:          "serin/" + m.Namespace + "/" + m.Canary,
		Type:            EventTypePrefix + strings.ToLower(string(m.Phase)),
		Time:            time.Now().UTC(),
		DataContentType: contentTypeJSON,
		Data:            m,
	})
}

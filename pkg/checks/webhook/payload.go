package webhook

import (
	"maps"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// Payload is the JSON body POSTed to a webhook. Its shape is Flagger's
// CanaryWebhookPayload, so that hooks written for Flagger (the load tester,
// confirmation gates, chat bridges) work unchanged.
type Payload struct {
	Name      string              `json:"name"`
	Namespace string              `json:"namespace"`
	Phase     v1beta1.CanaryPhase `json:"phase"`
	Checksum  string              `json:"checksum"`
	// Metadata is usually the hook's own metadata. It may hold tokens, so
	// this package never logs it.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Metadata keys under which an event hook receives the event, as in Flagger.
const (
	EventMessageKey = "eventMessage"
	EventTypeKey    = "eventType"
)

// EventPayload builds the payload of an event hook for one Kubernetes Event
// the controller emits (eventType is the Event's type, Normal or Warning).
// The event is carried in metadata under eventMessage and eventType, which
// win over same-named keys of the hook's metadata. metadata is copied, never
// modified.
func EventPayload(canaryName, namespace string, phase v1beta1.CanaryPhase, checksum, eventType, message string, metadata map[string]string) Payload {
	md := make(map[string]string, len(metadata)+2)
	maps.Copy(md, metadata)
	md[EventMessageKey] = message
	md[EventTypeKey] = eventType
	return Payload{
		Name:      canaryName,
		Namespace: namespace,
		Phase:     phase,
		Checksum:  checksum,
		Metadata:  md,
	}
}
